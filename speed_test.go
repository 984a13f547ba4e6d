package iq_test

import (
	"context"
	"regexp"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/iqtest"
)

type speedKey struct{}

// TestSpeedGeneratedIDs: the ids the Caller gives requests (Get, and
// Request for an IQ without one) are fresh, NewID-shaped, and survive the
// request that carried them unchanged.
func TestSpeedGeneratedIDs(t *testing.T) {
	shape := regexp.MustCompile(`^[A-Za-z0-9_-]{16}$`)
	tests := []struct {
		name string
		send func(c *iq.Caller) error
	}{
		{"Get", func(c *iq.Caller) error {
			_, err := c.Get(context.Background(), "", iq.NewElement("urn:example:id", "q"))
			return err
		}},
		{"Request without id", func(c *iq.Caller) error {
			_, err := c.Request(context.Background(), &iq.IQ{Type: iq.TypeSet, Payload: iq.NewElement("urn:example:id", "q")})
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := iqtest.NewRecorder()
			var c *iq.Caller
			rec.OnSend(func(_ context.Context, out *iq.IQ) error {
				go c.Receive(out.Result(nil))
				return nil
			})
			c = iq.NewCaller(rec)
			defer c.Close()
			const n = 200
			for range n {
				require.NoError(t, tt.send(c))
			}
			seen := make(map[string]bool, n)
			for _, sent := range rec.Sent() {
				require.Regexp(t, shape, sent.ID)
				assert.False(t, seen[sent.ID], "id %q given twice", sent.ID)
				seen[sent.ID] = true
			}
			assert.Len(t, seen, n)
		})
	}
}

// TestSpeedHandlerContext: the context a handler started by Receive sees
// carries the values and deadline of Receive's, and ends once the handler
// returns with context.Canceled as its cause, or when the Callee closes
// while it runs with ErrClosed.
func TestSpeedHandlerContext(t *testing.T) {
	tests := []struct {
		name      string
		closeIt   bool
		wantCause error
	}{
		{"returned", false, context.Canceled},
		{"closed while running", true, iq.ErrClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := iqtest.NewRecorder()
			c := iq.NewCallee(rec)
			seen := make(chan context.Context, 1)
			release := make(chan struct{})
			c.Get("urn:example:ctx", "q", func(ctx context.Context, _ *iq.IQ) (*iq.Element, error) {
				seen <- ctx
				<-release
				return nil, nil
			})
			deadline := time.Now().Add(time.Hour)
			ctx, cancel := context.WithDeadline(context.WithValue(context.Background(), speedKey{}, "v"), deadline)
			defer cancel()
			c.Receive(ctx, &iq.IQ{Type: iq.TypeGet, ID: "c1", Payload: iq.NewElement("urn:example:ctx", "q")})
			hctx := <-seen
			assert.Equal(t, "v", hctx.Value(speedKey{}))
			d, ok := hctx.Deadline()
			assert.True(t, ok)
			assert.Equal(t, deadline, d)
			assert.NoError(t, hctx.Err(), "done before its handler returned")
			if tt.closeIt {
				require.NoError(t, c.Close())
				<-hctx.Done()
				assert.Equal(t, tt.wantCause, context.Cause(hctx))
			}
			close(release)
			// Drain, not the reply's arrival: the slot is given back
			// just after the reply is handed to the Sender.
			require.NoError(t, c.Drain(context.Background()))
			require.Equal(t, 1, rec.Len())
			<-hctx.Done()
			assert.ErrorIs(t, hctx.Err(), context.Canceled)
			assert.Equal(t, tt.wantCause, context.Cause(hctx))
			assert.Equal(t, iq.TypeResult, rec.Last().Type)
			assert.Zero(t, c.InFlight())
		})
	}
}

