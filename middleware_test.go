package iq_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"expvar"
	"fmt"
	"log/slog"
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

const mwNS = "urn:example:mw"

// mwRequest returns a get for <q xmlns='urn:example:mw'/> from from.
func mwRequest(id, from string) *iq.IQ {
	return &iq.IQ{ID: id, Type: iq.TypeGet, From: from, To: "service.example.com", Payload: iq.NewElement(mwNS, "q")}
}

// mwCallee returns a Callee with a handler for mwRequest that counts its
// calls.
func mwCallee(opts ...iq.Option) (*iq.Callee, *atomic.Int64) {
	c := iq.NewCallee(iqtest.NewRecorder(), opts...)
	var calls atomic.Int64
	c.Get(mwNS, "q", func(context.Context, *iq.IQ) (*iq.Element, error) {
		calls.Add(1)
		return nil, nil
	})
	return c, &calls
}

func TestCalleeUse(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	var mu sync.Mutex
	var trace []string
	mark := func(name string) iq.Middleware {
		return func(next iq.Handler) iq.Handler {
			return iq.HandlerFunc(func(ctx context.Context, req *iq.IQ) (*iq.Element, error) {
				mu.Lock()
				trace = append(trace, name)
				mu.Unlock()
				return next.HandleIQ(ctx, req)
			})
		}
	}
	c := iq.NewCallee(iqtest.NewRecorder())
	defer c.Close()
	c.Use(mark("first"), mark("second")) // before registration
	c.Get(mwNS, "q", func(context.Context, *iq.IQ) (*iq.Element, error) {
		mu.Lock()
		trace = append(trace, "handler")
		mu.Unlock()
		return nil, nil
	})
	c.Use(mark("third")) // after registration

	reply := c.Reply(context.Background(), mwRequest("1", "a@example.com"))
	require.Equal(t, iq.TypeResult, reply.Type)
	assert.Equal(t, []string{"first", "second", "third", "handler"}, trace)

	// Requests answered without a handler do not reach middleware.
	trace = nil
	reply = c.Reply(context.Background(), &iq.IQ{ID: "2", Type: iq.TypeGet, Payload: iq.NewElement("urn:other", "q")})
	assert.Equal(t, iq.FeatureNotImplemented, reply.Error.Condition)
	reply = c.Reply(context.Background(), &iq.IQ{Type: iq.TypeGet, Payload: iq.NewElement(mwNS, "q")})
	assert.Equal(t, iq.BadRequest, reply.Error.Condition)
	assert.Empty(t, trace)

	// Handler returns the wrapped handler.
	h, serr := c.Handler(mwRequest("3", ""))
	require.Nil(t, serr)
	_, err := h.HandleIQ(context.Background(), mwRequest("3", ""))
	require.NoError(t, err)
	assert.Equal(t, []string{"first", "second", "third", "handler"}, trace)

	assert.PanicsWithValue(t, "iq: Use: nil middleware", func() { c.Use(mark("x"), nil) })
}

func TestCalleeUseConcurrent(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	rec := iqtest.NewRecorder()
	c := iq.NewCallee(rec)
	defer c.Close()
	var ran atomic.Int64
	c.Get(mwNS, "q", func(context.Context, *iq.IQ) (*iq.Element, error) { return nil, nil })
	const n = 200
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := range n {
			c.Receive(context.Background(), mwRequest(fmt.Sprint(i), "a@example.com"))
		}
	}()
	go func() {
		defer wg.Done()
		for range 20 {
			c.Use(func(next iq.Handler) iq.Handler {
				return iq.HandlerFunc(func(ctx context.Context, req *iq.IQ) (*iq.Element, error) {
					ran.Add(1)
					return next.HandleIQ(ctx, req)
				})
			})
		}
	}()
	wg.Wait()
	replies, err := rec.WaitFor(n, 5*time.Second)
	require.NoError(t, err)
	for _, r := range replies {
		assert.Equal(t, iq.TypeResult, r.Type)
	}
	// Once Use has returned, every request goes through all middleware.
	before := ran.Load()
	require.Equal(t, iq.TypeResult, c.Reply(context.Background(), mwRequest("last", "")).Type)
	assert.Equal(t, int64(20), ran.Load()-before)
}

