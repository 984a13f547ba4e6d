package iq_test

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"runtime"
	"strconv"
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

const (
	calleeNS    = "u:a"
	calleeOther = "u:other"
)

// calleeModes are the two ways a Callee answers: Reply returns the reply,
// Receive sends it through the Sender.
var calleeModes = []struct {
	name  string
	reply func(t *testing.T, c *iq.Callee, r *iqtest.Recorder, req *iq.IQ) *iq.IQ
}{
	{"Reply", func(t *testing.T, c *iq.Callee, r *iqtest.Recorder, req *iq.IQ) *iq.IQ {
		t.Helper()
		reply := c.Reply(context.Background(), req)
		assert.Zero(t, r.Len(), "Reply must not send")
		return reply
	}},
	{"Receive", func(t *testing.T, c *iq.Callee, r *iqtest.Recorder, req *iq.IQ) *iq.IQ {
		t.Helper()
		c.Receive(context.Background(), req)
		reply := nextSent(t, r)
		require.Eventually(t, func() bool { return c.InFlight() == 0 }, calleeWaitFor, time.Millisecond)
		assert.Equal(t, 1, r.Len(), "exactly one reply per request")
		return reply
	}},
}

func TestCallee_RoutesToMatchingHandlerAndRepliesWithResult(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	rich := iq.NewElement(calleeNS, "a", "ver", "1 & <2>").
		AppendText("hello").
		Append(iq.NewElement(calleeNS, "item", "jid", "x@y"), iq.NewElement("u:ext", "x"))

	cases := []struct {
		name    string
		raw     string
		payload *iq.Element // the handler's return; nil for an empty result
	}{
		{"GetWithPayload", `<iq type='get' id='g1' from='x@y/z' to='svc'><a xmlns='u:a'/></iq>`, rich},
		{"SetWithPayload", `<iq type='set' id='s1' from='x@y/z' to='svc'><a xmlns='u:a'>v</a></iq>`, iq.NewElement(calleeNS, "done")},
		{"GetNilElementIsEmptyResult", `<iq type='get' id='g2' from='x@y/z'><a xmlns='u:a'/></iq>`, nil},
		{"SetNilElementIsEmptyResult", `<iq type='set' id='s2' from='x@y/z'><a xmlns='u:a'/></iq>`, nil},
		{"JabberClientNamespace", `<iq xmlns='jabber:client' type='get' id='g3' from='x@y/z'>
			<a xmlns='u:a'/>
		</iq>`, rich},
	}
	for _, mode := range calleeModes {
		t.Run(mode.name, func(t *testing.T) {
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					rec := iqtest.NewRecorder()
					c := iq.NewCallee(rec)
					defer c.Close()
					req := calleeParse(t, tc.raw)
					var got []*iq.IQ
					var gotType []iq.Type
					var mu sync.Mutex
					h := func(want iq.Type) iq.HandlerFunc {
						return func(ctx context.Context, r *iq.IQ) (*iq.Element, error) {
							mu.Lock()
							got = append(got, r)
							gotType = append(gotType, want)
							mu.Unlock()
							return tc.payload, nil
						}
					}
					c.Get(calleeNS, "a", h(iq.TypeGet))
					c.Set(calleeNS, "a", h(iq.TypeSet))
					c.Get(calleeNS, "b", func(context.Context, *iq.IQ) (*iq.Element, error) {
						t.Error("wrong element routed to")
						return nil, nil
					})

					reply := mode.reply(t, c, rec, req)
					calleeAssertResult(t, reply, tc.payload)
					assert.Equal(t, req.ID, reply.ID)
					assert.Equal(t, req.From, reply.To)

					mu.Lock()
					defer mu.Unlock()
					require.Len(t, got, 1, "handler called once")
					assert.Same(t, req, got[0], "the handler gets the request")
					assert.Equal(t, req.Type, gotType[0], "routed by type")
				})
			}
		})
	}
}

func TestCallee_ZeroOrManyChildrenIsBadRequest(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	cases := []struct {
		name string
		raw  string
	}{
		{"WhitespaceAndTextOnly", `<iq type='get' id='a1' from='x@y/z'>  text </iq>`},
		{"Whitespace", "<iq type='set' id='a1' from='x@y/z'>\n\t </iq>"},
		{"EmptyGet", `<iq type='get' id='a1' from='x@y/z'/>`},
		{"EmptySet", `<iq type='set' id='a1' from='x@y/z'></iq>`},
		{"TwoChildren", `<iq type='get' id='a1' from='x@y/z'><a xmlns='u:a'/><b xmlns='u:a'/></iq>`},
		{"TwoOfTheHandledElement", `<iq type='set' id='a1' from='x@y/z'><a xmlns='u:a'/><a xmlns='u:a'/></iq>`},
		{"ThreeChildrenWithText", `<iq type='get' id='a1' from='x@y/z'>x<a xmlns='u:a'/> y <a xmlns='u:a'/>z<c xmlns='u:c'/></iq>`},
		{"ErrorElementInGet", `<iq type='get' id='a1' from='x@y/z'><a xmlns='u:a'/><error type='cancel'><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`},
	}
	for _, mode := range calleeModes {
		t.Run(mode.name, func(t *testing.T) {
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					rec := iqtest.NewRecorder()
					c := iq.NewCallee(rec)
					defer c.Close()
					var calls atomic.Int32
					h := func(context.Context, *iq.IQ) (*iq.Element, error) {
						calls.Add(1)
						return nil, nil
					}
					c.Get(calleeNS, "a", h)
					c.Set(calleeNS, "a", h)
					c.Get(calleeNS, "b", h)

					req := calleeParse(t, tc.raw)
					reply := mode.reply(t, c, rec, req)
					calleeAssertErrorReply(t, reply, iq.Modify, iq.BadRequest)
					assert.Equal(t, "a1", reply.ID)
					assert.Equal(t, "x@y/z", reply.To)
					assert.Zero(t, calls.Load(), "a malformed request must never reach a handler")
				})
			}
		})
	}
}