// TestSpeedReceiveSenders: Receive ends a request, once, for a response
// from a sender allowed to answer it, whether it takes the path that
// parses no address (from the request's to, no from, no to while the
// local JID is unknown) or the one that does (bare JID, domain, local
// JID); it drops a response from anyone else, leaving the request
// pending for the right one.
func TestSpeedReceiveSenders(t *testing.T) {
	tests := []struct {
		name    string
		local   string
		to      string
		from    string
		allowed bool
	}{
		{"from the to", "", "juliet@example.com/balcony", "juliet@example.com/balcony", true},
		{"no from", "romeo@example.net/orchard", "juliet@example.com/balcony", "", true},
		{"no to, local unknown", "", "", "anyone@example.org/x", true},
		{"bare JID of the to", "", "juliet@example.com/balcony", "juliet@example.com", true},
		{"domain of the to", "", "juliet@example.com/balcony", "example.com", true},
		{"to in another form", "", "juliet@EXAMPLE.com/balcony", "juliet@example.com/balcony", true},
		{"local domain", "romeo@example.net/orchard", "juliet@example.com/balcony", "example.net", true},
		{"spoofed", "romeo@example.net/orchard", "juliet@example.com/balcony", "mallory@evil.example/x", false},
		{"no to, spoofed once local known", "romeo@example.net/orchard", "", "mallory@evil.example/x", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sent := make(chan *iq.IQ, 1)
			c := iq.NewCaller(iq.SenderFunc(func(_ context.Context, out *iq.IQ) error {
				sent <- out
				return nil
			}), iq.WithLocalJID(tt.local))
			defer c.Close()
			done := make(chan *iq.Call, 1)
			c.Go(context.Background(), &iq.IQ{Type: iq.TypeGet, To: tt.to, Payload: iq.NewElement("urn:example:s", "q")}, done)
			out := <-sent
			resp := &iq.IQ{Type: iq.TypeResult, ID: out.ID, From: tt.from}
			assert.Equal(t, tt.allowed, c.Receive(resp))
			if !tt.allowed {
				assert.Equal(t, 1, c.Pending())
				require.True(t, c.Receive(&iq.IQ{Type: iq.TypeResult, ID: out.ID}), "the right sender still can")
			}
			call := <-done
			require.NoError(t, call.Err)
			assert.Zero(t, c.Pending())
			assert.False(t, c.Receive(&iq.IQ{Type: iq.TypeResult, ID: out.ID}), "a request ends once")
		})
	}
}

// TestSpeedIdleWorkersEnd: the workers that ran handlers end once no
// request has come for a while, without Close: however their idle timer
// is kept, none is left behind.
func TestSpeedIdleWorkersEnd(t *testing.T) {
	before := runtime.NumGoroutine()
	rec := iqtest.NewRecorder()
	c := iq.NewCallee(rec)
	release := make(chan struct{})
	c.Get("urn:example:w", "q", func(context.Context, *iq.IQ) (*iq.Element, error) {
		<-release
		return nil, nil
	})
	const n = 32
	for i := range n {
		c.Receive(context.Background(), &iq.IQ{Type: iq.TypeGet, ID: strconv.Itoa(i), Payload: iq.NewElement("urn:example:w", "q")})
	}
	require.Eventually(t, func() bool { return runtime.NumGoroutine() >= before+n }, 5*time.Second, time.Millisecond)
	close(release)
	require.Eventually(t, func() bool { return rec.Len() == n }, 5*time.Second, time.Millisecond)
	// Workers kept busy by a stream of requests stay; then they end.
	for i := range 200 {
		c.Receive(context.Background(), &iq.IQ{Type: iq.TypeGet, ID: "s" + strconv.Itoa(i), Payload: iq.NewElement("urn:example:w", "q")})
	}
	waitGoroutines(t, before, 10*time.Second, "idle workers did not end")
	assert.Equal(t, n+200, rec.Len())
}

// TestSpeedReceiveRaces: a response, a duplicate of it and the request's
// cancellation race; exactly one ends the request, and the Call tells
// which: at most one Receive reports true, and then the Call carries the
// response, else the context's error.
func TestSpeedReceiveRaces(t *testing.T) {
	tests := []struct {
		name string
		from string // "" takes the path that parses no address
		to   string
	}{
		{"no address parsed", "", "juliet@example.com/balcony"},
		{"address parsed", "juliet@example.com", "juliet@example.com/balcony"},
	}
	rounds := 2000
	if raceEnabled {
		rounds = 500
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sent := make(chan *iq.IQ, 1)
			c := iq.NewCaller(iq.SenderFunc(func(_ context.Context, out *iq.IQ) error {
				sent <- out
				return nil
			}))
			defer c.Close()
			for range rounds {
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan *iq.Call, 1)
				c.Go(ctx, &iq.IQ{Type: iq.TypeGet, To: tt.to, Payload: iq.NewElement("urn:example:r", "q")}, done)
				out := <-sent
				ended := make(chan bool, 2)
				for range 2 {
					go func() { ended <- c.Receive(&iq.IQ{Type: iq.TypeResult, ID: out.ID, From: tt.from}) }()
				}
				go cancel()
				call := <-done
				wins := 0
				for range 2 {
					if <-ended {
						wins++
					}
				}
				if call.Err == nil {
					require.Equal(t, 1, wins, "answered: exactly one Receive ended it")
					require.NotNil(t, call.Response)
				} else {
					require.ErrorIs(t, call.Err, context.Canceled)
					require.Zero(t, wins, "cancelled: no Receive ended it")
				}
			}
			assert.Zero(t, c.Pending())
		})
	}
}