func TestRules(t *testing.T) {
	const me = "juliet@example.com/balcony"
	tests := []struct {
		name  string
		rule  iq.Rule
		allow []string
		deny  []string
	}{
		{"own account", iq.OwnAccount(me),
			[]string{"", "juliet@example.com", "Juliet@EXAMPLE.com", "juliet@example.com/balcony", "juliet@example.com."},
			[]string{"juliet@example.com/chamber", "romeo@example.com", "example.com", "juliet@example.org", "@bad", "juliet@example.com/"}},
		{"own account of a bare JID", iq.OwnAccount("juliet@example.com"),
			[]string{"", "juliet@example.com"},
			[]string{"juliet@example.com/balcony", "example.com"}},
		{"own account of a component", iq.OwnAccount("echo.example.com"),
			[]string{"", "echo.example.com"},
			[]string{"example.com", "user@echo.example.com"}},
		{"own account unknown", iq.OwnAccount(""),
			[]string{""},
			[]string{"juliet@example.com", "example.com"}},
		{"JIDs", iq.JIDs("romeo@montague.lit", "nurse@capulet.lit/kitchen", "capulet.lit"),
			[]string{"romeo@montague.lit", "ROMEO@montague.lit/orchard", "nurse@capulet.lit/kitchen", "capulet.lit", "capulet.lit/admin"},
			[]string{"", "nurse@capulet.lit", "nurse@capulet.lit/garden", "juliet@capulet.lit", "montague.lit", "x@@y"}},
		{"domains", iq.Domains("capulet.lit", "EXAMPLE.com"),
			[]string{"capulet.lit", "nurse@capulet.lit/kitchen", "juliet@example.com", "example.com/x"},
			[]string{"", "montague.lit", "sub.capulet.lit", "capulet.lit.evil.com", "a@/"}},
		{"any of", iq.AnyOf(iq.OwnAccount(me), iq.Domains("capulet.lit"), nil),
			[]string{"", "juliet@example.com", "nurse@capulet.lit"},
			[]string{"romeo@montague.lit"}},
		{"predicate", iq.Rule(func(req *iq.IQ) bool { return strings.HasSuffix(req.From, "/admin") }),
			[]string{"x@y/admin"},
			[]string{"x@y", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, from := range tt.allow {
				assert.True(t, tt.rule(mwRequest("1", from)), "should allow %q", from)
			}
			for _, from := range tt.deny {
				assert.False(t, tt.rule(mwRequest("1", from)), "should deny %q", from)
			}
		})
	}
}

func TestRulePanics(t *testing.T) {
	tests := map[string]func(){
		"own account":    func() { iq.OwnAccount("@example.com") },
		"JIDs":           func() { iq.JIDs("ok@example.com", "bad@") },
		"domains user":   func() { iq.Domains("user@example.com") },
		"domains empty":  func() { iq.Domains("") },
		"allow nil":      func() { iq.Allow(nil) },
		"hidden nil":     func() { iq.AllowHidden(nil) },
		"timeout zero":   func() { iq.Timeout(0) },
		"logging nil":    func() { iq.Logging(nil) },
		"observe nil":    func() { iq.Observe(nil) },
		"observeLog nil": func() { iq.ObserveLog(nil, nil) },
	}
	for name, f := range tests {
		t.Run(name, func(t *testing.T) { assert.Panics(t, f) })
	}
}

func TestAllow(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	tests := []struct {
		name     string
		mw       iq.Middleware
		from     string
		wantType iq.ErrorType
		want     iq.Condition // "" for a result
	}{
		{"allowed", iq.Allow(iq.OwnAccount("me@example.com")), "", "", ""},
		{"forbidden", iq.Allow(iq.OwnAccount("me@example.com")), "eve@example.com/x", iq.Auth, iq.Forbidden},
		{"hidden allowed", iq.AllowHidden(iq.JIDs("boss@example.com")), "boss@example.com/desk", "", ""},
		{"hidden", iq.AllowHidden(iq.JIDs("boss@example.com")), "eve@example.com", iq.Cancel, iq.ServiceUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, calls := mwCallee()
			defer c.Close()
			c.Use(tt.mw)
			reply := c.Reply(context.Background(), mwRequest("1", tt.from))
			if tt.want == "" {
				assert.Equal(t, iq.TypeResult, reply.Type)
				assert.Equal(t, int64(1), calls.Load())
				return
			}
			require.Equal(t, iq.TypeError, reply.Type)
			assert.Equal(t, tt.wantType, reply.Error.Type)
			assert.Equal(t, tt.want, reply.Error.Condition)
			assert.Zero(t, calls.Load(), "a refused request must not reach the handler")
		})
	}
}

