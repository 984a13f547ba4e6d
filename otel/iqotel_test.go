package iqotel_test

import (
	"context"
	"encoding/xml"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/iqtest"
	iqotel "github.com/xmpp-iq/iq/otel"
)

const (
	aJID   = "a@example.com/r"
	bJID   = "b.example.com"
	nsEcho = "urn:example:echo"
	nsBack = "urn:example:back"
)

// env is an Instrumentation exporting to memory.
type env struct {
	spans  *tracetest.SpanRecorder
	tp     *sdktrace.TracerProvider
	reader *sdkmetric.ManualReader
	inst   *iqotel.Instrumentation
}

func newEnv(t *testing.T, opts ...iqotel.Option) *env {
	t.Helper()
	e := &env{spans: tracetest.NewSpanRecorder(), reader: sdkmetric.NewManualReader()}
	e.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(e.spans))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(e.reader))
	t.Cleanup(func() {
		_ = e.tp.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
	})
	e.inst = iqotel.New(append([]iqotel.Option{iqotel.WithTracerProvider(e.tp), iqotel.WithMeterProvider(mp)}, opts...)...)
	return e
}

// pair returns a Pair whose Endpoints are both instrumented by e.
func (e *env) pair(t *testing.T, opts ...iqtest.Option) *iqtest.Pair {
	t.Helper()
	p := iqtest.NewPair(aJID, bJID, append([]iqtest.Option{iqtest.WithEndpointOptions(e.inst.Options()...)}, opts...)...)
	t.Cleanup(func() { p.Close() })
	p.A.Callee.Use(e.inst.Middleware())
	p.B.Callee.Use(e.inst.Middleware())
	return p
}

// ended returns the spans ended so far, waiting up to a second for n of
// them: a server span ends just after its reply is sent.
func (e *env) ended(t *testing.T, n int) []sdktrace.ReadOnlySpan {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(e.spans.Ended()) < n && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	spans := e.spans.Ended()
	require.Len(t, spans, n, "spans: %v", names(spans))
	return spans
}

func names(spans []sdktrace.ReadOnlySpan) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.SpanKind().String()+" "+s.Name())
	}
	return out
}

// find returns the one span of kind named name.
func find(t *testing.T, spans []sdktrace.ReadOnlySpan, kind trace.SpanKind, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	for _, s := range spans {
		if s.SpanKind() == kind && s.Name() == name {
			return s
		}
	}
	require.Failf(t, "no span", "%s %q among %v", kind, name, names(spans))
	return nil
}

func attrs(s sdktrace.ReadOnlySpan) map[string]string {
	out := map[string]string{}
	for _, kv := range s.Attributes() {
		out[string(kv.Key)] = kv.Value.AsString()
	}
	return out
}

// TestOneTraceAcrossPair: a request from A to B whose handler asks A in
// turn is one trace of four spans, each the child of the one before, when
// both sides are instrumented with wire propagation.
func TestOneTraceAcrossPair(t *testing.T) {
	e := newEnv(t, iqotel.WithWirePropagation())
	p := e.pair(t)
	var sawAttrs sync.Map
	p.B.Callee.Get(nsEcho, "echo", func(ctx context.Context, req *iq.IQ) (*iq.Element, error) {
		sawAttrs.Store("echo", len(req.Payload.Attr))
		if _, err := p.B.Caller.Get(ctx, aJID, iq.NewElement(nsBack, "back")); err != nil {
			return nil, err
		}
		return nil, nil
	})
	p.A.Callee.Get(nsBack, "back", func(ctx context.Context, req *iq.IQ) (*iq.Element, error) {
		sawAttrs.Store("back", len(req.Payload.Attr))
		return nil, nil
	})

	ctx, root := e.tp.Tracer("test").Start(context.Background(), "root")
	_, err := p.A.Caller.Get(ctx, bJID, iq.NewElement(nsEcho, "echo"))
	require.NoError(t, err)
	root.End()

	spans := e.ended(t, 5)
	aClient := find(t, spans, trace.SpanKindClient, "get {urn:example:echo}echo")
	bServer := find(t, spans, trace.SpanKindServer, "get {urn:example:echo}echo")
	bClient := find(t, spans, trace.SpanKindClient, "get {urn:example:back}back")
	aServer := find(t, spans, trace.SpanKindServer, "get {urn:example:back}back")
	chain := []sdktrace.ReadOnlySpan{aClient, bServer, bClient, aServer}
	parent := root.SpanContext()
	for _, s := range chain {
		assert.Equal(t, parent.TraceID(), s.SpanContext().TraceID(), "%s: one trace", s.Name())
		assert.Equal(t, parent.SpanID(), s.Parent().SpanID(), "%s %s: parent", s.SpanKind(), s.Name())
		parent = s.SpanContext()
	}
	assert.True(t, bServer.Parent().IsRemote(), "the server's parent came over the wire")
	assert.False(t, bClient.Parent().IsRemote())

	ca := attrs(aClient)
	assert.Equal(t, "xmpp", ca["rpc.system.name"])
	assert.Equal(t, "{urn:example:echo}echo", ca["rpc.method"])
	assert.Equal(t, "get", ca["xmpp.iq.type"])
	assert.NotEmpty(t, ca["xmpp.iq.id"])
	assert.Equal(t, bJID, ca["server.address"])
	assert.Equal(t, "result", ca["xmpp.iq.outcome"])
	assert.Equal(t, "result", ca["rpc.response.status_code"])
	assert.NotContains(t, ca, "error.type")
	sa := attrs(bServer)
	assert.Equal(t, aJID, sa["client.address"])
	assert.Equal(t, ca["xmpp.iq.id"], sa["xmpp.iq.id"])
	assert.Equal(t, "result", sa["xmpp.iq.outcome"])
	for _, s := range chain {
		assert.Equal(t, codes.Unset, s.Status().Code, s.Name())
	}
	// The handlers did not see the trace context's attributes.
	for _, k := range []string{"echo", "back"} {
		n, ok := sawAttrs.Load(k)
		require.True(t, ok)
		assert.Equal(t, 0, n, k)
	}
}