func TestCallee_MissingOrUnknownTypeOrMissingIDIsBadRequest(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	cases := []struct {
		name   string
		raw    string
		wantID string
	}{
		{"MissingType", `<iq id='a1' from='x@y/z'><a xmlns='u:a'/></iq>`, "a1"},
		{"EmptyType", `<iq type='' id='a1' from='x@y/z'><a xmlns='u:a'/></iq>`, "a1"},
		{"UnknownType", `<iq type='query' id='a1' from='x@y/z'><a xmlns='u:a'/></iq>`, "a1"},
		{"UppercaseType", `<iq type='GET' id='a1' from='x@y/z'><a xmlns='u:a'/></iq>`, "a1"},
		{"UnknownTypeWithoutID", `<iq type='query' from='x@y/z'><a xmlns='u:a'/></iq>`, ""},
		{"GetWithoutID", `<iq type='get' from='x@y/z'><a xmlns='u:a'/></iq>`, ""},
		{"SetWithoutID", `<iq type='set' from='x@y/z'><a xmlns='u:a'/></iq>`, ""},
		{"GetWithEmptyID", `<iq type='get' id='' from='x@y/z'><a xmlns='u:a'/></iq>`, ""},
	}
	for _, mode := range calleeModes {
		t.Run(mode.name, func(t *testing.T) {
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					rec := iqtest.NewRecorder()
					c := iq.NewCallee(rec)
					defer c.Close()
					var calls atomic.Int32
					h := func(context.Context, *iq.IQ) (*iq.Element, error) {
						calls.Add(1)
						return nil, nil
					}
					c.Get(calleeNS, "a", h)
					c.Set(calleeNS, "a", h)

					reply := mode.reply(t, c, rec, calleeParse(t, tc.raw))
					calleeAssertErrorReply(t, reply, iq.Modify, iq.BadRequest)
					assert.Equal(t, tc.wantID, reply.ID)
					assert.Equal(t, "x@y/z", reply.To)
					assert.Zero(t, calls.Load())
					if tc.wantID == "" {
						_, raw := calleeRoundTrip(t, reply)
						assert.NotContains(t, raw, "id=", "a reply to a request without id has none")
					}
				})
			}
		})
	}
}

func TestCallee_NoMatchingHandlerIsFeatureNotImplemented(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	cases := []struct {
		name string
		opts []iq.Option
		raw  string
		want iq.Condition
	}{
		{"NoHandlersAtAll", nil, `<iq type='get' id='n1' from='x@y/z'><a xmlns='u:a'/></iq>`, iq.FeatureNotImplemented},
		{"UnknownNamespace", nil, `<iq type='get' id='n1' from='x@y/z'><q xmlns='u:nobody'/></iq>`, iq.FeatureNotImplemented},
		{"KnownNamespaceUnknownElement", nil, `<iq type='get' id='n1' from='x@y/z'><zz xmlns='u:a'/></iq>`, iq.FeatureNotImplemented},
		{"KnownElementUnknownType", nil, `<iq type='set' id='n1' from='x@y/z'><a xmlns='u:a'/></iq>`, iq.FeatureNotImplemented},
		{"SameLocalNameNoNamespace", nil, `<iq type='get' id='n1' from='x@y/z'><a/></iq>`, iq.FeatureNotImplemented},
		{"SameLocalNameStreamNamespace", nil, `<iq xmlns='jabber:client' type='get' id='n1' from='x@y/z'><a/></iq>`, iq.FeatureNotImplemented},

		{"ServiceUnavailable/UnknownNamespace", []iq.Option{iq.WithUnknownNamespaceCondition(iq.ServiceUnavailable)},
			`<iq type='get' id='n1' from='x@y/z'><q xmlns='u:nobody'/></iq>`, iq.ServiceUnavailable},
		{"ServiceUnavailable/NoNamespace", []iq.Option{iq.WithUnknownNamespaceCondition(iq.ServiceUnavailable)},
			`<iq type='get' id='n1' from='x@y/z'><a/></iq>`, iq.ServiceUnavailable},
		{"ServiceUnavailable/KnownNamespaceUnknownElement", []iq.Option{iq.WithUnknownNamespaceCondition(iq.ServiceUnavailable)},
			`<iq type='get' id='n1' from='x@y/z'><zz xmlns='u:a'/></iq>`, iq.FeatureNotImplemented},
		{"ServiceUnavailable/KnownElementUnknownType", []iq.Option{iq.WithUnknownNamespaceCondition(iq.ServiceUnavailable)},
			`<iq type='set' id='n1' from='x@y/z'><a xmlns='u:a'/></iq>`, iq.FeatureNotImplemented},
		{"EmptyConditionKeepsDefault", []iq.Option{iq.WithUnknownNamespaceCondition("")},
			`<iq type='get' id='n1' from='x@y/z'><q xmlns='u:nobody'/></iq>`, iq.FeatureNotImplemented},
	}
	for _, mode := range calleeModes {
		t.Run(mode.name, func(t *testing.T) {
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					rec := iqtest.NewRecorder()
					c := iq.NewCallee(rec, tc.opts...)
					defer c.Close()
					var calls atomic.Int32
					if tc.name != "NoHandlersAtAll" {
						c.Get(calleeNS, "a", func(context.Context, *iq.IQ) (*iq.Element, error) {
							calls.Add(1)
							return nil, nil
						})
					}
					req := calleeParse(t, tc.raw)

					h, serr := c.Handler(req)
					assert.Nil(t, h)
					if assert.NotNil(t, serr) {
						assert.Equal(t, iq.Cancel, serr.Type)
						assert.Equal(t, tc.want, serr.Condition)
					}

					reply := mode.reply(t, c, rec, req)
					calleeAssertErrorReply(t, reply, iq.Cancel, tc.want)
					assert.Equal(t, "n1", reply.ID)
					assert.Equal(t, "x@y/z", reply.To)
					assert.Zero(t, calls.Load())
				})
			}
		})
	}
}