func TestAllowOverPair(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	p := iqtest.NewPair("eve@example.com/x", "me@example.com/home")
	defer p.Close()
	var calls atomic.Int64
	iq.HandleSet(p.B.Callee, func(context.Context, *typedEcho) (*typedEcho, error) {
		calls.Add(1)
		return nil, nil
	}, iq.Allow(iq.OwnAccount(p.BJID)))
	_, err := iq.SetAs[typedEcho](context.Background(), p.A.Caller, p.BJID, typedEcho{})
	require.ErrorIs(t, err, &iq.StanzaError{Type: iq.Auth, Condition: iq.Forbidden})
	assert.Zero(t, calls.Load())
}

func TestTimeout(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	const d = 100 * time.Millisecond
	release := make(chan struct{})
	var handlerDone sync.WaitGroup
	tests := []struct {
		name    string
		handler iq.HandlerFunc
		want    iq.Condition // "" for a result
		maxWait time.Duration
	}{
		{"in time", func(context.Context, *iq.IQ) (*iq.Element, error) {
			return iq.NewElement(mwNS, "ok"), nil
		}, "", time.Second},
		{"heeds its context", func(ctx context.Context, _ *iq.IQ) (*iq.Element, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		}, iq.RemoteServerTimeout, time.Second},
		{"ignores its context", func(ctx context.Context, _ *iq.IQ) (*iq.Element, error) {
			defer handlerDone.Done()
			<-release
			return iq.NewElement(mwNS, "late"), nil
		}, iq.RemoteServerTimeout, time.Second},
		{"fails in time", func(context.Context, *iq.IQ) (*iq.Element, error) {
			return nil, iq.NewError(iq.Modify, iq.NotAcceptable, "")
		}, iq.NotAcceptable, time.Second},
		{"panics in time", func(context.Context, *iq.IQ) (*iq.Element, error) {
			panic("boom")
		}, iq.InternalServerError, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "ignores its context" {
				handlerDone.Add(1)
			}
			c := iq.NewCallee(iqtest.NewRecorder())
			defer c.Close()
			c.Use(iq.Timeout(d))
			c.Get(mwNS, "q", tt.handler)
			start := time.Now()
			reply := c.Reply(context.Background(), mwRequest("1", "a@example.com"))
			assert.Less(t, time.Since(start), tt.maxWait)
			if tt.want == "" {
				assert.Equal(t, iq.TypeResult, reply.Type)
				return
			}
			require.Equal(t, iq.TypeError, reply.Type)
			assert.Equal(t, tt.want, reply.Error.Condition)
			if tt.want == iq.RemoteServerTimeout {
				assert.Equal(t, iq.Wait, reply.Error.Type)
				assert.GreaterOrEqual(t, time.Since(start), d)
			}
		})
	}
	close(release)
	handlerDone.Wait()
}

func TestTimeoutError(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	h := iq.Timeout(time.Millisecond)(iq.HandlerFunc(func(ctx context.Context, _ *iq.IQ) (*iq.Element, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}))
	_, err := h.HandleIQ(context.Background(), mwRequest("1", ""))
	require.ErrorIs(t, err, iq.ErrHandlerTimeout)
	var serr *iq.StanzaError
	require.ErrorAs(t, err, &serr)
	assert.Equal(t, iq.RemoteServerTimeout, serr.Condition)

	// The request's context ending first is no timeout: the handler is
	// waited for, and what it returns stands.
	ctx, cancel := context.WithCancel(context.Background())
	h = iq.Timeout(time.Hour)(iq.HandlerFunc(func(ctx context.Context, _ *iq.IQ) (*iq.Element, error) {
		cancel()
		<-ctx.Done()
		time.Sleep(5 * time.Millisecond)
		return iq.NewElement(mwNS, "late"), nil
	}))
	res, err := h.HandleIQ(ctx, mwRequest("2", ""))
	require.NoError(t, err)
	assert.Equal(t, "late", res.Name.Local)
}

