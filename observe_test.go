package iq_test

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/iqtest"
)

// hookRecord keeps what a CallHook saw: per request started, in order,
// how many times it ended and with what error.
type hookRecord struct {
	mu     sync.Mutex
	starts []*hookCall
}

type hookCall struct {
	ends int
	err  error
}

func (h *hookRecord) hook(_ context.Context, req *iq.IQ) (*iq.IQ, func(*iq.IQ, error)) {
	hc := new(hookCall)
	h.mu.Lock()
	h.starts = append(h.starts, hc)
	h.mu.Unlock()
	return nil, func(_ *iq.IQ, err error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		hc.ends++
		hc.err = err
	}
}

// TestBugCallerRequestsUnobservable: a Caller told nobody of the requests
// it made, so that neither metrics nor a tracer could see the client side.
// WithCallHook and CallMetrics now see every request that passes its
// checks, start and end once each, whatever ends it.
func TestBugCallerRequestsUnobservable(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	payload := func() *iq.Element { return iq.NewElement("urn:example:obs", "q") }
	tests := []struct {
		name    string
		send    func(t *testing.T, c *iq.Caller, rec *iqtest.Recorder) error
		outcome iq.Outcome
		cond    iq.Condition
		key     string // in call_outcomes
	}{
		{"result", func(t *testing.T, c *iq.Caller, rec *iqtest.Recorder) error {
			call := c.Go(context.Background(), &iq.IQ{Type: iq.TypeGet, Payload: payload()}, nil)
			req, err := rec.Next(5 * time.Second)
			require.NoError(t, err)
			c.Receive(req.Result(nil))
			<-call.Done
			return call.Err
		}, iq.OutcomeResult, "", "result"},
		{"error reply", func(t *testing.T, c *iq.Caller, rec *iqtest.Recorder) error {
			call := c.Go(context.Background(), &iq.IQ{Type: iq.TypeSet, Payload: payload()}, nil)
			req, err := rec.Next(5 * time.Second)
			require.NoError(t, err)
			c.Receive(req.ErrorReply(iq.NewError(iq.Cancel, iq.ItemNotFound, "")))
			<-call.Done
			return call.Err
		}, iq.OutcomeError, iq.ItemNotFound, "item-not-found"},
		{"timeout", func(t *testing.T, c *iq.Caller, rec *iqtest.Recorder) error {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
			defer cancel()
			_, err := c.Request(ctx, &iq.IQ{Type: iq.TypeGet, Payload: payload()})
			return err
		}, iq.OutcomeTimeout, "", "timeout"},
		{"canceled", func(t *testing.T, c *iq.Caller, rec *iqtest.Recorder) error {
			ctx, cancel := context.WithCancel(context.Background())
			call := c.Go(ctx, &iq.IQ{Type: iq.TypeGet, Payload: payload()}, nil)
			cancel()
			<-call.Done
			return call.Err
		}, iq.OutcomeCanceled, "", "canceled"},
		{"closed while pending", func(t *testing.T, c *iq.Caller, rec *iqtest.Recorder) error {
			call := c.Go(context.Background(), &iq.IQ{Type: iq.TypeGet, Payload: payload()}, nil)
			c.Close()
			<-call.Done
			return call.Err
		}, iq.OutcomeClosed, "", "closed"},
		{"refused when closed", func(t *testing.T, c *iq.Caller, rec *iqtest.Recorder) error {
			c.Close()
			_, err := c.Request(context.Background(), &iq.IQ{Type: iq.TypeGet, Payload: payload()})
			return err
		}, iq.OutcomeClosed, "", "closed"},
		{"duplicate id", func(t *testing.T, c *iq.Caller, rec *iqtest.Recorder) error {
			first := c.Go(context.Background(), &iq.IQ{Type: iq.TypeGet, ID: "dup", Payload: payload()}, nil)
			_, err := c.Request(context.Background(), &iq.IQ{Type: iq.TypeGet, ID: "dup", Payload: payload()})
			c.Close()
			<-first.Done
			return err
		}, iq.OutcomeRefused, "", "refused"},
		{"not sent", func(t *testing.T, c *iq.Caller, rec *iqtest.Recorder) error {
			rec.FailWith(errors.New("stream gone"))
			_, err := c.Request(context.Background(), &iq.IQ{Type: iq.TypeGet, Payload: payload()})
			return err
		}, iq.OutcomeNotSent, "", "not_sent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := iqtest.NewRecorder()
			h := new(hookRecord)
			m := iq.NewExpvarMetrics()
			c := iq.NewCaller(rec, iq.WithCallHook(h.hook), iq.WithMetrics(m))
			defer c.Close()
			err := tt.send(t, c, rec)
			outcome, cond := iq.OutcomeOf(err)
			assert.Equal(t, tt.outcome, outcome, "%v", err)
			assert.Equal(t, tt.cond, cond)

			h.mu.Lock()
			require.NotEmpty(t, h.starts)
			last := h.starts[len(h.starts)-1]
			assert.Equal(t, 1, last.ends, "done called once")
			assert.Equal(t, err, last.err, "done sees Request's error")
			for i, hc := range h.starts {
				assert.Equal(t, 1, hc.ends, "every started request ends once: #%d", i)
			}
			starts := len(h.starts)
			h.mu.Unlock()

			var snap struct {
				Calls        map[string]int64                 `json:"calls"`
				CallOutcomes map[string]int64                 `json:"call_outcomes"`
				CallLatency  map[string]struct{ Count int64 } `json:"call_latency_ns"`
				Pending      int64                            `json:"pending"`
			}
			require.NoError(t, json.Unmarshal([]byte(m.String()), &snap))
			assert.Equal(t, int64(starts), snap.Calls["{urn:example:obs}q"])
			assert.Equal(t, int64(starts), snap.CallLatency["{urn:example:obs}q"].Count)
			assert.GreaterOrEqual(t, snap.CallOutcomes[tt.key], int64(1), "%v", snap.CallOutcomes)
			assert.Zero(t, snap.Pending)
		})
	}
}