// TestWirePropagationOffByDefault: without WithWirePropagation nothing is
// added to requests and the server's span starts a trace of its own; with
// it, the request's payload carries traceparent in NSTrace and nothing
// else changes.
func TestWirePropagationOffByDefault(t *testing.T) {
	tests := []struct {
		name string
		opts []iqotel.Option
		wire bool
	}{
		{"default", nil, false},
		{"WithWirePropagation", []iqotel.Option{iqotel.WithWirePropagation()}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.opts...)
			var mu sync.Mutex
			var wire []string
			p := e.pair(t, iqtest.WithWireTap(func(from string, raw []byte) {
				mu.Lock()
				wire = append(wire, string(raw))
				mu.Unlock()
			}))
			p.B.Callee.Get(nsEcho, "echo", func(context.Context, *iq.IQ) (*iq.Element, error) { return nil, nil })
			_, err := p.A.Caller.Get(context.Background(), bJID, iq.NewElement(nsEcho, "echo"))
			require.NoError(t, err)
			spans := e.ended(t, 2)
			client := find(t, spans, trace.SpanKindClient, "get {urn:example:echo}echo")
			server := find(t, spans, trace.SpanKindServer, "get {urn:example:echo}echo")

			mu.Lock()
			defer mu.Unlock()
			require.Len(t, wire, 2)
			if !tt.wire {
				assert.NotContains(t, wire[0], iqotel.NSTrace)
				assert.NotEqual(t, client.SpanContext().TraceID(), server.SpanContext().TraceID())
				assert.False(t, server.Parent().IsValid())
				return
			}
			assert.Contains(t, wire[0], iqotel.NSTrace)
			assert.Contains(t, wire[0], ":traceparent=\"00-"+client.SpanContext().TraceID().String()+"-"+client.SpanContext().SpanID().String()+"-01\"")
			assert.NotContains(t, wire[1], iqotel.NSTrace, "the reply carries nothing")
			assert.Equal(t, client.SpanContext(), server.Parent().WithRemote(false))
		})
	}
}

// TestPeerUnawareOfTraceContext: a Callee without the middleware answers
// a request that carries a trace context as it would any other; its
// handler sees the attribute, as the package documentation warns.
func TestPeerUnawareOfTraceContext(t *testing.T) {
	e := newEnv(t, iqotel.WithWirePropagation())
	p := iqtest.NewPair(aJID, bJID, iqtest.WithEndpointOptions(e.inst.Options()...))
	defer p.Close()
	var seen []string
	p.B.Callee.Get(nsEcho, "echo", func(_ context.Context, req *iq.IQ) (*iq.Element, error) {
		for _, a := range req.Payload.Attr {
			seen = append(seen, a.Name.Space+" "+a.Name.Local)
		}
		return iq.NewElement(nsEcho, "echo", "n", "1"), nil
	})
	got, err := p.A.Caller.Get(context.Background(), bJID, iq.NewElement(nsEcho, "echo"))
	require.NoError(t, err)
	assert.Equal(t, "1", got.AttrValue("n"))
	assert.Equal(t, []string{iqotel.NSTrace + " traceparent"}, seen)
}

