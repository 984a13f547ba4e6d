package iqtest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/iqtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const ns = "urn:example:iqtest"

func TestPairStampsFrom(t *testing.T) {
	p := iqtest.NewPair("juliet@example.com/balcony", "service.example.com")
	defer p.Close()
	type seen struct{ from, to string }
	got := make(chan seen, 1)
	p.B.Callee.Get(ns, "q", func(_ context.Context, req *iq.IQ) (*iq.Element, error) {
		got <- seen{req.From, req.To}
		return iq.NewElement(ns, "a"), nil
	})
	tests := []struct {
		name, from, to string
	}{
		{"no from", "", "service.example.com"},
		{"forged from", "admin@example.com", "service.example.com"},
		{"other to, kept", "", "elsewhere.example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			resp, err := p.A.Caller.Request(ctx, &iq.IQ{Type: iq.TypeGet, From: tt.from, To: tt.to, Payload: iq.NewElement(ns, "q")})
			s := <-got
			assert.Equal(t, p.AJID, s.from, "from is stamped")
			assert.Equal(t, tt.to, s.to, "to is kept")
			if tt.to != p.BJID {
				// B answers from its own address, which A does not accept
				// for a request sent elsewhere: the response is spoofed.
				require.ErrorIs(t, err, iq.ErrTimeout)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, p.BJID, resp.From)
			assert.Equal(t, p.AJID, resp.To)
		})
	}
}

func TestPairCrossesAsXML(t *testing.T) {
	p := iqtest.NewPair("a@example.com/x", "b@example.com/y")
	defer p.Close()
	var sent *iq.Element
	p.B.Callee.Get(ns, "q", func(_ context.Context, req *iq.IQ) (*iq.Element, error) {
		sent = req.Payload
		return req.Payload, nil
	})
	payload := iq.NewElement(ns, "q", "k", `<&">`).AppendText("t<&>")
	res, err := p.A.Caller.Get(context.Background(), p.BJID, payload)
	require.NoError(t, err)
	assert.True(t, payload.Equal(res), "%s vs %s", payload, res)
	assert.NotSame(t, payload, sent, "the other side gets a parsed copy")
	assert.NotSame(t, sent, res)
}

func TestPairOrderAndLatency(t *testing.T) {
	const n = 30
	const latency = 10 * time.Millisecond
	var mu sync.Mutex
	var requests, replies []string
	record := func(in *iq.IQ) bool {
		mu.Lock()
		defer mu.Unlock()
		if in.IsRequest() {
			requests = append(requests, in.ID)
		} else {
			replies = append(replies, in.ID)
		}
		return false
	}
	// B has no handler: it answers each request from the delivering
	// goroutine, so its replies are sent in the order it received them.
	p := iqtest.NewPair("a@example.com/x", "b.example.com", iqtest.WithLatency(latency), iqtest.WithDrop(record))
	defer p.Close()
	start := time.Now()
	done := make(chan *iq.Call, n)
	for i := range n {
		p.A.Caller.Go(context.Background(), &iq.IQ{ID: fmt.Sprintf("r%02d", i), Type: iq.TypeGet, To: p.BJID, Payload: iq.NewElement(ns, "q")}, done)
	}
	for range n {
		call := <-done
		require.ErrorIs(t, call.Err, &iq.StanzaError{Condition: iq.FeatureNotImplemented})
	}
	assert.GreaterOrEqual(t, time.Since(start), 2*latency, "a round trip takes twice the latency")
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, requests, replies, "delivered in order")
	assert.Len(t, requests, n)
}