// TestCallHookNotCalledForRefusedRequests: a request refused by its
// checks (malformed, context already done) is not counted.
func TestCallHookNotCalledForRefusedRequests(t *testing.T) {
	h := new(hookRecord)
	c := iq.NewCaller(iqtest.NewRecorder(), iq.WithCallHook(h.hook))
	defer c.Close()
	_, err := c.Request(context.Background(), &iq.IQ{Type: iq.TypeGet})
	require.ErrorIs(t, err, iq.ErrInvalid)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = c.Request(ctx, &iq.IQ{Type: iq.TypeGet, Payload: iq.NewElement("urn:example:obs", "q")})
	require.ErrorIs(t, err, context.Canceled)
	assert.Empty(t, h.starts)
}

// TestCallHookReplacesRequest: what the hook returns is sent and is the
// Call's Request; the caller's IQ is untouched.
func TestCallHookReplacesRequest(t *testing.T) {
	rec := iqtest.NewRecorder()
	mark := xml.Attr{Name: xml.Name{Space: "urn:example:mark", Local: "m"}, Value: "1"}
	hook := func(_ context.Context, req *iq.IQ) (*iq.IQ, func(*iq.IQ, error)) {
		cp := *req
		p := *req.Payload
		p.Attr = append(append([]xml.Attr(nil), p.Attr...), mark)
		cp.Payload = &p
		return &cp, nil
	}
	c := iq.NewCaller(rec, iq.WithCallHook(hook))
	defer c.Close()
	orig := &iq.IQ{Type: iq.TypeGet, ID: "r1", Payload: iq.NewElement("urn:example:obs", "q")}
	call := c.Go(context.Background(), orig, nil)
	sent, err := rec.Next(5 * time.Second)
	require.NoError(t, err)
	assert.Equal(t, []xml.Attr{mark}, sent.Payload.Attr)
	assert.Same(t, sent, call.Request)
	assert.Empty(t, orig.Payload.Attr, "the caller's request is not modified")
	c.Receive(sent.Result(nil))
	<-call.Done
	assert.NoError(t, call.Err)
}

// TestCallHookBadReplacementPanics: a hook that changes what the Caller
// matches responses by is a bug, caught at once.
func TestCallHookBadReplacementPanics(t *testing.T) {
	tests := []struct {
		name   string
		change func(*iq.IQ)
	}{
		{"id", func(r *iq.IQ) { r.ID = "other" }},
		{"to", func(r *iq.IQ) { r.To = "x@example.com" }},
		{"type", func(r *iq.IQ) { r.Type = iq.TypeSet }},
		{"payload", func(r *iq.IQ) { r.Payload = iq.NewElement("urn:example:other", "q") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hook := func(_ context.Context, req *iq.IQ) (*iq.IQ, func(*iq.IQ, error)) {
				cp := *req
				tt.change(&cp)
				return &cp, nil
			}
			c := iq.NewCaller(iqtest.NewRecorder(), iq.WithCallHook(hook))
			defer c.Close()
			assert.PanicsWithValue(t, fmt.Sprintf("iq: CallHook replaced request %s with one of another id, type, to or payload", "p1"), func() {
				c.Request(context.Background(), &iq.IQ{Type: iq.TypeGet, ID: "p1", Payload: iq.NewElement("urn:example:obs", "q")})
			})
		})
	}
}

func TestOutcomeOf(t *testing.T) {
	tests := []struct {
		name    string
		err     error
		outcome iq.Outcome
		cond    iq.Condition
	}{
		{"nil", nil, iq.OutcomeResult, ""},
		{"stanza error", fmt.Errorf("x: %w", iq.NewError(iq.Wait, iq.ResourceConstraint, "")), iq.OutcomeError, iq.ResourceConstraint},
		{"timeout", iq.ErrTimeout, iq.OutcomeTimeout, ""},
		{"deadline", fmt.Errorf("%w", iq.ErrTimeout), iq.OutcomeTimeout, ""},
		{"closed", iq.ErrClosed, iq.OutcomeClosed, ""},
		{"canceled", context.Canceled, iq.OutcomeCanceled, ""},
		{"too many", iq.ErrTooManyPending, iq.OutcomeRefused, ""},
		{"duplicate", iq.ErrDuplicateID, iq.OutcomeRefused, ""},
		{"invalid", iq.ErrInvalid, iq.OutcomeInvalid, ""},
		{"other", errors.New("broken pipe"), iq.OutcomeNotSent, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, c := iq.OutcomeOf(tt.err)
			assert.Equal(t, tt.outcome, o)
			assert.Equal(t, tt.cond, c)
		})
	}
}