func TestCallee_HandlerErrorBecomesErrorReply(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	const secret = "s3cr3t-db-password"
	app := iq.NewElement("urn:example:app", "too-big", "max", "10")
	full := &iq.StanzaError{Type: iq.Modify, Condition: iq.NotAcceptable, Text: "value out of range",
		Lang: "en", App: app}
	var typedNil *iq.StanzaError

	cases := []struct {
		name    string
		handler iq.HandlerFunc
		want    *iq.StanzaError // nil: internal-server-error
		logged  []string        // what the log must mention
	}{
		{"StanzaError", func(context.Context, *iq.IQ) (*iq.Element, error) { return nil, full }, full, nil},
		{"StanzaErrorWithPayloadIgnoresPayload", func(context.Context, *iq.IQ) (*iq.Element, error) {
			return iq.NewElement(calleeNS, "ignored"), full
		}, full, nil},
		{"WrappedStanzaError", func(context.Context, *iq.IQ) (*iq.Element, error) {
			return nil, fmt.Errorf("lookup %s: %w", secret, full)
		}, full, nil},
		{"DoublyWrappedStanzaError", func(context.Context, *iq.IQ) (*iq.Element, error) {
			return nil, fmt.Errorf("outer: %w", fmt.Errorf("inner: %w", iq.NewError(iq.Auth, iq.Forbidden, "")))
		}, iq.NewError(iq.Auth, iq.Forbidden, ""), nil},
		{"JoinedStanzaError", func(context.Context, *iq.IQ) (*iq.Element, error) {
			return nil, errors.Join(errors.New(secret), iq.NewError(iq.Cancel, iq.ItemNotFound, "no such item"))
		}, iq.NewError(iq.Cancel, iq.ItemNotFound, "no such item"), nil},
		{"GoneWithTarget", func(context.Context, *iq.IQ) (*iq.Element, error) {
			return nil, &iq.StanzaError{Type: iq.Cancel, Condition: iq.Gone, Target: "xmpp:new@example.com"}
		}, &iq.StanzaError{Type: iq.Cancel, Condition: iq.Gone, Target: "xmpp:new@example.com"}, nil},
		{"PlainError", func(context.Context, *iq.IQ) (*iq.Element, error) {
			return nil, errors.New("query failed: " + secret)
		}, nil, []string{"handler failed", secret, "id=h1"}},
		{"WrappedPlainError", func(context.Context, *iq.IQ) (*iq.Element, error) {
			return nil, fmt.Errorf("store: %w", errors.New(secret))
		}, nil, []string{"handler failed", secret}},
		{"ContextError", func(context.Context, *iq.IQ) (*iq.Element, error) {
			return nil, context.DeadlineExceeded
		}, nil, []string{"handler failed", "deadline exceeded"}},
		{"TypedNilStanzaError", func(context.Context, *iq.IQ) (*iq.Element, error) {
			return nil, typedNil
		}, nil, []string{"handler failed"}},
		{"PanicString", func(context.Context, *iq.IQ) (*iq.Element, error) {
			panic("boom: " + secret)
		}, nil, []string{"panicked", secret}},
		{"PanicError", func(context.Context, *iq.IQ) (*iq.Element, error) {
			panic(fmt.Errorf("wrapped: %w", errors.New(secret)))
		}, nil, []string{"panicked", secret}},
		{"PanicStanzaError", func(context.Context, *iq.IQ) (*iq.Element, error) {
			panic(iq.NewError(iq.Modify, iq.NotAcceptable, secret))
		}, nil, []string{"panicked", secret}},
		{"PanicNil", func(context.Context, *iq.IQ) (*iq.Element, error) {
			panic(nil)
		}, nil, []string{"panicked"}},
		{"NilPointerDereference", func(_ context.Context, req *iq.IQ) (*iq.Element, error) {
			var e *iq.Element
			return iq.NewElement(e.Name.Space, secret), nil
		}, nil, []string{"panicked", "nil pointer"}},
	}
	for _, mode := range calleeModes {
		t.Run(mode.name, func(t *testing.T) {
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					rec := iqtest.NewRecorder()
					logger, logs := newCalleeLogger()
					c := iq.NewCallee(rec, iq.WithLogger(logger))
					defer c.Close()
					c.Get(calleeNS, "a", tc.handler)

					req := calleeParse(t, `<iq type='get' id='h1' from='x@y/z' to='svc'><a xmlns='u:a'/></iq>`)
					reply := mode.reply(t, c, rec, req)
					require.NotNil(t, reply)
					assert.Equal(t, "h1", reply.ID)
					assert.Equal(t, "x@y/z", reply.To)
					assert.Equal(t, "svc", reply.From)

					if tc.want != nil {
						calleeAssertErrorReply(t, reply, tc.want.Type, tc.want.Condition)
						assert.Equal(t, tc.want, reply.Error, "the handler's error is sent as it is")
						back, raw := calleeRoundTrip(t, reply)
						require.NotNil(t, back.Error)
						assert.Equal(t, tc.want.Text, back.Error.Text, "text kept on the wire")
						assert.Equal(t, tc.want.Lang, back.Error.Lang, "xml:lang kept on the wire")
						assert.Equal(t, tc.want.Target, back.Error.Target, "target kept on the wire")
						assert.True(t, tc.want.App.Equal(back.Error.App), "app element on the wire %s, want %s", back.Error.App, tc.want.App)
						assert.NotContains(t, raw, secret, "only the stanza error goes on the wire")
						assert.NotContains(t, raw, "ignored", "no payload on an error reply")
						return
					}

					calleeAssertErrorReply(t, reply, iq.Cancel, iq.InternalServerError)
					assert.Empty(t, reply.Error.Text, "no internal text leaked")
					assert.Nil(t, reply.Error.App)
					_, raw := calleeRoundTrip(t, reply)
					assert.NotContains(t, raw, secret, "no internal text leaked on the wire")
					assert.NotContains(t, reply.String(), secret)
					assert.NotContains(t, raw, "<text", "no text element at all")
					log := logs.String()
					for _, s := range tc.logged {
						assert.Contains(t, log, s, "the failure is logged")
					}
					assert.Contains(t, log, "level=ERROR")
				})
			}
		})
	}
}

