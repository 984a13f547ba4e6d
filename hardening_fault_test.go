package iq_test

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"math/rand/v2"
	"net"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/iqtest"
	"github.com/xmpp-iq/iq/stream"
)

var hardFaultRounds = flag.Int("fault.rounds", 50, "rounds of TestHardeningFaultCloseRaces")

var errHardBoom = errors.New("boom: the transport is gone")

// hardLoopback is a Sender that fails when fail says so, and otherwise
// has a peer Callee answer the request and hands the answer back to the
// Endpoint *to on a goroutine of its own, as a stream reader would.
// Not iqtest.Pair: a Pair cannot make a send fail with an error of its own.
type hardLoopback struct {
	to    **iq.Endpoint
	peer  *iq.Callee
	fail  func() bool
	calls atomic.Int64
	wg    sync.WaitGroup
}

func (l *hardLoopback) SendIQ(ctx context.Context, q *iq.IQ) error {
	l.calls.Add(1)
	if l.fail != nil && l.fail() {
		return errHardBoom
	}
	if !q.IsRequest() || q.Payload.AttrValue("silent") != "" {
		return nil // a reply, or a request nobody answers
	}
	reply := l.peer.Reply(ctx, q)
	if reply == nil {
		return nil
	}
	reply.From = q.To
	ep := *l.to
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		ep.Receive(context.Background(), reply)
	}()
	return nil
}

func newHardPeer() *iq.Callee {
	peer := iq.NewCallee(iqtest.NewRecorder()) // only Reply is used: nothing is sent
	peer.Get(hardeningNS, "q", func(context.Context, *iq.IQ) (*iq.Element, error) {
		return iq.NewElement(hardeningNS, "ok"), nil
	})
	return peer
}

// TestHardeningFaultSenderFails makes the Sender fail on every call, or on
// a random half: every request ends once, with the Sender's error or its
// answer, and none stays pending.
func TestHardeningFaultSenderFails(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	cases := []struct {
		name  string
		pFail float64
	}{
		{"every call", 1},
		{"at random", 0.5},
		{"never (control)", 0},
	}
	const n, workers = 2000, 16
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			var mu sync.Mutex
			rng := rand.New(rand.NewPCG(1, 2))
			var ep *iq.Endpoint
			lb := &hardLoopback{to: &ep, peer: newHardPeer(), fail: func() bool {
				mu.Lock()
				defer mu.Unlock()
				return rng.Float64() < tc.pFail
			}}
			ep = iq.NewEndpoint(lb, iq.WithTimeout(hardWait))
			var ok, failed, wrong atomic.Int64
			var next atomic.Int64
			var wg sync.WaitGroup
			for range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= n {
						res, err := ep.Caller.Get(context.Background(), "peer.example", iq.NewElement(hardeningNS, "q"))
						switch {
						case err == nil && res != nil && res.Name.Local == "ok":
							ok.Add(1)
						case errors.Is(err, errHardBoom) && res == nil:
							failed.Add(1)
						default:
							wrong.Add(1)
						}
					}
				}()
			}
			wg.Wait()
			lb.wg.Wait()
			require.NoError(t, ep.Close())
			assert.Zero(t, wrong.Load())
			assert.Equal(t, int64(n), ok.Load()+failed.Load())
			assert.Equal(t, int64(n), lb.calls.Load())
			assert.Zero(t, ep.Caller.Pending())
			switch tc.pFail {
			case 1:
				assert.Zero(t, ok.Load())
			case 0:
				assert.Zero(t, failed.Load())
			default:
				assert.Positive(t, ok.Load())
				assert.Positive(t, failed.Load())
			}
			t.Logf("sender fails %s: %d requests, %d answered, %d failed with the sender's error, pending after %d",
				tc.name, n, ok.Load(), failed.Load(), ep.Caller.Pending())
		})
	}
}

