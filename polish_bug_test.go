package iq_test

import (
	"context"
	"errors"
	"log/slog"
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

// TestBugInFlightPassesCap: Receive added one to the in-flight count
// before checking it against the cap, and took it back when over, so
// that InFlight could read the cap plus one while a flood was refused.
// A sampler reads InFlight throughout a flood of requests over a full
// cap and must never see more than the cap.
func TestBugInFlightPassesCap(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	const maxInFlight, flooders, perFlooder = 4, 8, 20000
	var refused atomic.Int64
	c := iq.NewCallee(iq.SenderFunc(func(_ context.Context, out *iq.IQ) error {
		// Only refusals: the results of the four held handlers, released
		// before Close, may be sent too, depending on the schedule.
		if out.Type == iq.TypeError {
			refused.Add(1)
		}
		return nil
	}), iq.WithMaxInFlight(maxInFlight))
	release := make(chan struct{})
	c.Get("urn:example:flood", "q", func(context.Context, *iq.IQ) (*iq.Element, error) {
		<-release
		return nil, nil
	})
	req := &iq.IQ{Type: iq.TypeGet, ID: "f", From: "x@example.com/r", Payload: iq.NewElement("urn:example:flood", "q")}
	for range maxInFlight {
		c.Receive(context.Background(), req)
	}
	require.Eventually(t, func() bool { return c.InFlight() == maxInFlight }, 5*time.Second, time.Millisecond)

	stop := make(chan struct{})
	var most atomic.Int64
	var sampler sync.WaitGroup
	sampler.Add(1)
	go func() {
		defer sampler.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if n := int64(c.InFlight()); n > most.Load() {
				most.Store(n)
			}
		}
	}()
	var flood sync.WaitGroup
	for range flooders {
		flood.Add(1)
		go func() {
			defer flood.Done()
			for range perFlooder {
				c.Receive(context.Background(), req)
			}
		}()
	}
	flood.Wait()
	close(stop)
	sampler.Wait()
	close(release)
	c.Close()

	assert.EqualValues(t, flooders*perFlooder, refused.Load(), "every request over the cap is refused")
	assert.LessOrEqual(t, most.Load(), int64(maxInFlight), "InFlight passed the cap")
	require.Eventually(t, func() bool { return c.InFlight() == 0 }, 5*time.Second, time.Millisecond)
}

// TestBugBadOptionValuesSilentlyAccepted: options took values that can
// only be mistakes (a condition that does not exist, a negative timeout
// or count, a malformed address) and quietly kept their defaults, and
// Handle registered routes no request could ever match. Each now panics
// at the call that made the mistake, naming it; the zero values still
// keep the defaults.
func TestBugBadOptionValuesSilentlyAccepted(t *testing.T) {
	noop := func(context.Context, *iq.IQ) (*iq.Element, error) { return nil, nil }
	panics := []struct {
		name string
		call func()
		msg  string
	}{
		{"UnknownNamespaceCondition/bogus", func() { iq.WithUnknownNamespaceCondition("bogus") },
			`iq: WithUnknownNamespaceCondition: "bogus" is not a defined condition`},
		{"Timeout/negative", func() { iq.WithTimeout(-time.Second) }, "iq: WithTimeout: negative duration -1s"},
		{"MaxPending/negative", func() { iq.WithMaxPending(-1) }, "iq: WithMaxPending: negative count -1"},
		{"MaxInFlight/negative", func() { iq.WithMaxInFlight(-1) }, "iq: WithMaxInFlight: negative count -1"},
		{"LocalJID/malformed", func() { iq.WithLocalJID("@example.com") }, `iq: WithLocalJID("@example.com"): malformed JID: localpart: empty ('@' with nothing before it)`},
		{"Handle/colon", func() { iq.NewCallee(iqtest.NewRecorder()).Get("urn:x", "a:b", noop) },
			`iq: Handle: element name "a:b" is not an NCName: no request can match it`},
		{"Handle/space", func() { iq.NewCallee(iqtest.NewRecorder()).Get("urn:x", "a b", noop) },
			`iq: Handle: element name "a b" is not an NCName: no request can match it`},
		{"Handle/digit", func() { iq.NewCallee(iqtest.NewRecorder()).Set("urn:x", "1a", noop) },
			`iq: Handle: element name "1a" is not an NCName: no request can match it`},
		{"Handle/namespaceControlChar", func() { iq.NewCallee(iqtest.NewRecorder()).Get("urn:x\x00", "a", noop) },
			`iq: Handle: namespace "urn:x\x00" cannot be written in XML: no request can match it`},
		{"Handle/namespaceInvalidUTF8", func() { iq.NewCallee(iqtest.NewRecorder()).Get("urn:\xff", "a", noop) },
			`iq: Handle: namespace "urn:\xff" cannot be written in XML: no request can match it`},
		{"Handle/xmlnsNamespace", func() { iq.NewCallee(iqtest.NewRecorder()).Get("http://www.w3.org/2000/xmlns/", "a", noop) },
			`iq: Handle: namespace "http://www.w3.org/2000/xmlns/" cannot be written in XML: no request can match it`},
	}
	for _, tc := range panics {
		t.Run(tc.name, func(t *testing.T) {
			assert.PanicsWithValue(t, tc.msg, tc.call)
		})
	}

	accepted := []struct {
		name string
		call func()
	}{
		{"UnknownNamespaceCondition/empty", func() { iq.WithUnknownNamespaceCondition("") }},
		{"UnknownNamespaceCondition/ServiceUnavailable", func() { iq.WithUnknownNamespaceCondition(iq.ServiceUnavailable) }},
		{"Timeout/zero", func() { iq.WithTimeout(0) }},
		{"MaxPending/zero", func() { iq.WithMaxPending(0) }},
		{"MaxInFlight/zero", func() { iq.WithMaxInFlight(0) }},
		{"LocalJID/empty", func() { iq.WithLocalJID("") }},
		{"Logger/nil", func() { iq.NewCallee(iqtest.NewRecorder(), iq.WithLogger(nil)) }},
		{"Metrics/nil", func() { iq.NewCaller(iqtest.NewRecorder(), iq.WithMetrics(nil)) }},
		{"Handle/unicodeName", func() { iq.NewCallee(iqtest.NewRecorder()).Get("urn:é", "é-1.x_y", noop) }},
	}
	for _, tc := range accepted {
		t.Run(tc.name, func(t *testing.T) {
			assert.NotPanics(t, tc.call)
		})
	}
}