func TestCallee_ResponsesAreNeverAnswered(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	cases := []struct {
		name string
		raw  string
	}{
		{"EmptyResult", `<iq type='result' id='r1' from='x@y/z'/>`},
		{"ResultWithHandledPayload", `<iq type='result' id='r1' from='x@y/z'><a xmlns='u:a'/></iq>`},
		{"ResultWithTwoChildren", `<iq type='result' id='r1' from='x@y/z'><a xmlns='u:a'/><a xmlns='u:a'/></iq>`},
		{"ResultWithoutID", `<iq type='result' from='x@y/z'><a xmlns='u:a'/></iq>`},
		{"Error", `<iq type='error' id='e1' from='x@y/z'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`},
		{"ErrorWithHandledPayload", `<iq type='error' id='e1' from='x@y/z'><a xmlns='u:a'/><error type='cancel'><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`},
		{"ErrorWithoutErrorElement", `<iq type='error' id='e1' from='x@y/z'><a xmlns='u:a'/></iq>`},
		{"ErrorWithoutID", `<iq type='error'/>`},
	}
	for _, closed := range []bool{false, true} {
		t.Run("Closed="+strconv.FormatBool(closed), func(t *testing.T) {
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					rec := iqtest.NewRecorder()
					c := iq.NewCallee(rec, iq.WithUnknownNamespaceCondition(iq.ServiceUnavailable), iq.WithMaxInFlight(1))
					var calls atomic.Int32
					h := func(context.Context, *iq.IQ) (*iq.Element, error) {
						calls.Add(1)
						return nil, errors.New("must not run")
					}
					for _, ty := range []iq.Type{iq.TypeGet, iq.TypeSet} {
						c.Handle(ty, calleeNS, "a", iq.HandlerFunc(h))
					}
					if closed {
						require.NoError(t, c.Close())
					}
					defer c.Close()

					req := calleeParse(t, tc.raw)
					require.True(t, req.IsResponse())
					assert.Nil(t, c.Reply(context.Background(), req), "Reply returns nil for a response")
					for range 3 {
						c.Receive(context.Background(), req)
					}
					assert.Zero(t, c.InFlight())
					calleeNoReplyFor(t, rec, 20*time.Millisecond)
					assert.Zero(t, rec.Len(), "Receive sends nothing for a response")
					assert.Zero(t, calls.Load(), "a response never reaches a handler")
				})
			}
		})
	}
	t.Run("NilRequest", func(t *testing.T) {
		rec := iqtest.NewRecorder()
		c := iq.NewCallee(rec)
		assert.Nil(t, c.Reply(context.Background(), nil))
		assert.NotPanics(t, func() { c.Receive(context.Background(), nil) })
		assert.Zero(t, rec.Len())
	})
}

func TestCallee_ExactlyOneReplyEvenAfterContextCancelled(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	late := iq.NewError(iq.Wait, iq.RemoteServerTimeout, "gave up")
	cases := []struct {
		name    string
		cancel  func(t *testing.T, cancel context.CancelFunc, c *iq.Callee) // how the handler's context ends
		ret     func(ctx context.Context) (*iq.Element, error)
		sendErr error // what the Sender returns
		check   func(t *testing.T, reply *iq.IQ)
	}{
		{
			name:   "ReceiveContextCancelled/StanzaError",
			cancel: func(_ *testing.T, cancel context.CancelFunc, _ *iq.Callee) { cancel() },
			ret:    func(context.Context) (*iq.Element, error) { return nil, late },
			check: func(t *testing.T, reply *iq.IQ) {
				calleeAssertErrorReply(t, reply, iq.Wait, iq.RemoteServerTimeout)
				assert.Same(t, late, reply.Error)
			},
		},
		{
			name:   "ReceiveContextCancelled/ContextError",
			cancel: func(_ *testing.T, cancel context.CancelFunc, _ *iq.Callee) { cancel() },
			ret:    func(ctx context.Context) (*iq.Element, error) { return nil, ctx.Err() },
			check: func(t *testing.T, reply *iq.IQ) {
				calleeAssertErrorReply(t, reply, iq.Cancel, iq.InternalServerError)
			},
		},
		{
			name:   "ReceiveContextCancelled/Result",
			cancel: func(_ *testing.T, cancel context.CancelFunc, _ *iq.Callee) { cancel() },
			ret:    func(context.Context) (*iq.Element, error) { return nil, nil },
			check:  func(t *testing.T, reply *iq.IQ) { calleeAssertResult(t, reply, nil) },
		},
		{
			name:   "ReceiveContextCancelled/Panic",
			cancel: func(_ *testing.T, cancel context.CancelFunc, _ *iq.Callee) { cancel() },
			ret:    func(context.Context) (*iq.Element, error) { panic("late panic") },
			check: func(t *testing.T, reply *iq.IQ) {
				calleeAssertErrorReply(t, reply, iq.Cancel, iq.InternalServerError)
			},
		},
		{
			name:   "CalleeClosed/StanzaError",
			cancel: func(t *testing.T, _ context.CancelFunc, c *iq.Callee) { require.NoError(t, c.Close()) },
			ret:    func(context.Context) (*iq.Element, error) { return nil, late },
			check: func(t *testing.T, reply *iq.IQ) {
				calleeAssertErrorReply(t, reply, iq.Wait, iq.RemoteServerTimeout)
			},
		},
		{
			name:    "SenderRefuses",
			cancel:  func(_ *testing.T, cancel context.CancelFunc, _ *iq.Callee) { cancel() },
			ret:     func(context.Context) (*iq.Element, error) { return nil, late },
			sendErr: errors.New("stream gone"),
			check: func(t *testing.T, reply *iq.IQ) {
				calleeAssertErrorReply(t, reply, iq.Wait, iq.RemoteServerTimeout)
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := iqtest.NewRecorder()
			var ctxMu sync.Mutex
			var ctxErrs []error // ctx.Err() of each send, at the time of the send
			rec.OnSend(func(ctx context.Context, _ *iq.IQ) error {
				ctxMu.Lock()
				ctxErrs = append(ctxErrs, ctx.Err())
				ctxMu.Unlock()
				return tc.sendErr
			})
			logger, logs := newCalleeLogger()
			c := iq.NewCallee(rec, iq.WithLogger(logger))
			defer c.Close()

			started, sawDone, release := make(chan struct{}), make(chan struct{}), make(chan struct{})
			var calls atomic.Int32
			c.Get(calleeNS, "a", func(ctx context.Context, _ *iq.IQ) (*iq.Element, error) {
				calls.Add(1)
				close(started)
				select {
				case <-ctx.Done():
					close(sawDone)
				case <-time.After(calleeWaitFor):
				}
				<-release
				return tc.ret(ctx)
			})

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			c.Receive(ctx, calleeParse(t, `<iq type='get' id='c1' from='x@y/z'><a xmlns='u:a'/></iq>`))
			calleeWaitClosed(t, started, "handler start")
			assert.Equal(t, 1, c.InFlight())

			tc.cancel(t, cancel, c)
			calleeWaitClosed(t, sawDone, "handler to see ctx.Done")
			calleeNoReplyFor(t, rec, 20*time.Millisecond) // no reply before the handler returns

			close(release)
			reply := nextSent(t, rec)
			assert.Equal(t, "c1", reply.ID)
			assert.Equal(t, "x@y/z", reply.To)
			tc.check(t, reply)

			require.Eventually(t, func() bool { return c.InFlight() == 0 }, calleeWaitFor, time.Millisecond)
			calleeNoReplyFor(t, rec, 50*time.Millisecond)
			assert.Equal(t, 1, rec.Len(), "exactly one reply, never two")
			assert.Equal(t, int32(1), calls.Load())
			ctxMu.Lock()
			for _, err := range ctxErrs {
				assert.NoError(t, err, "the reply is sent with a live context, so the Sender takes it")
			}
			ctxMu.Unlock()
			if tc.sendErr != nil {
				assert.Contains(t, logs.String(), "reply not sent")
				assert.Contains(t, logs.String(), "stream gone")
			}
		})
	}
}