// TestHardeningFaultReplySendFails: a Callee whose every reply fails to
// send logs each failure, keeps serving, and keeps no handler.
func TestHardeningFaultReplySendFails(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	const n = 2000
	logs := newHardCountLog()
	rec := iqtest.NewRecorder()
	rec.FailWith(errHardBoom)
	ep := iq.NewEndpoint(rec, iq.WithLogger(slog.New(logs)), iq.WithMaxInFlight(n))
	defer ep.Close()
	ep.Callee.Get(hardeningNS, "q", func(context.Context, *iq.IQ) (*iq.Element, error) {
		return iq.NewElement(hardeningNS, "ok"), nil
	})
	for i := range n {
		ep.Receive(context.Background(), &iq.IQ{Type: iq.TypeGet, ID: "r" + strconv.Itoa(i), From: "x@example.com/y",
			Payload: iq.NewElement(hardeningNS, "q")})
	}
	// Requests nobody handles fail to send from the receiving goroutine.
	ep.Receive(context.Background(), &iq.IQ{Type: iq.TypeGet, ID: "unrouted", Payload: iq.NewElement("urn:other", "q")})
	require.Eventually(t, func() bool { return ep.Callee.InFlight() == 0 && rec.Len() == n+1 }, hardWait, hardTick)
	assert.Equal(t, n+1, logs.Count("reply not sent"))
}

// TestHardeningFaultContext cancels a request's context at each stage.
func TestHardeningFaultContext(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	const peer = "peer@example.com/x"
	type stage int
	const (
		beforeSend stage = iota
		deadlineBeforeSend
		duringSend
		duringWait
		afterResponse
	)
	cases := []struct {
		name      string
		stage     stage
		wantErr   error // nil: a result
		wantSends int64
	}{
		{"cancelled before send", beforeSend, context.Canceled, 0},
		{"deadline passed before send", deadlineBeforeSend, iq.ErrTimeout, 0},
		{"cancelled during send", duringSend, context.Canceled, 1},
		{"cancelled during the wait", duringWait, context.Canceled, 1},
		{"cancelled after the response", afterResponse, nil, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			rec := iqtest.NewRecorder()
			if tc.stage == duringSend {
				rec.OnSend(func(sctx context.Context, _ *iq.IQ) error {
					<-sctx.Done() // a Sender heeds its context
					return sctx.Err()
				})
			}
			c := iq.NewCaller(rec, iq.WithTimeout(hardWait))
			defer c.Close()
			req := &iq.IQ{Type: iq.TypeGet, To: peer, Payload: iq.NewElement(hardeningNS, "q")}

			switch tc.stage {
			case beforeSend:
				cancel()
			case deadlineBeforeSend:
				var dcancel context.CancelFunc
				ctx, dcancel = context.WithDeadline(ctx, time.Now().Add(-time.Second))
				defer dcancel()
			}
			done := make(chan *iq.Call, 1)
			var call *iq.Call
			started := make(chan struct{})
			go func() {
				call = c.Go(ctx, req, done)
				close(started)
			}()
			switch tc.stage {
			case duringSend:
				nextSent(t, rec)
				cancel()
			case duringWait:
				<-started
				nextSent(t, rec)
				cancel()
			case afterResponse:
				<-started
				sent := nextSent(t, rec)
				require.True(t, c.Receive(&iq.IQ{Type: iq.TypeResult, ID: sent.ID, From: peer}))
				got := <-done
				require.NoError(t, got.Err)
				cancel()
				done <- got // put it back for the common checks
			}
			<-started
			got := <-done
			assert.Same(t, call, got)
			if tc.wantErr == nil {
				assert.NoError(t, got.Err)
				assert.NotNil(t, got.Response)
			} else {
				assert.ErrorIs(t, got.Err, tc.wantErr)
				assert.Nil(t, got.Response)
			}
			assert.EqualValues(t, tc.wantSends, rec.Len())
			assert.Zero(t, c.Pending())
			// Nothing more arrives, and a response now matches nothing.
			assert.Len(t, done, 0)
			assert.False(t, c.Receive(&iq.IQ{Type: iq.TypeResult, ID: got.Request.ID, From: peer}))
			assert.Len(t, done, 0)
		})
	}
}