// TestBugZeroOptionValuesKeepDefaults: the zero value of each numeric
// option keeps its default, as documented, now that negative values
// panic.
func TestBugZeroOptionValuesKeepDefaults(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	c := iq.NewCallee(iq.SenderFunc(func(context.Context, *iq.IQ) error { return nil }),
		iq.WithMaxInFlight(0), iq.WithUnknownNamespaceCondition(""))
	defer c.Close()
	_, serr := c.Handler(&iq.IQ{Type: iq.TypeGet, ID: "z", Payload: iq.NewElement("urn:nobody", "q")})
	require.NotNil(t, serr)
	assert.Equal(t, iq.FeatureNotImplemented, serr.Condition)
}

// TestBugSpoofedResponseCountedTwice: with WithMetrics(m) and a logger on
// ObserveLog(m) together, one spoofed response counted 2 in m, and one
// dropped reply 2: the Caller and Callee reported the event to m and
// logged it, and ObserveLog counted the record. Each event counts once
// now, whatever the combination, ObserveLog wrapped in other handlers or
// not.
func TestBugSpoofedResponseCountedTwice(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	for _, tc := range []struct {
		name       string
		withMetric bool
		observeLog bool
		wrapped    bool // ObserveLog's handler under WithAttrs and WithGroup
		want       int64
	}{
		{name: "WithMetrics", withMetric: true, want: 1},
		{name: "ObserveLog", observeLog: true, want: 1},
		{name: "Both", withMetric: true, observeLog: true, want: 1},
		{name: "BothWrapped", withMetric: true, observeLog: true, wrapped: true, want: 1},
		{name: "ObserveLogWrapped", observeLog: true, wrapped: true, want: 1},
		{name: "Neither", want: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := iq.NewExpvarMetrics()
			var opts []iq.Option
			if tc.withMetric {
				opts = append(opts, iq.WithMetrics(m))
			}
			if tc.observeLog {
				h := iq.ObserveLog(m, nil)
				if tc.wrapped {
					h = h.WithAttrs([]slog.Attr{slog.String("k", "v")}).WithGroup("g")
				}
				opts = append(opts, iq.WithLogger(slog.New(h)))
			}

			rec := iqtest.NewRecorder()
			c := iq.NewCaller(rec, append(opts, iq.WithLocalJID("me@example.com/r"))...)
			defer c.Close()
			call := c.Go(context.Background(), &iq.IQ{Type: iq.TypeGet, To: "peer@example.com/x",
				Payload: iq.NewElement("urn:example:m", "q")}, nil)
			req, err := rec.Next(5 * time.Second)
			require.NoError(t, err)
			spoof := req.Result(nil)
			spoof.From = "mallory@evil.example/x"
			assert.False(t, c.Receive(spoof))
			real := req.Result(nil)
			real.From = "peer@example.com/x"
			require.True(t, c.Receive(real))
			<-call.Done

			failing := iqtest.NewRecorder()
			failing.FailWith(errors.New("stream gone"))
			callee := iq.NewCallee(failing, opts...)
			defer callee.Close()
			callee.Receive(context.Background(), &iq.IQ{Type: iq.TypeGet, ID: "d1", Payload: iq.NewElement("urn:example:none", "q")})

			s := snapshot(t, m)
			assert.Equal(t, tc.want, s.Spoofed, "spoofed responses")
			assert.Equal(t, tc.want, s.Dropped, "dropped replies")
		})
	}
}