func TestPairLoss(t *testing.T) {
	tests := []struct {
		name      string
		loss      float64
		wantSome  bool // some answered
		wantLoss  bool // some lost
		timeoutMs int
	}{
		{"none", 0, true, false, 2000},
		{"all", 1, false, true, 20},
		{"half", 0.5, true, true, 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := iqtest.NewPair("a@example.com/x", "b.example.com", iqtest.WithLoss(tt.loss))
			defer p.Close()
			p.B.Callee.Get(ns, "q", func(context.Context, *iq.IQ) (*iq.Element, error) { return nil, nil })
			const n = 100
			var ok, lost atomic.Int64
			var wg sync.WaitGroup
			for range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					ctx, cancel := context.WithTimeout(context.Background(), time.Duration(tt.timeoutMs)*time.Millisecond)
					defer cancel()
					_, err := p.A.Caller.Get(ctx, p.BJID, iq.NewElement(ns, "q"))
					switch {
					case err == nil:
						ok.Add(1)
					case errors.Is(err, iq.ErrTimeout):
						lost.Add(1)
					default:
						t.Errorf("unexpected error %v", err)
					}
				}()
			}
			wg.Wait()
			assert.Equal(t, tt.wantSome, ok.Load() > 0, "answered: %d", ok.Load())
			assert.Equal(t, tt.wantLoss, lost.Load() > 0, "lost: %d", lost.Load())
		})
	}
}

func TestPairClose(t *testing.T) {
	p := iqtest.NewPair("a@example.com/x", "b.example.com", iqtest.WithLatency(time.Hour))
	call := p.A.Caller.Go(context.Background(), &iq.IQ{Type: iq.TypeGet, To: p.BJID, Payload: iq.NewElement(ns, "q")}, nil)
	require.NoError(t, p.Close())
	require.NoError(t, p.Close(), "idempotent")
	<-call.Done
	assert.ErrorIs(t, call.Err, iq.ErrClosed)
	// The Endpoints are closed, and their Senders refuse to send.
	_, err := p.A.Caller.Get(context.Background(), p.BJID, iq.NewElement(ns, "q"))
	assert.ErrorIs(t, err, iq.ErrClosed)
	err = p.B.Caller.Go(context.Background(), &iq.IQ{Type: iq.TypeGet, Payload: iq.NewElement(ns, "q")}, nil).Err
	assert.ErrorIs(t, err, iq.ErrClosed)

	// What an Endpoint sends after is refused with ErrClosed: here the
	// Callee's reply to a request handed to it directly.
	var logs strings.Builder
	var mu sync.Mutex
	p2 := iqtest.NewPair("a@example.com/x", "b.example.com", iqtest.WithEndpointOptions(
		iq.WithLogger(slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil)))))
	p2.Close()
	p2.B.Receive(context.Background(), iqtest.NewRequest(`<iq type='get' id='late'><q xmlns='urn:example:iqtest'/></iq>`))
	mu.Lock()
	assert.Contains(t, logs.String(), iqtest.ErrClosed.Error())
	mu.Unlock()
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestRecorder(t *testing.T) {
	var r iqtest.Recorder // the zero value is ready
	assert.Nil(t, r.Last())
	assert.Zero(t, r.Len())

	c := iq.NewCallee(&r)
	defer c.Close()
	c.Get(ns, "q", func(context.Context, *iq.IQ) (*iq.Element, error) { return nil, nil })
	for _, id := range []string{"1", "2", "3"} {
		c.Receive(context.Background(), &iq.IQ{ID: id, Type: iq.TypeGet, Payload: iq.NewElement(ns, "q")})
	}
	got, err := r.WaitFor(3, 5*time.Second)
	require.NoError(t, err)
	require.Len(t, got, 3)
	ids := map[string]bool{}
	for _, q := range got {
		assert.Equal(t, iq.TypeResult, q.Type)
		ids[q.ID] = true
	}
	assert.Len(t, ids, 3)
	assert.Equal(t, 3, r.Len())
	assert.Equal(t, got, r.Sent())
	assert.Same(t, got[2], r.Last())

	_, err = r.WaitFor(4, 10*time.Millisecond)
	assert.EqualError(t, err, "iqtest: 3 of 4 IQs sent after 10ms")

	r.Reset()
	assert.Zero(t, r.Len())
	boom := errors.New("boom")
	r.FailWith(boom)
	assert.ErrorIs(t, r.SendIQ(context.Background(), &iq.IQ{ID: "x"}), boom)
	assert.Equal(t, "x", r.Last().ID, "failed sends are recorded too")
	r.FailWith(nil)
	assert.NoError(t, r.SendIQ(context.Background(), &iq.IQ{ID: "y"}))
}