func TestCallee_ReplyAddressing(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	addrs := []struct {
		name     string
		attrs    string
		wantTo   string
		wantFrom string
	}{
		{"FromAndTo", `from='juliet@example.com/balcony' to='romeo@example.net'`, "juliet@example.com/balcony", "romeo@example.net"},
		{"FromOnly", `from='juliet@example.com/balcony'`, "juliet@example.com/balcony", ""},
		{"ToOnly", `to='example.net'`, "", "example.net"},
		{"Neither", ``, "", ""},
		{"EscapedAddresses", `from='a&amp;b@x/&lt;r&gt;' to='c&quot;d@y'`, "a&b@x/<r>", `c"d@y`},
	}
	outcomes := []struct {
		name    string
		payload string
		check   func(t *testing.T, reply *iq.IQ)
	}{
		{"Result", `<a xmlns='u:a'/>`, func(t *testing.T, reply *iq.IQ) { assert.Equal(t, iq.TypeResult, reply.Type) }},
		{"HandlerError", `<fail xmlns='u:a'/>`, func(t *testing.T, reply *iq.IQ) {
			calleeAssertErrorReply(t, reply, iq.Cancel, iq.InternalServerError)
		}},
		{"Unroutable", `<q xmlns='u:nobody'/>`, func(t *testing.T, reply *iq.IQ) {
			calleeAssertErrorReply(t, reply, iq.Cancel, iq.FeatureNotImplemented)
		}},
		{"BadRequest", `<a xmlns='u:a'/><a xmlns='u:a'/>`, func(t *testing.T, reply *iq.IQ) {
			calleeAssertErrorReply(t, reply, iq.Modify, iq.BadRequest)
		}},
	}
	for _, mode := range calleeModes {
		t.Run(mode.name, func(t *testing.T) {
			for _, out := range outcomes {
				for _, a := range addrs {
					t.Run(out.name+"/"+a.name, func(t *testing.T) {
						rec := iqtest.NewRecorder()
						c := iq.NewCallee(rec)
						defer c.Close()
						c.Get(calleeNS, "a", func(context.Context, *iq.IQ) (*iq.Element, error) {
							return iq.NewElement(calleeNS, "a"), nil
						})
						c.Get(calleeNS, "fail", func(context.Context, *iq.IQ) (*iq.Element, error) {
							return nil, errors.New("x")
						})
						raw := fmt.Sprintf(`<iq type='get' id='id-&amp;-1' %s>%s</iq>`, a.attrs, out.payload)
						reply := mode.reply(t, c, rec, calleeParse(t, raw))
						require.NotNil(t, reply)
						out.check(t, reply)
						assert.Equal(t, "id-&-1", reply.ID, "id kept")
						assert.Equal(t, a.wantTo, reply.To, "to is the request's from")
						assert.Equal(t, a.wantFrom, reply.From, "from is the request's to")

						back, wire := calleeRoundTrip(t, reply)
						assert.Equal(t, "id-&-1", back.ID)
						assert.Equal(t, a.wantTo, back.To)
						assert.Equal(t, a.wantFrom, back.From)
						if a.wantTo == "" {
							assert.NotContains(t, wire, " to=", "to omitted when the request had no from")
							assert.NotContains(t, reply.String(), " to=")
						}
						if a.wantFrom == "" {
							assert.NotContains(t, wire, " from=")
							assert.NotContains(t, reply.String(), " from=")
						}
					})
				}
			}
		})
	}
}

func TestCallee_OverMaxInFlightIsResourceConstraintAtOnce(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	for _, n := range []int{1, 3, 8} {
		t.Run("Max="+strconv.Itoa(n), func(t *testing.T) {
			rec := iqtest.NewRecorder()
			c := iq.NewCallee(rec, iq.WithMaxInFlight(n))
			defer c.Close()

			var started atomic.Int32
			startedCh := make(chan string, n)
			release := make(chan struct{})
			c.Get(calleeNS, "a", func(_ context.Context, req *iq.IQ) (*iq.Element, error) {
				started.Add(1)
				startedCh <- req.ID
				<-release
				return iq.NewElement(calleeNS, "a", "id", req.ID), nil
			})
			req := func(id string) *iq.IQ {
				return calleeParse(t, `<iq type='get' id='`+id+`' from='x@y/z'><a xmlns='u:a'/></iq>`)
			}

			for i := range n {
				c.Receive(context.Background(), req("ok"+strconv.Itoa(i)))
			}
			for range n {
				calleeWaitClosed(t, startedCh, "handlers to start")
			}
			assert.Equal(t, n, c.InFlight())
			assert.Zero(t, rec.Len())

			// Past the cap: answered at once, from the calling goroutine.
			const extra = 20
			for i := range extra {
				id := "over" + strconv.Itoa(i)
				done := make(chan struct{})
				go func() {
					defer close(done)
					c.Receive(context.Background(), req(id))
				}()
				calleeWaitClosed(t, done, "Receive past the cap to return")
				got := rec.Sent()
				require.Len(t, got, i+1, "the over-cap reply is sent before Receive returns")
				last := got[i]
				assert.Equal(t, id, last.ID)
				assert.Equal(t, "x@y/z", last.To)
				calleeAssertErrorReply(t, last, iq.Wait, iq.ResourceConstraint)
				assert.Equal(t, n, c.InFlight(), "no queue: in-flight count unchanged")
			}
			assert.Equal(t, int32(n), started.Load(), "over-cap requests never reach a handler")

			close(release)
			results := map[string]bool{}
			for range n {
				r := nextSent(t, rec)
				// skip the over-cap errors already buffered on the channel
				for r.Type == iq.TypeError {
					r = nextSent(t, rec)
				}
				calleeAssertResult(t, r, r.Payload)
				assert.Equal(t, r.ID, r.Payload.AttrValue("id"))
				results[r.ID] = true
			}
			for i := range n {
				assert.True(t, results["ok"+strconv.Itoa(i)], "reply to ok%d", i)
			}
			require.Eventually(t, func() bool { return c.InFlight() == 0 }, calleeWaitFor, time.Millisecond)
			calleeNoReplyFor(t, rec, 20*time.Millisecond)
			assert.Equal(t, n+extra, rec.Len())

			// The slots are free again.
			c.Receive(context.Background(), req("again"))
			r := nextSent(t, rec)
			assert.Equal(t, "again", r.ID)
			assert.Equal(t, iq.TypeResult, r.Type)
			require.Eventually(t, func() bool { return c.InFlight() == 0 }, calleeWaitFor, time.Millisecond)
		})
	}
}

