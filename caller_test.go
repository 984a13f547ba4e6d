package iq_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
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
)

const callerNS = "urn:example:caller"

// callerIDPattern is what a generated id must look like.
var callerIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{16,}$`)

// callerWait waits for call to end.
func callerWait(t *testing.T, call *iq.Call) *iq.Call {
	t.Helper()
	select {
	case got := <-call.Done:
		require.Same(t, call, got)
		return got
	case <-time.After(2 * time.Second):
		require.FailNow(t, "call did not end")
		return nil
	}
}

func callerPayload() *iq.Element { return iq.NewElement(callerNS, "query") }

func callerGet(id, to string) *iq.IQ {
	return &iq.IQ{Type: iq.TypeGet, ID: id, To: to, Payload: callerPayload()}
}

func callerResult(id, from string) *iq.IQ {
	return &iq.IQ{Type: iq.TypeResult, ID: id, From: from}
}

// 10. Ids.

func TestCallerRequestID(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	t.Run("empty id gets a fresh random id and the request is not mutated", func(t *testing.T) {
		rec := iqtest.NewRecorder()
		c := iq.NewCaller(rec)
		defer c.Close()
		req := &iq.IQ{Type: iq.TypeGet, To: "example.com", Payload: callerPayload()}
		call := c.Go(context.Background(), req, nil)
		sent := nextSent(t, rec)

		assert.Regexp(t, callerIDPattern, sent.ID)
		assert.Empty(t, req.ID, "the caller's *IQ must not be mutated")
		assert.NotSame(t, req, sent, "the id must be filled in on a copy")
		assert.Equal(t, req.To, sent.To)
		assert.Same(t, req.Payload, sent.Payload)

		require.True(t, c.Receive(callerResult(sent.ID, "example.com")))
		callerWait(t, call)
		assert.NoError(t, call.Err)
		assert.Equal(t, sent.ID, call.Request.ID)
		assert.Empty(t, req.ID)
	})

	t.Run("two requests without id get different ids", func(t *testing.T) {
		rec := iqtest.NewRecorder()
		c := iq.NewCaller(rec)
		req := &iq.IQ{Type: iq.TypeGet, Payload: callerPayload()}
		c.Go(context.Background(), req, nil)
		c.Go(context.Background(), req, nil)
		sent := rec.Sent()
		require.Len(t, sent, 2)
		assert.NotEqual(t, sent[0].ID, sent[1].ID)
		assert.Equal(t, 2, c.Pending())
		c.Close()
	})

	t.Run("caller-chosen id is kept", func(t *testing.T) {
		rec := iqtest.NewRecorder()
		c := iq.NewCaller(rec)
		defer c.Close()
		req := callerGet("my-id-1", "example.com")
		call := c.Go(context.Background(), req, nil)
		sent := nextSent(t, rec)
		assert.Equal(t, "my-id-1", sent.ID)
		require.True(t, c.Receive(callerResult("my-id-1", "example.com")))
		callerWait(t, call)
		assert.NoError(t, call.Err)
		assert.Equal(t, "my-id-1", call.Request.ID)
	})

	t.Run("duplicate pending id is refused", func(t *testing.T) {
		rec := iqtest.NewRecorder()
		c := iq.NewCaller(rec)
		defer c.Close()
		first := c.Go(context.Background(), callerGet("dup", "example.com"), nil)
		require.Equal(t, 1, c.Pending())

		_, err := c.Request(context.Background(), callerGet("dup", "example.com"))
		assert.ErrorIs(t, err, iq.ErrDuplicateID)
		assert.EqualValues(t, 1, rec.Len(), "the duplicate must not be sent")
		assert.Equal(t, 1, c.Pending())

		// The first is still the one answered; once it ended, the id is free.
		require.True(t, c.Receive(callerResult("dup", "example.com")))
		callerWait(t, first)
		assert.NoError(t, first.Err)
		again := c.Go(context.Background(), callerGet("dup", "example.com"), nil)
		require.True(t, c.Receive(callerResult("dup", "example.com")))
		callerWait(t, again)
		assert.NoError(t, again.Err)
	})
}

func TestNewID(t *testing.T) {
	const n = 10000
	seen := make(map[string]bool, n)
	for range n {
		id := iq.NewID()
		require.Len(t, id, 16)
		require.Regexp(t, callerIDPattern, id)
		require.False(t, seen[id], "duplicate id %q", id)
		seen[id] = true
	}
	assert.Len(t, seen, n)
}

// 11. Refused requests.

func TestCallerRequestRefusedInvalid(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	two := func(typ string) func(t *testing.T) *iq.IQ {
		return func(t *testing.T) *iq.IQ {
			return calleeParse(t, `<iq type='`+typ+`' id='x' to='example.com'>`+
				`<a xmlns='urn:a'/><b xmlns='urn:b'/></iq>`)
		}
	}
	fixed := func(q *iq.IQ) func(*testing.T) *iq.IQ { return func(*testing.T) *iq.IQ { return q } }
	tests := []struct {
		name string
		req  func(t *testing.T) *iq.IQ
	}{
		{"get without payload", fixed(&iq.IQ{Type: iq.TypeGet, ID: "x", To: "example.com"})},
		{"set without payload", fixed(&iq.IQ{Type: iq.TypeSet, To: "example.com"})},
		{"get with two children", two("get")},
		{"set with two children", two("set")},
		{"type result", fixed(&iq.IQ{Type: iq.TypeResult, ID: "x", Payload: callerPayload()})},
		{"type error", fixed(&iq.IQ{Type: iq.TypeError, ID: "x", Payload: callerPayload()})},
		{"empty type", fixed(&iq.IQ{ID: "x", Payload: callerPayload()})},
		{"unknown type", fixed(&iq.IQ{Type: "fetch", ID: "x", Payload: callerPayload()})},
		{"malformed to", fixed(&iq.IQ{Type: iq.TypeGet, ID: "x", To: "@@", Payload: callerPayload()})},
		{"nil request", fixed(nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := iqtest.NewRecorder()
			c := iq.NewCaller(rec)
			defer c.Close()
			resp, err := c.Request(context.Background(), tt.req(t))
			assert.ErrorIs(t, err, iq.ErrInvalid)
			assert.Nil(t, resp)
			assert.Zero(t, rec.Len(), "the Sender must not be called")
			assert.Zero(t, c.Pending())
		})
	}
}

// 12. Which responses resolve a request.

func TestCallerResponseSenderMatching(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	const (
		romeo  = "romeo@example.net/orchard"
		juliet = "juliet@example.com/balcony"
	)
	tests := []struct {
		name  string
		to    string
		local string // "" for no local JID
		from  string
		want  bool
	}{
		{"exact to", romeo, "", romeo, true},
		{"exact to with local JID", romeo, juliet, romeo, true},
		{"bare of to", romeo, "", "romeo@example.net", true},
		{"domain of to", romeo, "", "example.net", true},
		{"other resource of to's bare JID", romeo, "", "romeo@example.net/garden", false},
		{"other resource of to's bare JID with local JID", romeo, juliet, "romeo@example.net/garden", false},
		{"other user at the same domain", romeo, "", "mercutio@example.net/orchard", false},
		{"other bare user at the same domain", romeo, juliet, "mercutio@example.net", false},
		{"different domain", romeo, "", "romeo@example.org/orchard", false},
		{"different bare domain", romeo, juliet, "example.org", false},
		{"subdomain of to's domain", romeo, "", "chat.example.net", false},
		{"no from", romeo, "", "", true},
		{"no from with local JID", romeo, juliet, "", true},
		{"own full JID with local JID", romeo, juliet, juliet, true},
		{"own bare JID with local JID", romeo, juliet, "juliet@example.com", true},
		{"own domain with local JID", romeo, juliet, "example.com", true},
		{"own domain spelled differently", romeo, juliet, "EXAMPLE.com.", true},
		{"own full JID without local JID", romeo, "", juliet, false},
		{"own domain without local JID", romeo, "", "example.com", false},
		{"other resource of own bare JID", romeo, juliet, "juliet@example.com/chamber", false},
		{"case-folded localpart and domain", juliet, "", "JULIET@Example.COM/balcony", true},
		{"to in mixed case, from normalised", "JULIET@Example.COM/balcony", "", juliet, true},
		{"resource differing in case", juliet, "", "juliet@example.com/Balcony", false},
		{"from domain with trailing dot", romeo, "", "romeo@example.net./orchard", true},
		{"bare domain with trailing dot", romeo, "", "example.net.", true},
		{"to domain with trailing dot", "romeo@example.net./orchard", "", romeo, true},
		{"IDN domain as A-label", "münchen.example", "", "xn--mnchen-3ya.example", true},
		{"IDN domain in upper case", "münchen.example", "", "MÜNCHEN.example", true},
		{"non-ASCII localpart case-folded", "élodie@example.com/r", "", "ÉLODIE@example.com/r", true},
		{"malformed from", romeo, "", "@@", false},
		{"malformed from with local JID", romeo, juliet, "@@", false},
		{"malformed from, empty resource", romeo, "", "romeo@example.net/", false},
		{"no to, no local JID, any sender", "", "", "mallory@evil.example/x", true},
		{"no to, no local JID, no from", "", "", "", true},
		{"no to, local JID, stranger", "", juliet, "mallory@evil.example/x", false},
		{"no to, local JID, own domain", "", juliet, "example.com", true},
		{"no to, local JID, own bare", "", juliet, "juliet@example.com", true},
		{"no to, local JID, no from", "", juliet, "", true},
		{"local JID is a domain, from it", romeo, "component.example.com", "component.example.com", true},
		{"local JID in mixed case", romeo, "Juliet@Example.COM/balcony", "juliet@example.com", true},
	}
	for _, tt := range tests {
		for _, how := range []string{"WithLocalJID", "SetLocalJID"} {
			if tt.local == "" && how == "SetLocalJID" {
				continue
			}
			t.Run(tt.name+"/"+how, func(t *testing.T) {
				var opts []iq.Option
				if tt.local != "" && how == "WithLocalJID" {
					opts = append(opts, iq.WithLocalJID(tt.local))
				}
				c := iq.NewCaller(iqtest.NewRecorder(), opts...)
				if tt.local != "" && how == "SetLocalJID" {
					require.NoError(t, c.SetLocalJID(tt.local))
				}
				defer c.Close()
				call := c.Go(context.Background(), callerGet("m1", tt.to), nil)
				require.Equal(t, 1, c.Pending())

				got := c.Receive(callerResult("m1", tt.from))
				assert.Equal(t, tt.want, got, "Receive(from %q) for a request to %q", tt.from, tt.to)
				if tt.want {
					callerWait(t, call)
					assert.NoError(t, call.Err)
					require.NotNil(t, call.Response)
					assert.Equal(t, tt.from, call.Response.From)
					assert.Zero(t, c.Pending())
					return
				}
				assert.Equal(t, 1, c.Pending(), "the request must keep waiting")
				select {
				case <-call.Done:
					t.Fatal("request ended by a disallowed sender")
				default:
				}
			})
		}
	}
}

func TestCallerDisallowedSenderKeepsWaiting(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	rec := iqtest.NewRecorder()
	c := iq.NewCaller(rec, iq.WithLocalJID("juliet@example.com/balcony"))
	defer c.Close()

	done := make(chan struct{})
	var resp *iq.IQ
	var err error
	go func() {
		defer close(done)
		resp, err = c.Request(context.Background(), callerGet("w1", "romeo@example.net/orchard"))
	}()
	nextSent(t, rec)

	assert.False(t, c.Receive(callerResult("w1", "mallory@evil.example")), "spoofed sender")
	assert.False(t, c.Receive(callerResult("w1", "romeo@example.net/garden")), "other resource")
	assert.False(t, c.Receive(callerResult("w2", "romeo@example.net/orchard")), "other id")
	assert.Equal(t, 1, c.Pending())
	select {
	case <-done:
		t.Fatal("request ended before its response")
	case <-time.After(20 * time.Millisecond):
	}

	good := callerResult("w1", "romeo@example.net/orchard")
	good.Payload = iq.NewElement(callerNS, "answer")
	require.True(t, c.Receive(good))
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("request did not end")
	}
	require.NoError(t, err)
	assert.Same(t, good, resp)
	assert.False(t, c.Receive(callerResult("w1", "romeo@example.net/orchard")), "second response")
}

func TestCallerInboundRequestWithPendingIDIsNotAResponse(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	for _, typ := range []iq.Type{iq.TypeGet, iq.TypeSet, "", "bogus"} {
		t.Run("type "+strconv.Quote(string(typ)), func(t *testing.T) {
			c := iq.NewCaller(iqtest.NewRecorder())
			defer c.Close()
			call := c.Go(context.Background(), callerGet("p1", "example.com"), nil)
			in := &iq.IQ{Type: typ, ID: "p1", From: "example.com", Payload: callerPayload()}
			assert.False(t, c.Receive(in))
			assert.Equal(t, 1, c.Pending())
			require.True(t, c.Receive(callerResult("p1", "example.com")))
			callerWait(t, call)
			assert.NoError(t, call.Err)
		})
	}
	t.Run("nil", func(t *testing.T) {
		c := iq.NewCaller(iqtest.NewRecorder())
		assert.False(t, c.Receive(nil))
	})
	t.Run("unknown id", func(t *testing.T) {
		c := iq.NewCaller(iqtest.NewRecorder())
		assert.False(t, c.Receive(callerResult("nope", "")))
	})
}

// Bug: a request made without a to before the local JID was known keeps
// accepting any sender after SetLocalJID, though SetLocalJID "affects
// responses received after it returns".
func TestCallerSetLocalJIDAppliesToPendingRequests(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	c := iq.NewCaller(iqtest.NewRecorder())
	defer c.Close()
	call := c.Go(context.Background(), callerGet("early", ""), nil)
	require.NoError(t, c.SetLocalJID("juliet@example.com/balcony"))

	assert.False(t, c.Receive(callerResult("early", "mallory@evil.example/x")),
		"once the local JID is known, a request with no to must accept only the local server's responses")
	if c.Pending() == 1 {
		assert.True(t, c.Receive(callerResult("early", "example.com")))
	}
	callerWait(t, call)
}

func TestCallerSetLocalJIDMalformed(t *testing.T) {
	c := iq.NewCaller(iqtest.NewRecorder())
	for _, bad := range []string{"@@", "", "juliet@example.com/", "@example.com"} {
		assert.Error(t, c.SetLocalJID(bad), "SetLocalJID(%q)", bad)
	}
}

// 13. Deadlines.

func TestCallerTimeout(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	tests := []struct {
		name       string
		timeout    time.Duration // WithTimeout
		ctxTimeout time.Duration // 0: no deadline on ctx
		min, max   time.Duration
	}{
		{"default timeout without ctx deadline", 50 * time.Millisecond, 0, 45 * time.Millisecond, 2 * time.Second},
		{"ctx deadline shorter than default", 10 * time.Second, 50 * time.Millisecond, 45 * time.Millisecond, 2 * time.Second},
		{"ctx deadline longer than default", 30 * time.Millisecond, 120 * time.Millisecond, 110 * time.Millisecond, 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := iqtest.NewRecorder()
			c := iq.NewCaller(rec, iq.WithTimeout(tt.timeout))
			defer c.Close()
			ctx := context.Background()
			if tt.ctxTimeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.ctxTimeout)
				defer cancel()
			}
			start := time.Now()
			resp, err := c.Request(ctx, callerGet("t1", "example.com"))
			elapsed := time.Since(start)

			assert.Nil(t, resp)
			assert.ErrorIs(t, err, iq.ErrTimeout)
			assert.ErrorIs(t, err, context.DeadlineExceeded)
			assert.NotErrorIs(t, err, iq.ErrClosed)
			assert.GreaterOrEqual(t, elapsed, tt.min)
			assert.Less(t, elapsed, tt.max)
			assert.Zero(t, c.Pending(), "the entry must be removed")
			assert.False(t, c.Receive(callerResult("t1", "example.com")), "a late response must be dropped")
		})
	}
}

func TestCallerContextDeadlineLongerThanDefaultWins(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	rec := iqtest.NewRecorder()
	c := iq.NewCaller(rec, iq.WithTimeout(50*time.Millisecond))
	defer c.Close()
	rec.OnSend(func(_ context.Context, req *iq.IQ) error {
		go func() {
			time.Sleep(100 * time.Millisecond)
			c.Receive(req.Result(iq.NewElement(callerNS, "late-but-in-time")))
		}()
		return nil
	})

	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	start := time.Now()
	resp, err := c.Request(ctx, callerGet("", "example.com"))
	elapsed := time.Since(start)
	require.NoError(t, err, "must wait for ctx's deadline, not the 50 ms default")
	require.NotNil(t, resp)
	assert.Equal(t, "late-but-in-time", resp.Payload.Name.Local)
	assert.GreaterOrEqual(t, elapsed, 90*time.Millisecond)
	assert.Zero(t, c.Pending())
}

func TestCallerContextAlreadyExpired(t *testing.T) {
	rec := iqtest.NewRecorder()
	c := iq.NewCaller(rec)
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	_, err := c.Request(ctx, callerGet("", "example.com"))
	assert.ErrorIs(t, err, iq.ErrTimeout)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Zero(t, rec.Len())
	assert.Zero(t, c.Pending())
}

// 14. Send failure and cancellation.

func TestCallerSendFailure(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	errSend := errors.New("stream broken")
	rec := iqtest.NewRecorder()
	rec.FailWith(errSend)
	c := iq.NewCaller(rec)
	defer c.Close()

	resp, err := c.Request(context.Background(), callerGet("s1", "example.com"))
	assert.Nil(t, resp)
	require.Error(t, err)
	assert.ErrorIs(t, err, errSend)
	assert.NotErrorIs(t, err, iq.ErrTimeout)
	assert.Zero(t, c.Pending(), "entry removed at once")
	assert.EqualValues(t, 1, rec.Len())
	assert.False(t, c.Receive(callerResult("s1", "example.com")))

	// The id is free again.
	rec.FailWith(nil)
	call := c.Go(context.Background(), callerGet("s1", "example.com"), nil)
	assert.Equal(t, 1, c.Pending())
	require.True(t, c.Receive(callerResult("s1", "example.com")))
	callerWait(t, call)
	assert.NoError(t, call.Err)
}

func TestCallerContextCancel(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	tests := []struct {
		name string
		// run cancels ctx at some point of the request's life.
		setup      func(rec *iqtest.Recorder, cancel context.CancelFunc)
		preCancel  bool
		wantCalled bool
	}{
		{
			name:      "cancelled before the request",
			preCancel: true,
		},
		{
			name: "cancelled while pending",
			setup: func(rec *iqtest.Recorder, cancel context.CancelFunc) {
				rec.OnSend(func(context.Context, *iq.IQ) error {
					go func() { time.Sleep(20 * time.Millisecond); cancel() }()
					return nil
				})
			},
			wantCalled: true,
		},
		{
			name: "cancelled during the send, Sender returns ctx.Err",
			setup: func(rec *iqtest.Recorder, cancel context.CancelFunc) {
				rec.OnSend(func(ctx context.Context, _ *iq.IQ) error {
					cancel()
					<-ctx.Done()
					return ctx.Err()
				})
			},
			wantCalled: true,
		},
		{
			name: "cancelled during the send, Sender succeeds",
			setup: func(rec *iqtest.Recorder, cancel context.CancelFunc) {
				rec.OnSend(func(context.Context, *iq.IQ) error { cancel(); return nil })
			},
			wantCalled: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := iqtest.NewRecorder()
			c := iq.NewCaller(rec, iq.WithTimeout(10*time.Second))
			defer c.Close()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.setup != nil {
				tt.setup(rec, cancel)
			}
			if tt.preCancel {
				cancel()
			}
			start := time.Now()
			resp, err := c.Request(ctx, callerGet("c1", "example.com"))
			assert.Less(t, time.Since(start), 2*time.Second)
			assert.Zero(t, c.Pending(), "entry removed at once")
			assert.Nil(t, resp)
			assert.ErrorIs(t, err, context.Canceled)
			assert.NotErrorIs(t, err, iq.ErrTimeout)
			assert.NotErrorIs(t, err, context.DeadlineExceeded)
			assert.Equal(t, tt.wantCalled, rec.Len() > 0)
			assert.False(t, c.Receive(callerResult("c1", "example.com")))
		})
	}
}

// 15. A result with more than one child.

func TestCallerResultWithTwoChildren(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	c := iq.NewCaller(iqtest.NewRecorder())
	defer c.Close()
	call := c.Go(context.Background(), callerGet("two", "example.com"), nil)

	resp := calleeParse(t, `<iq xmlns='jabber:client' type='result' id='two' from='example.com'>`+
		`<first xmlns='urn:a'/><second xmlns='urn:b'/></iq>`)
	require.Equal(t, 2, resp.NumChildren())
	assert.True(t, c.Receive(resp), "the malformed response ends the request")
	callerWait(t, call)
	require.Error(t, call.Err)
	assert.ErrorIs(t, call.Err, iq.ErrInvalid)
	assert.Contains(t, call.Err.Error(), "2")
	assert.Zero(t, c.Pending())
}

// 16. The pending cap.

func TestCallerMaxPending(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	rec := iqtest.NewRecorder()
	c := iq.NewCaller(rec, iq.WithMaxPending(2))
	defer c.Close()
	a := c.Go(context.Background(), callerGet("a", "example.com"), nil)
	c.Go(context.Background(), callerGet("b", "example.com"), nil)
	require.Equal(t, 2, c.Pending())

	start := time.Now()
	_, err := c.Request(context.Background(), callerGet("c", "example.com"))
	assert.Less(t, time.Since(start), time.Second, "refused at once")
	assert.ErrorIs(t, err, iq.ErrTooManyPending)
	assert.EqualValues(t, 2, rec.Len(), "Sender not called for the refused request")
	assert.Equal(t, 2, c.Pending())

	// Room again once one ends.
	require.True(t, c.Receive(callerResult("a", "example.com")))
	callerWait(t, a)
	d := c.Go(context.Background(), callerGet("d", "example.com"), nil)
	assert.Equal(t, 2, c.Pending())
	require.True(t, c.Receive(callerResult("d", "example.com")))
	callerWait(t, d)
	assert.NoError(t, d.Err)
}

// 17. Close.

func TestCallerClose(t *testing.T) {
	errCause := errors.New("stream ended")
	tests := []struct {
		name  string
		close func(c *iq.Caller) error
		cause error
	}{
		{"Close", (*iq.Caller).Close, nil},
		{"CloseWithError", func(c *iq.Caller) error { return c.CloseWithError(errCause) }, errCause},
		{"CloseWithError nil", func(c *iq.Caller) error { return c.CloseWithError(nil) }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			rec := iqtest.NewRecorder()
			c := iq.NewCaller(rec, iq.WithTimeout(time.Minute))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()

			var calls []*iq.Call
			for i := range 5 {
				calls = append(calls, c.Go(ctx, callerGet(fmt.Sprint("close-", i), "example.com"), nil))
			}
			// One request blocked in Request, too.
			reqErr := make(chan error, 1)
			go func() {
				_, err := c.Request(context.Background(), callerGet("blocked", "example.com"))
				reqErr <- err
			}()
			require.Eventually(t, func() bool { return c.Pending() == 6 }, 2*time.Second, time.Millisecond)

			start := time.Now()
			require.NoError(t, tt.close(c))
			for _, call := range calls {
				callerWait(t, call)
				assert.ErrorIs(t, call.Err, iq.ErrClosed)
				if tt.cause != nil {
					assert.ErrorIs(t, call.Err, tt.cause)
				}
				assert.Nil(t, call.Response)
			}
			select {
			case err := <-reqErr:
				assert.ErrorIs(t, err, iq.ErrClosed)
			case <-time.After(2 * time.Second):
				t.Fatal("blocked Request did not end")
			}
			assert.Less(t, time.Since(start), time.Second, "pending requests fail promptly")
			assert.Zero(t, c.Pending())

			sent := rec.Len()
			_, err := c.Request(context.Background(), callerGet("after", "example.com"))
			assert.ErrorIs(t, err, iq.ErrClosed)
			if tt.cause != nil {
				assert.ErrorIs(t, err, tt.cause)
			}
			assert.Equal(t, sent, rec.Len(), "no send after close")
			assert.False(t, c.Receive(callerResult("close-0", "example.com")))

			// Idempotent; the first cause stays.
			assert.NoError(t, c.Close())
			assert.NoError(t, c.CloseWithError(errors.New("other")))
			_, err = c.Request(context.Background(), callerGet("after2", "example.com"))
			assert.ErrorIs(t, err, iq.ErrClosed)
			if tt.cause != nil {
				assert.ErrorIs(t, err, tt.cause)
			}
		})
	}
}

// 18. Concurrency.

func TestCallerConcurrent(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	const (
		workers  = 64
		requests = 500
	)
	var dropped atomic.Int64
	rec := iqtest.NewRecorder()
	c := iq.NewCaller(rec, iq.WithLocalJID("juliet@example.com/balcony"))
	defer c.Close()
	rec.OnSend(func(_ context.Context, req *iq.IQ) error {
		go func() {
			var resp *iq.IQ
			if req.Payload.AttrValue("fail") == "1" {
				resp = req.ErrorReply(iq.NewError(iq.Cancel, iq.ItemNotFound, req.Payload.AttrValue("n")))
			} else {
				resp = req.Result(iq.NewElement(callerNS, "echo", "n", req.Payload.AttrValue("n")))
			}
			if !c.Receive(resp) {
				dropped.Add(1)
			}
		}()
		return nil
	})

	var wrong atomic.Int64
	var firstWrong sync.Once
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range requests {
				n := fmt.Sprintf("%d-%d", w, i)
				fail := (w+i)%5 == 0
				p := iq.NewElement(callerNS, "query", "n", n)
				if fail {
					p.SetAttr("fail", "1")
				}
				resp, err := c.Request(context.Background(), &iq.IQ{Type: iq.TypeGet, To: "example.net", Payload: p})
				ok := false
				if fail {
					var serr *iq.StanzaError
					ok = errors.As(err, &serr) && serr.Condition == iq.ItemNotFound && serr.Text == n &&
						resp != nil && resp.Type == iq.TypeError
				} else {
					ok = err == nil && resp != nil && resp.Payload.AttrValue("n") == n
				}
				if !ok {
					wrong.Add(1)
					firstWrong.Do(func() { t.Errorf("request %s: resp %v, err %v", n, resp, err) })
				}
			}
		})
	}
	wg.Wait()
	assert.Zero(t, wrong.Load())
	assert.Zero(t, dropped.Load())
	assert.Zero(t, c.Pending())
}

// Error replies, Get and Set.

func TestCallerErrorReply(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	tests := []struct {
		name     string
		raw      string
		wantType iq.ErrorType
		wantCond iq.Condition
		wantText string
	}{
		{
			name: "item-not-found with text",
			raw: `<iq type='error' id='e1' from='example.com'><error type='cancel'>` +
				`<item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>` +
				`<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>no such item</text></error></iq>`,
			wantType: iq.Cancel, wantCond: iq.ItemNotFound, wantText: "no such item",
		},
		{
			name: "with echoed payload",
			raw: `<iq type='error' id='e1' from='example.com'><query xmlns='urn:example:caller'/>` +
				`<error type='modify'><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`,
			wantType: iq.Modify, wantCond: iq.BadRequest,
		},
		{
			name:     "without an error child",
			raw:      `<iq type='error' id='e1' from='example.com'/>`,
			wantType: iq.Cancel, wantCond: iq.UndefinedCondition,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := iq.NewCaller(iqtest.NewRecorder())
			defer c.Close()
			call := c.Go(context.Background(), callerGet("e1", "example.com"), nil)
			reply := calleeParse(t, tt.raw)
			require.True(t, c.Receive(reply))
			callerWait(t, call)

			assert.Same(t, reply, call.Response, "the error IQ is returned")
			var serr *iq.StanzaError
			require.ErrorAs(t, call.Err, &serr)
			assert.Equal(t, tt.wantType, serr.Type)
			assert.Equal(t, tt.wantCond, serr.Condition)
			assert.Equal(t, tt.wantText, serr.Text)
			assert.ErrorIs(t, call.Err, &iq.StanzaError{Condition: tt.wantCond})
			assert.ErrorIs(t, call.Err, &iq.StanzaError{Type: tt.wantType, Condition: tt.wantCond})
			assert.NotErrorIs(t, call.Err, &iq.StanzaError{Condition: iq.Forbidden})
			assert.NotErrorIs(t, call.Err, &iq.StanzaError{Type: iq.Wait, Condition: tt.wantCond})
			assert.NotErrorIs(t, call.Err, iq.ErrInvalid)
		})
	}

	t.Run("Request returns the error IQ and errors.Is item-not-found", func(t *testing.T) {
		rec := iqtest.NewRecorder()
		c := iq.NewCaller(rec)
		defer c.Close()
		rec.OnSend(func(_ context.Context, req *iq.IQ) error {
			go c.Receive(req.ErrorReply(iq.NewError(iq.Cancel, iq.ItemNotFound, "gone fishing")))
			return nil
		})
		resp, err := c.Request(context.Background(), callerGet("", "example.com"))
		require.Error(t, err)
		require.NotNil(t, resp)
		assert.Equal(t, iq.TypeError, resp.Type)
		assert.ErrorIs(t, err, &iq.StanzaError{Condition: iq.ItemNotFound})
		var serr *iq.StanzaError
		require.ErrorAs(t, err, &serr)
		assert.Equal(t, "gone fishing", serr.Text)
	})
}

func TestCallerGetSet(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	answer := iq.NewElement(callerNS, "answer").AppendText("42")
	tests := []struct {
		name    string
		do      func(c *iq.Caller, ctx context.Context, to string, p *iq.Element) (*iq.Element, error)
		typ     iq.Type
		reply   func(req *iq.IQ) *iq.IQ
		want    *iq.Element
		wantErr error
	}{
		{"Get with payload", (*iq.Caller).Get, iq.TypeGet,
			func(req *iq.IQ) *iq.IQ { return req.Result(answer) }, answer, nil},
		{"Get with empty result", (*iq.Caller).Get, iq.TypeGet,
			func(req *iq.IQ) *iq.IQ { return req.Result(nil) }, nil, nil},
		{"Set with empty result", (*iq.Caller).Set, iq.TypeSet,
			func(req *iq.IQ) *iq.IQ { return req.Result(nil) }, nil, nil},
		{"Set with payload", (*iq.Caller).Set, iq.TypeSet,
			func(req *iq.IQ) *iq.IQ { return req.Result(answer) }, answer, nil},
		{"Get error", (*iq.Caller).Get, iq.TypeGet,
			func(req *iq.IQ) *iq.IQ { return req.ErrorReply(iq.NewError(iq.Auth, iq.Forbidden, "")) },
			nil, &iq.StanzaError{Condition: iq.Forbidden}},
		{"Set error", (*iq.Caller).Set, iq.TypeSet,
			func(req *iq.IQ) *iq.IQ { return req.ErrorReply(iq.NewError(iq.Modify, iq.NotAcceptable, "")) },
			nil, &iq.StanzaError{Condition: iq.NotAcceptable}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := iqtest.NewRecorder()
			c := iq.NewCaller(rec)
			defer c.Close()
			rec.OnSend(func(_ context.Context, req *iq.IQ) error {
				go c.Receive(tt.reply(req))
				return nil
			})
			p := callerPayload()
			got, err := tt.do(c, context.Background(), "service.example.com", p)
			req := nextSent(t, rec)
			assert.Equal(t, tt.typ, req.Type)
			assert.Equal(t, "service.example.com", req.To)
			assert.Same(t, p, req.Payload)
			assert.Regexp(t, callerIDPattern, req.ID)
			if tt.wantErr != nil {
				assert.ErrorIs(t, err, tt.wantErr)
				assert.Nil(t, got)
				return
			}
			require.NoError(t, err)
			if tt.want == nil {
				assert.Nil(t, got)
			} else {
				assert.Same(t, tt.want, got)
			}
		})
	}
}

// Go.

func TestCallerGoSharedDoneChannel(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	const n = 100
	rec := iqtest.NewRecorder()
	c := iq.NewCaller(rec)
	defer c.Close()
	rec.OnSend(func(_ context.Context, req *iq.IQ) error {
		go c.Receive(req.Result(nil))
		return nil
	})

	done := make(chan *iq.Call, 1)
	started := make(map[*iq.Call]bool, n)
	for range n {
		call := c.Go(context.Background(), callerGet("", "example.com"), done)
		require.True(t, done == call.Done, "Go must use the given channel")
		started[call] = true
	}
	got := make(map[*iq.Call]bool, n)
	timeout := time.After(5 * time.Second)
	for len(got) < n {
		select {
		case call := <-done:
			assert.True(t, started[call], "unknown call")
			assert.False(t, got[call], "call delivered twice")
			assert.NoError(t, call.Err)
			got[call] = true
		case <-timeout:
			t.Fatalf("only %d of %d calls delivered", len(got), n)
		}
	}
	assert.Len(t, got, n)
	assert.Zero(t, c.Pending())
	select {
	case call := <-done:
		t.Fatalf("extra delivery of %v", call.Request)
	case <-time.After(10 * time.Millisecond):
	}
}

func TestCallerGoNilDone(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	rec := iqtest.NewRecorder()
	c := iq.NewCaller(rec)
	defer c.Close()

	call := c.Go(context.Background(), callerGet("", "example.com"), nil)
	require.NotNil(t, call.Done)
	sent := nextSent(t, rec)
	require.True(t, c.Receive(callerResult(sent.ID, "example.com")))
	callerWait(t, call)
	assert.NoError(t, call.Err)
	assert.Equal(t, sent.ID, call.Response.ID)

	// A call refused at once is delivered on its own channel too.
	bad := c.Go(context.Background(), &iq.IQ{Type: iq.TypeGet}, nil)
	require.NotNil(t, bad.Done)
	callerWait(t, bad)
	assert.ErrorIs(t, bad.Err, iq.ErrInvalid)
}

func TestCallerSenderAnswersSynchronously(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	var received bool
	rec := iqtest.NewRecorder()
	c := iq.NewCaller(rec)
	defer c.Close()
	rec.OnSend(func(_ context.Context, req *iq.IQ) error {
		// The request is pending before it is sent, so an answer that
		// arrives before SendIQ returns is matched.
		received = c.Receive(req.Result(iq.NewElement(callerNS, "fast")))
		return nil
	})
	res, err := c.Get(context.Background(), "example.com", callerPayload())
	require.NoError(t, err)
	assert.True(t, received)
	assert.Equal(t, "fast", res.Name.Local)
	assert.Zero(t, c.Pending())
}