func TestRecorderWaitForConcurrent(t *testing.T) {
	r := iqtest.NewRecorder()
	const n = 100
	go func() {
		for i := range n {
			_ = r.SendIQ(context.Background(), &iq.IQ{ID: fmt.Sprint(i)})
		}
	}()
	got, err := r.WaitFor(n, 5*time.Second)
	require.NoError(t, err)
	assert.Len(t, got, n)
}

func TestNewRequest(t *testing.T) {
	q := iqtest.NewRequest(`<iq type='get' id='1' from='a@b/c' to='d'><q xmlns='urn:example:iqtest'/></iq>`)
	assert.Equal(t, iq.TypeGet, q.Type)
	assert.Equal(t, "a@b/c", q.From)
	assert.Equal(t, ns, q.Payload.Name.Space)
	assert.Panics(t, func() { iqtest.NewRequest(`<iq`) })
	assert.Panics(t, func() { iqtest.NewRequest(`<message/>`) })
}

func ExampleNewPair() {
	p := iqtest.NewPair("juliet@example.com/balcony", "echo.example.com")
	defer p.Close()
	p.B.Callee.Get("urn:example:echo", "echo", func(_ context.Context, req *iq.IQ) (*iq.Element, error) {
		// The Pair stamps the sender's address, as a server does.
		return iq.NewElement("urn:example:echo", "echo").AppendText(req.From), nil
	})

	res, err := p.A.Caller.Get(context.Background(), p.BJID, iq.NewElement("urn:example:echo", "echo"))
	fmt.Println(res.Text(), err)
	// Output:
	// juliet@example.com/balcony <nil>
}

func ExampleRecorder() {
	rec := iqtest.NewRecorder()
	callee := iq.NewCallee(rec)
	defer callee.Close()

	// No handler: answered at once, from Receive's goroutine.
	callee.Receive(context.Background(), iqtest.NewRequest(
		`<iq type='get' id='u1' from='romeo@montague.lit/orchard'><query xmlns='urn:example:unknown'/></iq>`))
	sent, err := rec.WaitFor(1, time.Second)
	fmt.Println(len(sent), err)
	fmt.Println(rec.Last())
	// Output:
	// 1 <nil>
	// <iq type="error" id="u1" to="romeo@montague.lit/orchard"><error type="cancel"><feature-not-implemented xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></iq>
}

func TestRecorderNext(t *testing.T) {
	r := iqtest.NewRecorder()
	_, err := r.Next(10 * time.Millisecond)
	assert.EqualError(t, err, "iqtest: nothing more sent after 10ms (0 IQs sent)")

	for _, id := range []string{"1", "2"} {
		require.NoError(t, r.SendIQ(context.Background(), &iq.IQ{ID: id}))
	}
	for _, want := range []string{"1", "2"} {
		q, err := r.Next(0)
		require.NoError(t, err, "what was sent already is returned at once")
		assert.Equal(t, want, q.ID)
	}
	_, err = r.Next(10 * time.Millisecond)
	assert.EqualError(t, err, "iqtest: nothing more sent after 10ms (2 IQs sent)", "nothing more sent")
	assert.Equal(t, 2, r.Len(), "Next does not consume")

	go func() { _ = r.SendIQ(context.Background(), &iq.IQ{ID: "3"}) }()
	q, err := r.Next(5 * time.Second)
	require.NoError(t, err, "Next waits for a send")
	assert.Equal(t, "3", q.ID)

	r.Reset()
	require.NoError(t, r.SendIQ(context.Background(), &iq.IQ{ID: "4"}))
	q, err = r.Next(0)
	require.NoError(t, err)
	assert.Equal(t, "4", q.ID, "Reset starts the walk again")
}