func TestCallee_DuplicateRegistrationPanics(t *testing.T) {
	h := func(context.Context, *iq.IQ) (*iq.Element, error) { return nil, nil }
	cases := []struct {
		name       string
		first      func(c *iq.Callee)
		second     func(c *iq.Callee)
		wantPanics bool
	}{
		{"GetTwice", func(c *iq.Callee) { c.Get(calleeNS, "a", h) }, func(c *iq.Callee) { c.Get(calleeNS, "a", h) }, true},
		{"SetTwice", func(c *iq.Callee) { c.Set(calleeNS, "a", h) }, func(c *iq.Callee) { c.Set(calleeNS, "a", h) }, true},
		{"HandleThenGet", func(c *iq.Callee) { c.Handle(iq.TypeGet, calleeNS, "a", iq.HandlerFunc(h)) }, func(c *iq.Callee) { c.Get(calleeNS, "a", h) }, true},
		{"SetThenHandle", func(c *iq.Callee) { c.Set(calleeNS, "a", h) }, func(c *iq.Callee) { c.Handle(iq.TypeSet, calleeNS, "a", iq.HandlerFunc(h)) }, true},
		{"GetAndSetSameElement", func(c *iq.Callee) { c.Get(calleeNS, "a", h) }, func(c *iq.Callee) { c.Set(calleeNS, "a", h) }, false},
		{"SameNamespaceOtherElement", func(c *iq.Callee) { c.Get(calleeNS, "a", h) }, func(c *iq.Callee) { c.Get(calleeNS, "b", h) }, false},
		{"SameElementOtherNamespace", func(c *iq.Callee) { c.Get(calleeNS, "a", h) }, func(c *iq.Callee) { c.Get(calleeOther, "a", h) }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := iq.NewCallee(iqtest.NewRecorder())
			tc.first(c)
			if tc.wantPanics {
				assert.Panics(t, func() { tc.second(c) })
			} else {
				assert.NotPanics(t, func() { tc.second(c) })
			}
			// The first registration still serves.
			reply := c.Reply(context.Background(), calleeParse(t, `<iq type='get' id='d1'><a xmlns='u:a'/></iq>`))
			require.NotNil(t, reply)
			if tc.name != "SetTwice" && tc.name != "SetThenHandle" {
				assert.Equal(t, iq.TypeResult, reply.Type)
			}
		})
	}
}

func TestCallee_HandleInvalidRoutePanics(t *testing.T) {
	h := iq.HandlerFunc(func(context.Context, *iq.IQ) (*iq.Element, error) { return nil, nil })
	var nilFunc iq.HandlerFunc
	cases := []struct {
		name     string
		register func(c *iq.Callee)
	}{
		{"TypeResult", func(c *iq.Callee) { c.Handle(iq.TypeResult, calleeNS, "a", h) }},
		{"TypeError", func(c *iq.Callee) { c.Handle(iq.TypeError, calleeNS, "a", h) }},
		{"EmptyType", func(c *iq.Callee) { c.Handle("", calleeNS, "a", h) }},
		{"UnknownType", func(c *iq.Callee) { c.Handle("query", calleeNS, "a", h) }},
		{"EmptyNamespace", func(c *iq.Callee) { c.Get("", "a", h) }},
		{"EmptyLocal", func(c *iq.Callee) { c.Set(calleeNS, "", h) }},
		{"NilHandler", func(c *iq.Callee) { c.Handle(iq.TypeGet, calleeNS, "a", nil) }},
		{"NilHandlerFunc", func(c *iq.Callee) { c.Get(calleeNS, "a", nil) }},
		{"NilHandlerFuncAsHandler", func(c *iq.Callee) { c.Handle(iq.TypeSet, calleeNS, "a", nilFunc) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := iq.NewCallee(iqtest.NewRecorder())
			assert.Panics(t, func() { tc.register(c) })
			assert.Empty(t, c.Namespaces(), "a refused registration leaves nothing behind")
		})
	}
}

func TestCallee_ReplyIsSynchronousAndUncapped(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	rec := iqtest.NewRecorder()
	c := iq.NewCallee(rec, iq.WithMaxInFlight(1))
	defer c.Close()

	started, release := make(chan struct{}), make(chan struct{})
	c.Get(calleeNS, "block", func(context.Context, *iq.IQ) (*iq.Element, error) {
		close(started)
		<-release
		return nil, nil
	})
	ran := false // written by the handler, read after Reply: -race proves it ran on this goroutine
	type ctxKey struct{}
	c.Get(calleeNS, "a", func(ctx context.Context, _ *iq.IQ) (*iq.Element, error) {
		ran = true
		assert.Equal(t, "v", ctx.Value(ctxKey{}), "Reply passes its context to the handler")
		assert.Equal(t, 1, c.InFlight(), "only the blocked Receive handler is in flight")
		return iq.NewElement(calleeNS, "a"), nil
	})

	c.Receive(context.Background(), calleeParse(t, `<iq type='get' id='b1'><block xmlns='u:a'/></iq>`))
	calleeWaitClosed(t, started, "blocking handler")
	require.Equal(t, 1, c.InFlight(), "the cap is reached")

	ctx := context.WithValue(context.Background(), ctxKey{}, "v")
	for i := range 5 {
		reply := c.Reply(ctx, calleeParse(t, `<iq type='get' id='r`+strconv.Itoa(i)+`'><a xmlns='u:a'/></iq>`))
		require.True(t, ran, "the handler ran before Reply returned")
		ran = false
		require.NotNil(t, reply)
		assert.Equal(t, iq.TypeResult, reply.Type, "Reply is not refused at the cap")
		assert.Equal(t, "r"+strconv.Itoa(i), reply.ID)
		assert.Equal(t, 1, c.InFlight(), "Reply does not count against the cap")
	}
	assert.Zero(t, rec.Len(), "Reply sends nothing")

	// Receive is still capped.
	c.Receive(context.Background(), calleeParse(t, `<iq type='get' id='x1'><a xmlns='u:a'/></iq>`))
	calleeAssertErrorReply(t, nextSent(t, rec), iq.Wait, iq.ResourceConstraint)

	close(release)
	r := nextSent(t, rec)
	assert.Equal(t, "b1", r.ID)
	require.Eventually(t, func() bool { return c.InFlight() == 0 }, calleeWaitFor, time.Millisecond)
}