func TestLogging(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	var buf bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewJSONHandler(lockedWriter{&mu, &buf}, nil))
	c := iq.NewCallee(iqtest.NewRecorder())
	defer c.Close()
	c.Use(iq.Logging(logger), iq.Allow(iq.OwnAccount("me@example.com")))
	c.Get(mwNS, "q", func(_ context.Context, req *iq.IQ) (*iq.Element, error) {
		if req.ID == "boom" {
			panic("boom")
		}
		return nil, nil
	})
	c.Reply(context.Background(), mwRequest("ok", "me@example.com"))
	c.Reply(context.Background(), mwRequest("no", "eve@example.com"))
	c.Reply(context.Background(), mwRequest("boom", ""))

	var records []map[string]any
	for line := range strings.Lines(buf.String()) {
		var r map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &r))
		records = append(records, r)
	}
	require.Len(t, records, 3)
	for i, want := range []struct{ id, from, reply string }{
		{"ok", "me@example.com", "result"},
		{"no", "eve@example.com", "forbidden"},
		{"boom", "", "panic"},
	} {
		assert.Equal(t, "iq: request", records[i]["msg"])
		assert.Equal(t, "INFO", records[i]["level"])
		assert.Equal(t, want.id, records[i]["id"])
		assert.Equal(t, want.from, records[i]["from"])
		assert.Equal(t, want.reply, records[i]["reply"])
		assert.Equal(t, mwNS, records[i]["ns"])
		assert.Equal(t, "q", records[i]["name"])
		assert.Equal(t, "get", records[i]["type"])
		assert.Contains(t, records[i], "duration")
	}
}