func TestRecorderOnSend(t *testing.T) {
	r := iqtest.NewRecorder()
	c := iq.NewCaller(r)
	defer c.Close()
	boom := errors.New("boom")
	r.FailWith(boom)
	// The other side of the Caller, answering before SendIQ returns; the
	// IQ is recorded by the time f runs.
	r.OnSend(func(ctx context.Context, req *iq.IQ) error {
		assert.NoError(t, ctx.Err())
		assert.Same(t, req, r.Last())
		if req.Payload.AttrValue("fail") != "" {
			return boom
		}
		assert.True(t, c.Receive(req.Result(iq.NewElement(ns, "a"))))
		return nil
	})
	res, err := c.Get(context.Background(), "b.example.com", iq.NewElement(ns, "q"))
	require.NoError(t, err, "OnSend's result replaces FailWith's error")
	assert.Equal(t, "a", res.Name.Local)
	_, err = c.Get(context.Background(), "b.example.com", iq.NewElement(ns, "q", "fail", "1"))
	assert.ErrorIs(t, err, boom)
	assert.Equal(t, 2, r.Len(), "sends are recorded")

	r.OnSend(nil)
	_, err = c.Get(context.Background(), "b.example.com", iq.NewElement(ns, "q"))
	assert.ErrorIs(t, err, boom, "back to FailWith's error")
	assert.Equal(t, 3, r.Len())
}

func TestPairWireTap(t *testing.T) {
	var mu sync.Mutex
	var wire []string
	tap := func(from string, raw []byte) {
		mu.Lock()
		defer mu.Unlock()
		wire = append(wire, from+" "+string(raw))
	}
	p := iqtest.NewPair("a@example.com/x", "b.example.com", iqtest.WithWireTap(tap),
		iqtest.WithDrop(func(in *iq.IQ) bool { return in.Payload != nil && in.Payload.Name.Local == "lost" }))
	defer p.Close()
	p.B.Callee.Get(ns, "q", func(context.Context, *iq.IQ) (*iq.Element, error) { return nil, nil })
	_, err := p.A.Caller.Get(context.Background(), p.BJID, iq.NewElement(ns, "q", "k", "<&>"))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err = p.A.Caller.Get(ctx, p.BJID, iq.NewElement(ns, "lost"))
	require.ErrorIs(t, err, iq.ErrTimeout)

	mu.Lock()
	defer mu.Unlock()
	require.Len(t, wire, 3, "the dropped IQ is tapped too")
	assert.Regexp(t, `^a@example.com/x <iq type="get" id="[^"]+" to="b.example.com"><q xmlns="urn:example:iqtest" k="&lt;&amp;&gt;"`, wire[0])
	assert.NotContains(t, wire[0], "from=", "as sent: no from stamped yet")
	assert.Regexp(t, `^b.example.com <iq type="result" id="[^"]+" to="a@example.com/x"`, wire[1])
	assert.Regexp(t, `^a@example.com/x <iq type="get" .*<lost `, wire[2])
}

// TestBugBadOptionValuesSilentlyAccepted: WithLoss(2) and WithLatency(-1s)
// were taken as given, a loss that is no probability and a latency that
// delivers nothing late. Each now panics at the call; zero keeps the
// default of no loss and no latency.
func TestBugBadOptionValuesSilentlyAccepted(t *testing.T) {
	for _, tc := range []struct {
		name string
		call func()
		msg  string // "" for no panic
	}{
		{"Loss/overOne", func() { iqtest.WithLoss(2) }, "iqtest: WithLoss: probability 2 not in [0, 1]"},
		{"Loss/negative", func() { iqtest.WithLoss(-0.1) }, "iqtest: WithLoss: probability -0.1 not in [0, 1]"},
		{"Loss/NaN", func() { iqtest.WithLoss(math.NaN()) }, "iqtest: WithLoss: probability NaN not in [0, 1]"},
		{"Loss/zero", func() { iqtest.WithLoss(0) }, ""},
		{"Loss/one", func() { iqtest.WithLoss(1) }, ""},
		{"Latency/negative", func() { iqtest.WithLatency(-time.Second) }, "iqtest: WithLatency: negative duration -1s"},
		{"Latency/zero", func() { iqtest.WithLatency(0) }, ""},
		{"Drop/nil", func() { iqtest.WithDrop(nil) }, ""},
		{"WireTap/nil", func() { iqtest.WithWireTap(nil) }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.msg == "" {
				assert.NotPanics(t, tc.call)
				return
			}
			assert.PanicsWithValue(t, tc.msg, tc.call)
		})
	}
}