func TestCallee_CloseCancelsRunningHandlers(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	const n = 4
	rec := iqtest.NewRecorder()
	c := iq.NewCallee(rec)
	started := make(chan struct{}, n)
	done := make(chan error, n)
	c.Get(calleeNS, "a", func(ctx context.Context, _ *iq.IQ) (*iq.Element, error) {
		started <- struct{}{}
		select {
		case <-ctx.Done():
			done <- ctx.Err()
			return nil, iq.NewError(iq.Cancel, iq.ServiceUnavailable, "shutting down")
		case <-time.After(calleeWaitFor):
			done <- nil
			return nil, nil
		}
	})
	for i := range n {
		c.Receive(context.Background(), calleeParse(t, `<iq type='get' id='k`+strconv.Itoa(i)+`'><a xmlns='u:a'/></iq>`))
	}
	for range n {
		calleeWaitClosed(t, started, "handlers to start")
	}
	require.NoError(t, c.Close())
	for range n {
		select {
		case err := <-done:
			assert.ErrorIs(t, err, context.Canceled, "the handler's ctx.Done fired on Close")
		case <-time.After(calleeWaitFor):
			require.FailNow(t, "handler context not cancelled by Close")
		}
	}
	ids := map[string]bool{}
	for range n {
		r := nextSent(t, rec)
		calleeAssertErrorReply(t, r, iq.Cancel, iq.ServiceUnavailable)
		assert.Equal(t, "shutting down", r.Error.Text, "the handler's own reply is still sent")
		ids[r.ID] = true
	}
	assert.Len(t, ids, n)
	require.Eventually(t, func() bool { return c.InFlight() == 0 }, calleeWaitFor, time.Millisecond)
	assert.NoError(t, c.Close(), "Close is idempotent")
}

func TestCallee_ReceiveAfterCloseIsServiceUnavailable(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	cases := []struct {
		name string
		raw  string
		typ  iq.ErrorType
		cond iq.Condition
	}{
		{"RoutableGet", `<iq type='get' id='z1' from='x@y/z' to='svc'><a xmlns='u:a'/></iq>`, iq.Cancel, iq.ServiceUnavailable},
		{"RoutableSet", `<iq type='set' id='z1' from='x@y/z' to='svc'><a xmlns='u:a'/></iq>`, iq.Cancel, iq.ServiceUnavailable},
		// Requests that get an error anyway keep it.
		{"Malformed", `<iq type='get' id='z1' from='x@y/z' to='svc'/>`, iq.Modify, iq.BadRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := iqtest.NewRecorder()
			c := iq.NewCallee(rec)
			var calls atomic.Int32
			h := func(context.Context, *iq.IQ) (*iq.Element, error) {
				calls.Add(1)
				return nil, nil
			}
			c.Get(calleeNS, "a", h)
			c.Set(calleeNS, "a", h)
			require.NoError(t, c.Close())

			for i := range 3 {
				c.Receive(context.Background(), calleeParse(t, tc.raw))
				require.Equal(t, i+1, rec.Len(), "answered from the calling goroutine")
				r := rec.Sent()[i]
				calleeAssertErrorReply(t, r, tc.typ, tc.cond)
				assert.Equal(t, "z1", r.ID)
				assert.Equal(t, "x@y/z", r.To)
				assert.Equal(t, "svc", r.From)
			}
			assert.Zero(t, calls.Load(), "no handler runs after Close")
			assert.Zero(t, c.InFlight())
		})
	}
}

func TestCallee_NamespacesListsRegistered(t *testing.T) {
	h := func(context.Context, *iq.IQ) (*iq.Element, error) { return nil, nil }
	cases := []struct {
		name     string
		register func(c *iq.Callee)
		want     []string
	}{
		{"None", func(*iq.Callee) {}, []string{}},
		{"One", func(c *iq.Callee) { c.Get(calleeNS, "a", h) }, []string{calleeNS}},
		{"SeveralHandlersOneNamespace", func(c *iq.Callee) {
			c.Get(calleeNS, "a", h)
			c.Set(calleeNS, "a", h)
			c.Get(calleeNS, "b", h)
		}, []string{calleeNS}},
		{"SeveralNamespaces", func(c *iq.Callee) {
			c.Get(calleeNS, "a", h)
			c.Set(calleeOther, "a", h)
			c.Handle(iq.TypeGet, "jabber:iq:version", "query", iq.HandlerFunc(h))
		}, []string{calleeNS, calleeOther, "jabber:iq:version"}},
		{"FailedDuplicateCountsOnce", func(c *iq.Callee) {
			c.Get(calleeNS, "a", h)
			func() {
				defer func() { _ = recover() }()
				c.Get(calleeNS, "a", h)
			}()
		}, []string{calleeNS}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := iq.NewCallee(iqtest.NewRecorder())
			tc.register(c)
			got := c.Namespaces()
			assert.NotNil(t, got)
			assert.ElementsMatch(t, tc.want, got)
		})
	}
}

func TestCallee_HandlerContextCarriesReceiveValues(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	type ctxKey struct{}
	rec := iqtest.NewRecorder()
	c := iq.NewCallee(rec)
	defer c.Close()
	got := make(chan any, 1)
	c.Get(calleeNS, "a", func(ctx context.Context, _ *iq.IQ) (*iq.Element, error) {
		got <- ctx.Value(ctxKey{})
		return nil, nil
	})
	ctx := context.WithValue(context.Background(), ctxKey{}, "trace-7")
	c.Receive(ctx, calleeParse(t, `<iq type='get' id='v1'><a xmlns='u:a'/></iq>`))
	select {
	case v := <-got:
		assert.Equal(t, "trace-7", v)
	case <-time.After(calleeWaitFor):
		require.FailNow(t, "handler not run")
	}
	calleeAssertResult(t, nextSent(t, rec), nil)
	require.Eventually(t, func() bool { return c.InFlight() == 0 }, calleeWaitFor, time.Millisecond)
}