// TestPublicEndpointLinks: WithPublicEndpoint starts a new trace linked
// to the remote context.
func TestPublicEndpointLinks(t *testing.T) {
	e := newEnv(t, iqotel.WithWirePropagation(), iqotel.WithPublicEndpoint())
	p := e.pair(t)
	p.B.Callee.Get(nsEcho, "echo", func(context.Context, *iq.IQ) (*iq.Element, error) { return nil, nil })
	_, err := p.A.Caller.Get(context.Background(), bJID, iq.NewElement(nsEcho, "echo"))
	require.NoError(t, err)
	spans := e.ended(t, 2)
	client := find(t, spans, trace.SpanKindClient, "get {urn:example:echo}echo")
	server := find(t, spans, trace.SpanKindServer, "get {urn:example:echo}echo")
	assert.False(t, server.Parent().IsValid())
	assert.NotEqual(t, client.SpanContext().TraceID(), server.SpanContext().TraceID())
	require.Len(t, server.Links(), 1)
	assert.Equal(t, client.SpanContext().SpanID(), server.Links()[0].SpanContext.SpanID())
}

// TestSpanStatus: how each way a request ends shows on both spans.
func TestSpanStatus(t *testing.T) {
	tests := []struct {
		name         string
		handler      iq.HandlerFunc
		ctxTimeout   time.Duration
		clientCode   codes.Code
		serverCode   codes.Code
		errorType    string // on the client span
		statusCode   string // rpc.response.status_code on the client span, "" for none
		stanzaType   string
		serverEvents int
	}{
		{"result", func(context.Context, *iq.IQ) (*iq.Element, error) { return nil, nil },
			0, codes.Unset, codes.Unset, "", "result", "", 0},
		{"request's fault", func(context.Context, *iq.IQ) (*iq.Element, error) {
			return nil, iq.NewError(iq.Cancel, iq.ItemNotFound, "")
		}, 0, codes.Error, codes.Unset, "item-not-found", "item-not-found", "cancel", 0},
		{"handler failed", func(context.Context, *iq.IQ) (*iq.Element, error) {
			return nil, errors.New("database down")
		}, 0, codes.Error, codes.Error, "internal-server-error", "internal-server-error", "cancel", 0},
		{"handler panicked", func(context.Context, *iq.IQ) (*iq.Element, error) {
			panic("boom")
		}, 0, codes.Error, codes.Error, "internal-server-error", "internal-server-error", "cancel", 1},
		{"timeout", func(ctx context.Context, _ *iq.IQ) (*iq.Element, error) {
			time.Sleep(100 * time.Millisecond)
			return nil, nil
		}, 20 * time.Millisecond, codes.Error, codes.Unset, "timeout", "", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			p := e.pair(t)
			p.B.Callee.Get(nsEcho, "echo", tt.handler)
			ctx := context.Background()
			if tt.ctxTimeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.ctxTimeout)
				defer cancel()
			}
			_, err := p.A.Caller.Get(ctx, bJID, iq.NewElement(nsEcho, "echo"))
			if tt.clientCode == codes.Unset {
				require.NoError(t, err)
			} else {
				require.Error(t, err)
			}
			spans := e.ended(t, 2)
			client := find(t, spans, trace.SpanKindClient, "get {urn:example:echo}echo")
			server := find(t, spans, trace.SpanKindServer, "get {urn:example:echo}echo")
			assert.Equal(t, tt.clientCode, client.Status().Code)
			if err != nil {
				assert.Equal(t, err.Error(), client.Status().Description)
			}
			assert.Equal(t, tt.serverCode, server.Status().Code)
			ca := attrs(client)
			if tt.errorType == "" {
				assert.NotContains(t, ca, "error.type")
			} else {
				assert.Equal(t, tt.errorType, ca["error.type"])
			}
			if tt.statusCode == "" {
				assert.NotContains(t, ca, "rpc.response.status_code")
			} else {
				assert.Equal(t, tt.statusCode, ca["rpc.response.status_code"])
				assert.Equal(t, tt.statusCode, attrs(server)["rpc.response.status_code"])
			}
			if tt.stanzaType != "" {
				assert.Equal(t, tt.stanzaType, ca["xmpp.stanza_error.type"])
				assert.Equal(t, tt.errorType, ca["xmpp.stanza_error.condition"])
				assert.Equal(t, tt.errorType, attrs(server)["error.type"])
			}
			assert.Len(t, server.Events(), tt.serverEvents)
		})
	}
}