type lockedWriter struct {
	mu  *sync.Mutex
	buf *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

// expvarSnapshot decodes what an ExpvarMetrics shows.
type expvarSnapshot struct {
	Requests map[string]int64 `json:"requests"`
	Replies  map[string]int64 `json:"replies"`
	Latency  map[string]struct {
		Count, Total, Max int64
	} `json:"latency_ns"`
	Timeouts map[string]int64 `json:"timeouts"`
	Dropped  int64            `json:"dropped_replies"`
	Spoofed  int64            `json:"spoofed_responses"`
}

func snapshot(t *testing.T, v expvar.Var) expvarSnapshot {
	t.Helper()
	var s expvarSnapshot
	require.NoError(t, json.Unmarshal([]byte(v.String()), &s), "%s", v.String())
	return s
}

var observeRuns atomic.Int64

func TestObserve(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	m := iq.NewExpvarMetrics()
	name := fmt.Sprintf("iq_test_observe_%d", observeRuns.Add(1)) // -count=n publishes anew
	expvar.Publish(name, m)
	c := iq.NewCallee(iqtest.NewRecorder())
	defer c.Close()
	// Observe outside Timeout and Allow: it sees their answers.
	c.Use(iq.Observe(m), iq.Timeout(100*time.Millisecond), iq.Allow(iq.AnyOf(iq.OwnAccount(""), iq.Domains("example.com"))))
	c.Get(mwNS, "q", func(ctx context.Context, req *iq.IQ) (*iq.Element, error) {
		switch req.ID {
		case "slow":
			<-ctx.Done()
			return nil, ctx.Err()
		case "boom":
			panic("boom")
		}
		return nil, nil
	})
	c.Get(mwNS, "other", func(context.Context, *iq.IQ) (*iq.Element, error) { return nil, errors.New("x") })

	for _, id := range []string{"1", "2", "slow", "boom"} {
		c.Reply(context.Background(), mwRequest(id, "a@example.com"))
	}
	c.Reply(context.Background(), mwRequest("3", "eve@evil.example"))
	other := mwRequest("4", "")
	other.Payload = iq.NewElement(mwNS, "other")
	c.Reply(context.Background(), other)
	c.Reply(context.Background(), &iq.IQ{ID: "5", Type: iq.TypeGet, Payload: iq.NewElement("urn:unknown", "q")})

	s := snapshot(t, expvar.Get(name))
	q, o := "{"+mwNS+"}q", "{"+mwNS+"}other"
	assert.Equal(t, map[string]int64{q: 5, o: 1}, s.Requests)
	assert.Equal(t, map[string]int64{"result": 2, "remote-server-timeout": 1, "internal-server-error": 2, "forbidden": 1}, s.Replies)
	assert.Equal(t, map[string]int64{q: 1}, s.Timeouts)
	assert.Equal(t, int64(5), s.Latency[q].Count)
	assert.GreaterOrEqual(t, s.Latency[q].Max, int64(100*time.Millisecond))
	assert.GreaterOrEqual(t, s.Latency[q].Total, s.Latency[q].Max)
	assert.Zero(t, s.Dropped)
	assert.Zero(t, s.Spoofed)
}

func TestObserveTimeoutInside(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	m := iq.NewExpvarMetrics()
	c := iq.NewCallee(iqtest.NewRecorder())
	defer c.Close()
	c.Use(iq.Timeout(10*time.Millisecond), iq.Observe(m)) // Observe sees the expired context
	c.Get(mwNS, "q", func(ctx context.Context, _ *iq.IQ) (*iq.Element, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	reply := c.Reply(context.Background(), mwRequest("1", ""))
	assert.Equal(t, iq.RemoteServerTimeout, reply.Error.Condition)
	require.Eventually(t, func() bool { return len(snapshot(t, m).Timeouts) == 1 }, 5*time.Second, time.Millisecond)
}

func TestObserveLog(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	m := iq.NewExpvarMetrics()
	var buf bytes.Buffer
	var mu sync.Mutex
	next := slog.NewTextHandler(lockedWriter{&mu, &buf}, &slog.HandlerOptions{Level: slog.LevelError})
	logger := slog.New(iq.ObserveLog(m, next).WithAttrs([]slog.Attr{slog.String("k", "v")}).WithGroup("g"))

	// A reply the Sender fails to send.
	rec := iqtest.NewRecorder()
	rec.FailWith(errors.New("stream gone"))
	c := iq.NewCallee(rec, iq.WithLogger(logger))
	defer c.Close()
	c.Get(mwNS, "q", func(context.Context, *iq.IQ) (*iq.Element, error) { return nil, nil })
	c.Receive(context.Background(), mwRequest("1", "a@example.com"))
	_, err := rec.WaitFor(1, 5*time.Second)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return snapshot(t, m).Dropped == 1 }, 5*time.Second, time.Millisecond)

	// A response from a sender not allowed to answer.
	caller := iq.NewCaller(iqtest.NewRecorder(), iq.WithLogger(logger), iq.WithLocalJID("me@example.com/a"))
	defer caller.Close()
	call := caller.Go(context.Background(), &iq.IQ{ID: "r1", Type: iq.TypeGet, To: "romeo@montague.lit/orchard", Payload: iq.NewElement(mwNS, "q")}, nil)
	assert.False(t, caller.Receive(&iq.IQ{ID: "r1", Type: iq.TypeResult, From: "eve@evil.example"}))
	assert.True(t, caller.Receive(&iq.IQ{ID: "r1", Type: iq.TypeResult, From: "romeo@montague.lit/orchard"}))
	<-call.Done
	s := snapshot(t, m)
	assert.Equal(t, int64(1), s.Spoofed)
	assert.Equal(t, int64(1), s.Dropped)

	// Warnings were counted, not written: next takes errors only.
	mu.Lock()
	assert.Empty(t, buf.String())
	mu.Unlock()
	logger.Error("written")
	mu.Lock()
	assert.Contains(t, buf.String(), "k=v") // the attrs reached next
	assert.Contains(t, buf.String(), "written")
	mu.Unlock()
}

// metricsCounter counts what WithMetrics reports.
type metricsCounter struct {
	iq.Metrics
	spoofed, dropped atomic.Int64
}

func (m *metricsCounter) SpoofedResponse() { m.spoofed.Add(1) }
func (m *metricsCounter) DroppedReply()    { m.dropped.Add(1) }

func TestWithMetricsCountsSpoofedResponsesAndDroppedReplies(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	m := &metricsCounter{}
	rec := iqtest.NewRecorder()
	c := iq.NewCaller(rec, iq.WithMetrics(m), iq.WithLocalJID("me@example.com/r"))
	defer c.Close()
	call := c.Go(context.Background(), &iq.IQ{Type: iq.TypeGet, To: "peer@example.com/x",
		Payload: iq.NewElement("urn:example:m", "q")}, nil)
	req, err := rec.Next(5 * time.Second)
	require.NoError(t, err)
	spoof := req.Result(nil)
	spoof.From = "mallory@evil.example/x"
	assert.False(t, c.Receive(spoof))
	assert.Equal(t, int64(1), m.spoofed.Load())
	real := req.Result(nil)
	real.From = "peer@example.com/x"
	assert.True(t, c.Receive(real))
	<-call.Done
	assert.Equal(t, int64(1), m.spoofed.Load())

	failing := iqtest.NewRecorder()
	failing.FailWith(errors.New("stream gone"))
	callee := iq.NewCallee(failing, iq.WithMetrics(m))
	defer callee.Close()
	callee.Receive(context.Background(), &iq.IQ{Type: iq.TypeGet, ID: "d1", Payload: iq.NewElement("urn:example:none", "q")})
	assert.Equal(t, int64(1), m.dropped.Load())
}