func TestCallee_ConcurrentReceivesAllAnswered(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	const (
		goroutines = 64
		perG       = 200
		total      = goroutines * perG
	)
	rec := iqtest.NewRecorder()
	c := iq.NewCallee(rec, iq.WithMaxInFlight(total))
	defer c.Close()

	var handled atomic.Int64
	c.Get(calleeNS, "echo", func(_ context.Context, req *iq.IQ) (*iq.Element, error) {
		handled.Add(1)
		return iq.NewElement(calleeNS, "echo").AppendText(req.ID), nil
	})
	c.Set(calleeNS, "fail", func(context.Context, *iq.IQ) (*iq.Element, error) {
		handled.Add(1)
		return nil, iq.NewError(iq.Modify, iq.NotAcceptable, "")
	})

	// kind of request i: 0 echo, 1 fail, 2 unroutable, 3 malformed
	kind := func(i int) int { return i % 4 }
	raw := func(id string, k int) string {
		switch k {
		case 0:
			return `<iq type='get' id='` + id + `' from='x@y/z'><echo xmlns='u:a'/></iq>`
		case 1:
			return `<iq type='set' id='` + id + `' from='x@y/z'><fail xmlns='u:a'/></iq>`
		case 2:
			return `<iq type='get' id='` + id + `' from='x@y/z'><q xmlns='u:nobody'/></iq>`
		default:
			return `<iq type='get' id='` + id + `' from='x@y/z'/>`
		}
	}

	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range perG {
				id := strconv.Itoa(g) + "-" + strconv.Itoa(i)
				var q iq.IQ
				if err := xml.Unmarshal([]byte(raw(id, kind(i))), &q); err != nil {
					t.Error(err)
					return
				}
				c.Receive(context.Background(), &q)
				if i%50 == 0 {
					_ = c.Namespaces()
					_ = c.InFlight()
				}
			}
		})
	}
	wg.Wait()
	require.Eventually(t, func() bool { return rec.Len() == total && c.InFlight() == 0 },
		10*time.Second, time.Millisecond, "all %d replies", total)

	seen := make(map[string]int, total)
	for _, r := range rec.Sent() {
		seen[r.ID]++
		var i int
		_, err := fmt.Sscanf(r.ID[strings.IndexByte(r.ID, '-')+1:], "%d", &i)
		require.NoError(t, err)
		switch kind(i) {
		case 0:
			if assert.Equal(t, iq.TypeResult, r.Type, r.ID) {
				assert.Equal(t, r.ID, r.Payload.Text())
			}
		case 1:
			assert.Equal(t, iq.NotAcceptable, r.Error.Condition, r.ID)
		case 2:
			assert.Equal(t, iq.FeatureNotImplemented, r.Error.Condition, r.ID)
		default:
			assert.Equal(t, iq.BadRequest, r.Error.Condition, r.ID)
		}
	}
	assert.Len(t, seen, total, "every request answered")
	for id, n := range seen {
		if n != 1 {
			assert.Failf(t, "duplicate reply", "%s answered %d times", id, n)
		}
	}
	assert.Equal(t, int64(total/2), handled.Load(), "only routable requests reach handlers")
	time.Sleep(20 * time.Millisecond)
	assert.Equal(t, total, rec.Len(), "no late extra replies")
}

func TestCallee_HandlerReportsWhatReplyWouldSend(t *testing.T) {
	cases := []struct {
		name string
		raw  string
	}{
		{"Routable", `<iq type='get' id='w1'><a xmlns='u:a'/></iq>`},
		{"UnknownNamespace", `<iq type='get' id='w1'><q xmlns='u:nobody'/></iq>`},
		{"UnknownElement", `<iq type='get' id='w1'><zz xmlns='u:a'/></iq>`},
		{"NoChild", `<iq type='get' id='w1'/>`},
		{"TwoChildrenFirstRoutable", `<iq type='get' id='w1'><a xmlns='u:a'/><b xmlns='u:a'/></iq>`},
		{"RoutableWithoutID", `<iq type='get'><a xmlns='u:a'/></iq>`},
		{"UnknownType", `<iq type='query' id='w1'><a xmlns='u:a'/></iq>`},
		{"MissingType", `<iq id='w1'><a xmlns='u:a'/></iq>`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := iq.NewCallee(iqtest.NewRecorder(), iq.WithUnknownNamespaceCondition(iq.ServiceUnavailable))
			var calls atomic.Int32
			c.Get(calleeNS, "a", func(context.Context, *iq.IQ) (*iq.Element, error) {
				calls.Add(1)
				return nil, nil
			})
			req := calleeParse(t, tc.raw)
			h, serr := c.Handler(req)
			reply := c.Reply(context.Background(), req)
			require.NotNil(t, reply)
			if calls.Load() == 1 {
				assert.NotNil(t, h, "Reply ran a handler, so Handler should return it")
				assert.Nil(t, serr)
				return
			}
			assert.Nil(t, h, "Reply ran no handler, yet Handler returned one for %s", tc.raw)
			if assert.NotNil(t, serr, "Handler should return the error Reply sends") {
				assert.Equal(t, reply.Error, serr, "Handler's error should be the one Reply sends")
			}
		})
	}
}

func TestCallee_HandlerGoexitStillGetsOneReply(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	rec := iqtest.NewRecorder()
	logger, _ := newCalleeLogger()
	c := iq.NewCallee(rec, iq.WithLogger(logger))
	defer c.Close()
	// runtime.Goexit is what t.FailNow, and so require.*, call inside a
	// handler.
	c.Get(calleeNS, "a", func(context.Context, *iq.IQ) (*iq.Element, error) {
		runtime.Goexit()
		return nil, nil
	})
	c.Receive(context.Background(), calleeParse(t, `<iq type='get' id='gx' from='x@y/z'><a xmlns='u:a'/></iq>`))
	require.Eventually(t, func() bool { return c.InFlight() == 0 }, calleeWaitFor, time.Millisecond)
	if r, err := rec.Next(200 * time.Millisecond); err == nil {
		assert.Equal(t, "gx", r.ID)
		calleeAssertErrorReply(t, r, iq.Cancel, iq.InternalServerError)
	} else {
		assert.Fail(t, "a handler that calls runtime.Goexit gets no reply at all: the requester waits until it times out")
	}
	calleeNoReplyFor(t, rec, 20*time.Millisecond)
}