// metrics collects what e's reader holds, by instrument name.
func (e *env) metrics(t *testing.T) map[string]metricdata.Aggregation {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, e.reader.Collect(context.Background(), &rm))
	out := map[string]metricdata.Aggregation{}
	for _, sm := range rm.ScopeMetrics {
		require.Equal(t, iqotel.ScopeName, sm.Scope.Name)
		for _, m := range sm.Metrics {
			out[m.Name] = m.Data
		}
	}
	return out
}

// key renders the attributes that matter here as "outcome/condition".
func key(set attribute.Set) string {
	o, _ := set.Value("xmpp.iq.outcome")
	c, _ := set.Value("xmpp.stanza_error.condition")
	return o.AsString() + "/" + c.AsString()
}

func histCounts(t *testing.T, a metricdata.Aggregation) map[string]uint64 {
	t.Helper()
	h, ok := a.(metricdata.Histogram[float64])
	require.True(t, ok, "%T", a)
	out := map[string]uint64{}
	for _, dp := range h.DataPoints {
		m, _ := dp.Attributes.Value("rpc.method")
		assert.Equal(t, "{urn:example:echo}echo", m.AsString())
		out[key(dp.Attributes)] += dp.Count
	}
	return out
}

func sums(t *testing.T, a metricdata.Aggregation) map[string]int64 {
	t.Helper()
	s, ok := a.(metricdata.Sum[int64])
	require.True(t, ok, "%T", a)
	out := map[string]int64{}
	for _, dp := range s.DataPoints {
		out[key(dp.Attributes)] += dp.Value
	}
	return out
}

func total(t *testing.T, a metricdata.Aggregation) int64 {
	var n int64
	for _, v := range sums(t, a) {
		n += v
	}
	return n
}

// TestMetrics: durations, requests by outcome and condition, pending and
// in flight, on both sides of a Pair.
func TestMetrics(t *testing.T) {
	e := newEnv(t)
	p := e.pair(t)
	release := make(chan struct{})
	started := make(chan struct{})
	p.B.Callee.Get(nsEcho, "echo", func(_ context.Context, req *iq.IQ) (*iq.Element, error) {
		switch req.Payload.AttrValue("do") {
		case "fail":
			return nil, iq.NewError(iq.Cancel, iq.ItemNotFound, "")
		case "block":
			close(started)
			<-release
		}
		return nil, nil
	})
	for range 2 {
		_, err := p.A.Caller.Get(context.Background(), bJID, iq.NewElement(nsEcho, "echo"))
		require.NoError(t, err)
	}
	_, err := p.A.Caller.Get(context.Background(), bJID, iq.NewElement(nsEcho, "echo", "do", "fail"))
	require.Error(t, err)

	call := p.A.Caller.Go(context.Background(), &iq.IQ{Type: iq.TypeGet, To: bJID, Payload: iq.NewElement(nsEcho, "echo", "do", "block")}, nil)
	<-started
	m := e.metrics(t)
	assert.Equal(t, int64(1), total(t, m["xmpp.iq.client.pending"]))
	assert.Equal(t, int64(1), total(t, m["xmpp.iq.server.in_flight"]))
	close(release)
	<-call.Done
	require.NoError(t, call.Err)
	e.ended(t, 8) // every server span ended: its reply was sent, its metrics recorded

	m = e.metrics(t)
	want := map[string]uint64{"result/": 3, "error/item-not-found": 1}
	assert.Equal(t, want, histCounts(t, m["rpc.client.call.duration"]))
	assert.Equal(t, want, histCounts(t, m["rpc.server.call.duration"]))
	wantN := map[string]int64{"result/": 3, "error/item-not-found": 1}
	assert.Equal(t, wantN, sums(t, m["xmpp.iq.client.requests"]))
	assert.Equal(t, wantN, sums(t, m["xmpp.iq.server.requests"]))
	assert.Zero(t, total(t, m["xmpp.iq.client.pending"]))
	assert.Zero(t, total(t, m["xmpp.iq.server.in_flight"]))

	h := m["rpc.client.call.duration"].(metricdata.Histogram[float64])
	for _, dp := range h.DataPoints {
		if o, _ := dp.Attributes.Value("xmpp.iq.outcome"); o.AsString() == "error" {
			et, _ := dp.Attributes.Value("error.type")
			assert.Equal(t, "item-not-found", et.AsString())
		}
	}
}