// TestHardeningFaultCloseRaces closes an Endpoint while many goroutines
// make requests, feed it answers and feed it requests: every request ends
// once, with its answer or ErrClosed; nothing stays pending or running.
func TestHardeningFaultCloseRaces(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	rounds := *hardFaultRounds
	const workers = 16
	var ok, closed, wrong, served atomic.Int64
	for round := range rounds {
		var ep *iq.Endpoint
		lb := &hardLoopback{to: &ep, peer: newHardPeer()}
		ep = iq.NewEndpoint(lb, iq.WithTimeout(hardWait), iq.WithLocalJID("me@example.com/res"))
		ep.Callee.Get(hardeningNS, "q", func(ctx context.Context, _ *iq.IQ) (*iq.Element, error) {
			served.Add(1)
			runtime.Gosched()
			return nil, ctx.Err()
		})
		var wg sync.WaitGroup
		start := make(chan struct{})
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for i := range 20 {
					if w%4 == 3 { // a reader: requests in, stray answers in
						ep.Receive(context.Background(), &iq.IQ{Type: iq.TypeGet, ID: iq.NewID(), From: "x@example.com/y", Payload: iq.NewElement(hardeningNS, "q")})
						ep.Receive(context.Background(), &iq.IQ{Type: iq.TypeResult, ID: iq.NewID()})
						continue
					}
					// Half the requests go where nobody answers.
					to := "peer.example"
					payload := iq.NewElement(hardeningNS, "q")
					if i%2 == 1 {
						payload = iq.NewElement(hardeningNS, "q", "silent", "1")
						to = "silent.example"
					}
					res, err := ep.Caller.Get(context.Background(), to, payload)
					switch {
					case err == nil && res != nil:
						ok.Add(1)
					case errors.Is(err, iq.ErrClosed) && res == nil:
						closed.Add(1)
					default:
						wrong.Add(1)
					}
				}
			}()
		}
		close(start)
		// Close at a random point of the round.
		for range rand.IntN(50) {
			runtime.Gosched()
		}
		if round%2 == 0 {
			require.NoError(t, ep.Close())
		} else {
			require.NoError(t, ep.CloseWithError(errHardBoom))
		}
		wg.Wait()
		lb.wg.Wait()
		require.Zero(t, ep.Caller.Pending(), "round %d", round)
		_, err := ep.Caller.Get(context.Background(), "peer.example", iq.NewElement(hardeningNS, "q"))
		require.ErrorIs(t, err, iq.ErrClosed)
		require.Eventually(t, func() bool { return ep.Callee.InFlight() == 0 }, hardWait, hardTick)
	}
	assert.Zero(t, wrong.Load())
	assert.Positive(t, closed.Load())
	t.Logf("close races: %d rounds × %d goroutines: %d answered, %d ended ErrClosed, %d handlers run, 0 left pending",
		rounds, workers, ok.Load(), closed.Load(), served.Load())
}

