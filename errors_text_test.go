package iq_test

import (
	"context"
	"encoding/xml"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/iqtest"
	"github.com/xmpp-iq/iq/stream"
)

// TestBugErrorTextRepeatsPrefix: error messages repeated themselves,
// "iq: request X: iq: request timed out" and "iq: request X: iq: closed:
// stream: iq: closed". Each main failure path of a request now reads with
// one prefix per layer and says each thing once; errors.Is still finds
// every sentinel and cause.
func TestBugErrorTextRepeatsPrefix(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	get := func(id string) *iq.IQ {
		return &iq.IQ{Type: iq.TypeGet, ID: id, To: "peer@example.com/r", Payload: iq.NewElement("urn:example:text", "q")}
	}
	conflict := &stream.StreamError{Condition: stream.Conflict, Text: "replaced by a new connection"}

	for _, tc := range []struct {
		name string
		run  func(t *testing.T) error
		text string
		is   []error
	}{
		{
			name: "ContextDeadline",
			run: func(t *testing.T) error {
				c := iq.NewCaller(iqtest.NewRecorder())
				defer c.Close()
				ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
				defer cancel()
				_, err := c.Request(ctx, get("t1"))
				return err
			},
			text: "iq: request t1 timed out",
			is:   []error{iq.ErrTimeout, context.DeadlineExceeded},
		},
		{
			name: "CallerTimeout",
			run: func(t *testing.T) error {
				c := iq.NewCaller(iqtest.NewRecorder(), iq.WithTimeout(time.Millisecond))
				defer c.Close()
				_, err := c.Request(context.Background(), get("t2"))
				return err
			},
			text: "iq: request t2 timed out",
			is:   []error{iq.ErrTimeout, context.DeadlineExceeded},
		},
		{
			name: "DeadlineDuringSend",
			run: func(t *testing.T) error {
				rec := iqtest.NewRecorder()
				rec.OnSend(func(ctx context.Context, _ *iq.IQ) error {
					<-ctx.Done()
					return ctx.Err()
				})
				c := iq.NewCaller(rec)
				defer c.Close()
				ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
				defer cancel()
				_, err := c.Request(ctx, get("t3"))
				return err
			},
			text: "iq: request t3 timed out",
			is:   []error{iq.ErrTimeout, context.DeadlineExceeded},
		},
		{
			name: "Cancelled",
			run: func(t *testing.T) error {
				c := iq.NewCaller(iqtest.NewRecorder())
				defer c.Close()
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				_, err := c.Request(ctx, get("k1"))
				return err
			},
			text: "iq: request k1: context canceled",
			is:   []error{context.Canceled},
		},
		{
			name: "Closed",
			run: func(t *testing.T) error {
				c := iq.NewCaller(iqtest.NewRecorder())
				call := c.Go(context.Background(), get("c1"), nil)
				c.Close()
				return (<-call.Done).Err
			},
			text: "iq: request c1: closed",
			is:   []error{iq.ErrClosed},
		},
		{
			name: "RequestAfterClose",
			run: func(t *testing.T) error {
				c := iq.NewCaller(iqtest.NewRecorder())
				c.Close()
				_, err := c.Request(context.Background(), get("c2"))
				return err
			},
			text: "iq: request c2: closed",
			is:   []error{iq.ErrClosed},
		},
		{
			name: "ClosedByStreamClose",
			run: func(t *testing.T) error {
				c := iq.NewCaller(iqtest.NewRecorder())
				call := c.Go(context.Background(), get("c3"), nil)
				c.CloseWithError(stream.ErrClosed)
				return (<-call.Done).Err
			},
			text: "iq: request c3: stream: closed",
			is:   []error{iq.ErrClosed, stream.ErrClosed},
		},
		{
			name: "ClosedByStreamError",
			run: func(t *testing.T) error {
				ep := iq.NewEndpoint(iqtest.NewRecorder())
				call := ep.Caller.Go(context.Background(), get("c4"), nil)
				ep.CloseWithError(conflict)
				return (<-call.Done).Err
			},
			text: "iq: request c4: closed: stream: error conflict: replaced by a new connection",
			is:   []error{iq.ErrClosed, &stream.StreamError{Condition: stream.Conflict}},
		},
		{
			name: "ClosedByPeerEnd",
			run: func(t *testing.T) error {
				c := iq.NewCaller(iqtest.NewRecorder())
				call := c.Go(context.Background(), get("c5"), nil)
				c.CloseWithError(io.EOF)
				return (<-call.Done).Err
			},
			text: "iq: request c5: closed: EOF",
			is:   []error{iq.ErrClosed, io.EOF},
		},
		{
			name: "SendFailed",
			run: func(t *testing.T) error {
				rec := iqtest.NewRecorder()
				rec.FailWith(errors.New("link down"))
				c := iq.NewCaller(rec)
				defer c.Close()
				_, err := c.Request(context.Background(), get("s1"))
				return err
			},
			text: "iq: request s1 not sent: link down",
		},
		{
			name: "SendOnBrokenStream",
			run: func(t *testing.T) error {
				ours, theirs := net.Pipe()
				require.NoError(t, theirs.Close())
				conn := stream.New(ours)
				defer conn.Close()
				c := iq.NewCaller(conn)
				defer c.Close()
				_, err := c.Request(context.Background(), get("s2"))
				return err
			},
			text: "iq: request s2 not sent: stream: closed: transport: io: read/write on closed pipe",
			is:   []error{iq.ErrClosed, stream.ErrClosed, io.ErrClosedPipe},
		},
		{
			name: "SendOnClosedPair",
			run: func(t *testing.T) error {
				p := iqtest.NewPair("a@example.com/x", "b.example.com")
				p.Close()
				_, err := p.A.Caller.Request(context.Background(), get("s3"))
				return err
			},
			text: "iq: request s3: closed",
			is:   []error{iq.ErrClosed},
		},
		{
			name: "InvalidType",
			run: func(t *testing.T) error {
				_, err := iq.NewCaller(iqtest.NewRecorder()).Request(context.Background(), &iq.IQ{Type: iq.TypeResult, ID: "i1"})
				return err
			},
			text: `iq: invalid IQ: request of type "result": only get and set are requests`,
			is:   []error{iq.ErrInvalid},
		},
		{
			name: "InvalidChildren",
			run: func(t *testing.T) error {
				_, err := iq.NewCaller(iqtest.NewRecorder()).Request(context.Background(), &iq.IQ{Type: iq.TypeGet, ID: "i2"})
				return err
			},
			text: "iq: invalid IQ: get with 0 child elements, want exactly one",
			is:   []error{iq.ErrInvalid},
		},
		{
			name: "InvalidTo",
			run: func(t *testing.T) error {
				req := get("i3")
				req.To = "@example.com"
				_, err := iq.NewCaller(iqtest.NewRecorder()).Request(context.Background(), req)
				return err
			},
			text: `iq: invalid IQ: to "@example.com": malformed JID: localpart: empty ('@' with nothing before it)`,
			is:   []error{iq.ErrInvalid},
		},
		{
			name: "InvalidLocalJID",
			run: func(t *testing.T) error {
				return iq.NewCaller(iqtest.NewRecorder()).SetLocalJID("@example.com")
			},
			text: `iq: local JID "@example.com": malformed JID: localpart: empty ('@' with nothing before it)`,
		},
		{
			name: "StanzaError",
			run: func(t *testing.T) error {
				rec := iqtest.NewRecorder()
				c := iq.NewCaller(rec)
				defer c.Close()
				rec.OnSend(func(_ context.Context, out *iq.IQ) error {
					go c.Receive(out.ErrorReply(iq.NewError(iq.Cancel, iq.ItemNotFound, "no such node")))
					return nil
				})
				_, err := c.Request(context.Background(), &iq.IQ{Type: iq.TypeGet, ID: "e1", Payload: iq.NewElement("urn:example:text", "q")})
				return err
			},
			text: "iq: stanza error cancel/item-not-found: no such node",
			is:   []error{&iq.StanzaError{Condition: iq.ItemNotFound}},
		},
		{
			name: "HandlerTimedOut",
			run: func(t *testing.T) error {
				h := iq.Timeout(time.Millisecond)(iq.HandlerFunc(func(ctx context.Context, _ *iq.IQ) (*iq.Element, error) {
					<-ctx.Done()
					return nil, ctx.Err()
				}))
				_, err := h.HandleIQ(context.Background(), get("h1"))
				return err
			},
			text: "iq: handler timed out: stanza error wait/remote-server-timeout",
			is:   []error{iq.ErrHandlerTimeout, &iq.StanzaError{Condition: iq.RemoteServerTimeout}},
		},
		{
			name: "PayloadDoesNotDecode",
			run: func(t *testing.T) error {
				rec := iqtest.NewRecorder()
				c := iq.NewCaller(rec)
				defer c.Close()
				rec.OnSend(func(_ context.Context, out *iq.IQ) error {
					go c.Receive(out.Result(iq.NewElement("urn:example:text", "other")))
					return nil
				})
				_, err := iq.GetAs[textPayload](context.Background(), c, "", textPayload{})
				return err
			},
			text: `iq: payload does not decode into iq_test.textPayload: <other xmlns="urn:example:text">: expected element type <q> but have <other>`,
			is:   []error{iq.ErrDecode},
		},
		{
			name: "MarshalInvalidName",
			run: func(t *testing.T) error {
				_, err := iq.MarshalElement(struct {
					XMLName xml.Name `xml:"urn:example:text q"`
					Child   *iq.Element
				}{Child: iq.NewElement("urn:example:text", "a b")})
				return err
			},
			text: `iq: marshal element: invalid element name "a b"`,
		},
		{
			name: "RequestWithoutXMLName",
			run: func(t *testing.T) error {
				_, err := iq.GetAs[textPayload](context.Background(), iq.NewCaller(iqtest.NewRecorder()), "", struct{ A int }{})
				return err
			},
			text: "iq: type has no XMLName with a namespace and a local name: struct { A int }",
			is:   []error{iq.ErrNoXMLName},
		},
		{
			name: "PairClosed",
			run:  func(*testing.T) error { return iqtest.ErrClosed },
			text: "iqtest: pair closed",
			is:   []error{iq.ErrClosed},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run(t)
			require.Error(t, err)
			assert.Equal(t, tc.text, err.Error())
			for _, want := range tc.is {
				assert.ErrorIs(t, err, want)
			}
		})
	}
}

type textPayload struct {
	XMLName xml.Name `xml:"urn:example:text q"`
}