// TestMetricsSpoofedAndDropped: the events no middleware sees reach the
// instruments through iq.WithMetrics.
func TestMetricsSpoofedAndDropped(t *testing.T) {
	e := newEnv(t)
	rec := iqtest.NewRecorder()
	c := iq.NewCaller(rec, append(e.inst.Options(), iq.WithLocalJID(aJID))...)
	defer c.Close()
	call := c.Go(context.Background(), &iq.IQ{Type: iq.TypeGet, To: bJID, Payload: iq.NewElement(nsEcho, "echo")}, nil)
	req, err := rec.Next(5 * time.Second)
	require.NoError(t, err)
	spoof := req.Result(nil)
	spoof.From = "mallory@evil.example/x"
	assert.False(t, c.Receive(spoof))
	c.Close()
	<-call.Done

	failing := iqtest.NewRecorder()
	failing.FailWith(errors.New("stream gone"))
	callee := iq.NewCallee(failing, e.inst.Options()...)
	defer callee.Close()
	callee.Use(e.inst.Middleware())
	callee.Get(nsEcho, "echo", func(context.Context, *iq.IQ) (*iq.Element, error) { return nil, nil })
	callee.Receive(context.Background(), &iq.IQ{Type: iq.TypeGet, ID: "d1", From: aJID, Payload: iq.NewElement(nsEcho, "echo")})
	require.Eventually(t, func() bool {
		_, ok := e.metrics(t)["xmpp.iq.server.dropped_replies"]
		return ok
	}, 5*time.Second, time.Millisecond)

	m := e.metrics(t)
	assert.Equal(t, int64(1), total(t, m["xmpp.iq.client.spoofed_responses"]))
	assert.Equal(t, int64(1), total(t, m["xmpp.iq.server.dropped_replies"]))
	assert.Equal(t, map[string]int64{"closed/": 1}, sums(t, m["xmpp.iq.client.requests"]))
}

// TestMetricsTimeouts: a handler cut short by iq.Timeout is counted.
func TestMetricsTimeouts(t *testing.T) {
	e := newEnv(t)
	p := e.pair(t)
	p.B.Callee.Handle(iq.TypeGet, nsEcho, "echo", iq.Timeout(10*time.Millisecond)(iq.HandlerFunc(
		func(ctx context.Context, _ *iq.IQ) (*iq.Element, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		})))
	_, err := p.A.Caller.Get(context.Background(), bJID, iq.NewElement(nsEcho, "echo"))
	require.ErrorIs(t, err, &iq.StanzaError{Condition: iq.RemoteServerTimeout})
	e.ended(t, 2)
	m := e.metrics(t)
	assert.Equal(t, int64(1), total(t, m["xmpp.iq.server.timeouts"]))
	assert.True(t, strings.HasPrefix(attrs(find(t, e.spans.Ended(), trace.SpanKindServer, "get {urn:example:echo}echo"))["error.type"], "remote-server-timeout"))
}

// TestWirePropagationReplacesStaleContext: a payload that already carries
// a trace context (passed on from elsewhere) is sent with the client
// span's alone; the caller's payload is left as it was.
func TestWirePropagationReplacesStaleContext(t *testing.T) {
	e := newEnv(t, iqotel.WithWirePropagation())
	var mu sync.Mutex
	var wire []string
	p := e.pair(t, iqtest.WithWireTap(func(from string, raw []byte) {
		mu.Lock()
		wire = append(wire, string(raw))
		mu.Unlock()
	}))
	p.B.Callee.Get(nsEcho, "echo", func(context.Context, *iq.IQ) (*iq.Element, error) { return nil, nil })
	stale := "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	payload := iq.NewElement(nsEcho, "echo", "n", "1")
	payload.Attr = append(payload.Attr, xml.Attr{Name: xml.Name{Space: iqotel.NSTrace, Local: "traceparent"}, Value: stale})
	_, err := p.A.Caller.Get(context.Background(), bJID, payload)
	require.NoError(t, err)
	spans := e.ended(t, 2)
	client := find(t, spans, trace.SpanKindClient, "get {urn:example:echo}echo")
	server := find(t, spans, trace.SpanKindServer, "get {urn:example:echo}echo")
	assert.Equal(t, client.SpanContext().SpanID(), server.Parent().SpanID())
	mu.Lock()
	defer mu.Unlock()
	require.NotEmpty(t, wire)
	assert.NotContains(t, wire[0], stale)
	assert.Equal(t, 1, strings.Count(wire[0], "traceparent"), wire[0])
	assert.Contains(t, wire[0], `n="1"`)
	assert.Len(t, payload.Attr, 2, "the caller's payload is not modified")
	assert.Equal(t, stale, payload.Attr[1].Value)
}