// TestSpeedIdleWorkersEndAfterBursts: bursts of requests separated by
// pauses around the reaper's period, so that workers go idle while the
// reaper disarms itself; whatever the interleaving, every idle worker
// ends in the end (none is left waiting with the reaper off).
func TestSpeedIdleWorkersEndAfterBursts(t *testing.T) {
	before := runtime.NumGoroutine()
	rec := iqtest.NewRecorder()
	c := iq.NewCallee(rec)
	c.Get("urn:example:w", "q", func(context.Context, *iq.IQ) (*iq.Element, error) { return nil, nil })
	sent := 0
	for round := range 30 {
		for range 1 + round%8 {
			c.Receive(context.Background(), &iq.IQ{Type: iq.TypeGet, ID: strconv.Itoa(sent), Payload: iq.NewElement("urn:example:w", "q")})
			sent++
		}
		time.Sleep(time.Duration(round%4) * 9 * time.Millisecond)
	}
	require.Eventually(t, func() bool { return rec.Len() == sent }, 5*time.Second, time.Millisecond)
	waitGoroutines(t, before, 10*time.Second, "idle workers did not end")
}

// waitGoroutines waits until at most n goroutines run, and fails the test
// if that takes longer than d. It polls on the test's own goroutine:
// require.Eventually runs its condition on a goroutine of its own, which
// NumGoroutine counts, so that run alone (no goroutine of an earlier test
// to end meanwhile) the condition could never hold.
func waitGoroutines(t *testing.T, n int, d time.Duration, msg string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for runtime.NumGoroutine() > n && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	require.LessOrEqual(t, runtime.NumGoroutine(), n, msg)
}

// TestSpeedCloseEndsIdleWorkers: Close ends the workers waiting for a
// next request at once, reaper or not (Close stops the reaper), and a
// worker that finishes its handler after Close ends rather than waiting;
// Receives racing Close are all answered.
func TestSpeedCloseEndsIdleWorkers(t *testing.T) {
	for round := range 20 {
		before := runtime.NumGoroutine()
		rec := iqtest.NewRecorder()
		c := iq.NewCallee(rec)
		release := make(chan struct{})
		c.Get("urn:example:w", "q", func(ctx context.Context, req *iq.IQ) (*iq.Element, error) {
			if req.ID[0] == 'b' {
				<-release // still running when Close comes
			}
			return nil, nil
		})
		const idle, busy = 16, 4
		for i := range idle {
			c.Receive(context.Background(), &iq.IQ{Type: iq.TypeGet, ID: "i" + strconv.Itoa(i), Payload: iq.NewElement("urn:example:w", "q")})
		}
		require.Eventually(t, func() bool { return rec.Len() == idle }, 5*time.Second, time.Millisecond)
		for i := range busy {
			c.Receive(context.Background(), &iq.IQ{Type: iq.TypeGet, ID: "b" + strconv.Itoa(i), Payload: iq.NewElement("urn:example:w", "q")})
		}
		racing := make(chan struct{})
		go func() {
			defer close(racing)
			for i := range 50 {
				c.Receive(context.Background(), &iq.IQ{Type: iq.TypeGet, ID: "r" + strconv.Itoa(i), Payload: iq.NewElement("urn:example:w", "q")})
			}
		}()
		if round%2 == 1 {
			runtime.Gosched()
		}
		require.NoError(t, c.Close())
		<-racing
		close(release)
		require.Eventually(t, func() bool { return rec.Len() == idle+busy+50 }, 5*time.Second, time.Millisecond, "every request answered")
		waitGoroutines(t, before, 2*time.Second, "workers outlived Close")
	}
}