// TestHardeningFaultHandler runs handlers that fail every way a handler
// can: each request still gets exactly one reply, the process survives,
// and the Endpoint goes on serving.
func TestHardeningFaultHandler(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	cases := []struct {
		name     string
		h        iq.HandlerFunc
		closeEp  bool // the handler ends only when the Endpoint closes
		wantCond iq.Condition
	}{
		{"panics with a string", func(context.Context, *iq.IQ) (*iq.Element, error) { panic("boom") }, false, iq.InternalServerError},
		{"panics with an error", func(context.Context, *iq.IQ) (*iq.Element, error) { panic(errHardBoom) }, false, iq.InternalServerError},
		{"panics with nil", func(context.Context, *iq.IQ) (*iq.Element, error) { panic(nil) }, false, iq.InternalServerError},
		{"calls runtime.Goexit", func(context.Context, *iq.IQ) (*iq.Element, error) { runtime.Goexit(); return nil, nil }, false, iq.InternalServerError},
		{"returns a plain error", func(context.Context, *iq.IQ) (*iq.Element, error) { return nil, errHardBoom }, false, iq.InternalServerError},
		{"blocks until Endpoint.Close", func(ctx context.Context, _ *iq.IQ) (*iq.Element, error) {
			<-ctx.Done()
			if !errors.Is(context.Cause(ctx), iq.ErrClosed) {
				return nil, iq.NewError(iq.Cancel, iq.Conflict, "wrong cause")
			}
			return nil, ctx.Err()
		}, true, iq.InternalServerError},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			sink := iqtest.NewRecorder()
			ep := iq.NewEndpoint(sink)
			defer ep.Close()
			ep.Callee.Get(hardeningNS, "bad", tc.h)
			ep.Callee.Get(hardeningNS, "good", func(context.Context, *iq.IQ) (*iq.Element, error) { return nil, nil })

			ep.Receive(context.Background(), &iq.IQ{Type: iq.TypeGet, ID: "bad1", From: "x@example.com/y", Payload: iq.NewElement(hardeningNS, "bad")})
			if tc.closeEp {
				require.Eventually(t, func() bool { return ep.Callee.InFlight() == 1 }, hardWait, hardTick)
				assert.Zero(t, sink.Len(), "replied before Close")
				require.NoError(t, ep.Close())
			}
			require.Eventually(t, func() bool { return sink.Len() == 1 && ep.Callee.InFlight() == 0 }, hardWait, hardTick)
			reply := sink.Last()
			assert.Equal(t, "bad1", reply.ID)
			assert.Equal(t, "x@example.com/y", reply.To)
			require.Equal(t, iq.TypeError, reply.Type)
			require.NotNil(t, reply.Error)
			assert.Equal(t, tc.wantCond, reply.Error.Condition)
			assert.Equal(t, iq.Cancel, reply.Error.Type)
			assert.Empty(t, reply.Error.Text, "the failure's details leak to the peer")

			if !tc.closeEp {
				ep.Receive(context.Background(), &iq.IQ{Type: iq.TypeGet, ID: "good1", Payload: iq.NewElement(hardeningNS, "good")})
				require.Eventually(t, func() bool { return sink.Len() == 2 }, hardWait, hardTick)
				assert.Equal(t, iq.TypeResult, sink.Last().Type)
			}
			assert.Eventually(t, func() bool { return ep.Callee.InFlight() == 0 }, hardWait, hardTick)
			assert.Equal(t, map[bool]int{false: 2, true: 1}[tc.closeEp], sink.Len(), "replies")
		})
	}
}

// TestHardeningFaultHandlerOutlivesStream: a handler that ignores its
// context returns after the stream is gone. Its reply cannot be sent:
// that is logged, nothing panics, nothing is left running.
func TestHardeningFaultHandlerOutlivesStream(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	p1, p2 := net.Pipe()
	ca, cb := stream.New(p1), stream.New(p2)
	ea := iq.NewEndpoint(ca)
	logB := newHardCountLog()
	eb := iq.NewEndpoint(cb, iq.WithLogger(slog.New(logB)))
	started, release, returned := make(chan struct{}), make(chan struct{}), make(chan struct{})
	eb.Callee.Get(hardeningNS, "q", func(context.Context, *iq.IQ) (*iq.Element, error) {
		close(started)
		<-release // deaf to its context
		defer close(returned)
		return iq.NewElement(hardeningNS, "too-late"), nil
	})
	serveA, serveB := make(chan error, 1), make(chan error, 1)
	go func() { serveA <- ca.Serve(context.Background(), ea, nil) }()
	go func() { serveB <- cb.Serve(context.Background(), eb, nil) }()

	done := make(chan *iq.Call, 1)
	ea.Caller.Go(context.Background(), &iq.IQ{Type: iq.TypeGet, To: "peer.example", Payload: iq.NewElement(hardeningNS, "q")}, done)
	<-started
	require.NoError(t, ca.Close())
	got := <-done
	assert.ErrorIs(t, got.Err, iq.ErrClosed)
	assert.NoError(t, <-serveA)
	<-serveB
	require.Equal(t, 1, eb.Callee.InFlight())

	close(release)
	<-returned
	require.Eventually(t, func() bool { return eb.Callee.InFlight() == 0 }, hardWait, hardTick)
	assert.Equal(t, 1, logB.Count("reply not sent"))
	assert.Zero(t, ea.Caller.Pending())
}
