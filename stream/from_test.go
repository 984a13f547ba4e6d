package stream_test

import (
	"context"
	"encoding/xml"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/stream"
)

// compDomain is the address of the component stream in these tests.
const compDomain = "comp.example"

// componentRig serves a Conn as a component's stream (jabber:component:accept,
// sending from compDomain), the peer playing the server.
func componentRig(t *testing.T, register func(ep *iq.Endpoint), opts ...stream.Option) *rig {
	t.Helper()
	return newRig(t, rigOpts{
		ns:       iq.NSComponent,
		opts:     append([]stream.Option{stream.WithNamespace(iq.NSComponent), stream.WithLocalAddress(compDomain)}, opts...),
		register: register,
	})
}

// callAndAnswer runs call on a goroutine, reads the request it sends, has
// the peer answer it with a result from the request's to, and returns the
// request as the peer read it.
func callAndAnswer(t *testing.T, r *rig, call func(ctx context.Context) error) *iq.IQ {
	t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- call(context.Background()) }()
	req := r.wire.nextIQ(t)
	r.send(t, `<iq type='result' id='`+req.ID+`' from='`+req.To+`' to='`+req.From+`'/>`)
	require.NoError(t, recvErr(t, errc, waitLong))
	return req
}

// settled writes a whitespace keepalive and returns everything the peer
// has read once it has read that keepalive, which follows any write that
// was under way; before is what it had read until then.
func settled(t *testing.T, r *rig, before string) string {
	t.Helper()
	r.quiesce(t)
	var raw string
	require.Eventually(t, func() bool {
		raw = r.wire.Raw()
		return len(raw) > len(before) && strings.HasSuffix(raw, " ")
	}, waitLong, time.Millisecond, "the keepalive is not read; read %q", r.wire.tail())
	return raw
}

// TestBugComponentRequestsCarryNoFrom: a component's requests went out
// without from, which ejabberd punishes with improper-addressing, ending
// the stream. Each now carries the component's address, or the from its
// caller chose inside the component's domain, as given.
func TestBugComponentRequestsCarryNoFrom(t *testing.T) {
	payload := func() *iq.Element { return iq.NewElement(hNS, "q") }
	for _, tc := range []struct {
		name     string
		call     func(ctx context.Context, ep *iq.Endpoint) error
		wantFrom string
	}{
		{"Get", func(ctx context.Context, ep *iq.Endpoint) error {
			_, err := ep.Caller.Get(ctx, "user@example.org/r", payload())
			return err
		}, compDomain},
		{"Set", func(ctx context.Context, ep *iq.Endpoint) error {
			_, err := ep.Caller.Set(ctx, "example.org", payload())
			return err
		}, compDomain},
		{"Request without from", func(ctx context.Context, ep *iq.Endpoint) error {
			_, err := ep.Caller.Request(ctx, &iq.IQ{To: "user@example.org", Type: iq.TypeGet, Payload: payload()})
			return err
		}, compDomain},
		{"Request from a user of the component", func(ctx context.Context, ep *iq.Endpoint) error {
			_, err := ep.Caller.Request(ctx, &iq.IQ{To: "user@example.org", From: "bot@comp.example/r1", Type: iq.TypeGet, Payload: payload()})
			return err
		}, "bot@comp.example/r1"},
		{"Request from the domain in other case", func(ctx context.Context, ep *iq.Endpoint) error {
			_, err := ep.Caller.Request(ctx, &iq.IQ{To: "user@example.org", From: "Comp.Example", Type: iq.TypeGet, Payload: payload()})
			return err
		}, "Comp.Example"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leakCheck(t)
			r := componentRig(t, nil)
			req := callAndAnswer(t, r, func(ctx context.Context) error { return tc.call(ctx, r.ep) })
			assert.Equal(t, tc.wantFrom, req.From)
			assert.NotEmpty(t, req.To)
		})
	}

	t.Run("the caller's IQ is not modified", func(t *testing.T) {
		leakCheck(t)
		r := componentRig(t, nil)
		out := &iq.IQ{ID: "own", To: "user@example.org", Type: iq.TypeGet, Payload: payload()}
		req := callAndAnswer(t, r, func(ctx context.Context) error {
			_, err := r.ep.Caller.Request(ctx, out)
			return err
		})
		assert.Equal(t, compDomain, req.From)
		assert.Empty(t, out.From)
	})

	t.Run("a WithLocalAddress with a localpart is stamped whole", func(t *testing.T) {
		leakCheck(t)
		r := componentRig(t, nil, stream.WithLocalAddress("bot@comp.example"))
		req := callAndAnswer(t, r, func(ctx context.Context) error {
			_, err := r.ep.Caller.Get(ctx, "user@example.org", payload())
			return err
		})
		assert.Equal(t, "bot@comp.example", req.From)
	})
}

// TestBugComponentRepliesCarryNoFrom: a reply is addressed from the
// request's to; when the request had none, the reply went out without from
// on a component's stream. It now carries the component's address.
func TestBugComponentRepliesCarryNoFrom(t *testing.T) {
	for _, tc := range []struct {
		name     string
		req      string
		wantType iq.Type
		wantFrom string
	}{
		{"result to a request without to", `<iq type='get' id='a' from='user@example.org/r'><echo xmlns='` + hNS + `'>x</echo></iq>`,
			iq.TypeResult, compDomain},
		{"error to a request without to", `<iq type='get' id='b' from='user@example.org/r'><nope xmlns='urn:x'/></iq>`,
			iq.TypeError, compDomain},
		{"bad-request to a request without to", `<iq type='get' id='c' from='user@example.org/r'/>`,
			iq.TypeError, compDomain},
		{"result from the request's to", `<iq type='get' id='d' from='user@example.org/r' to='comp.example'><echo xmlns='` + hNS + `'>x</echo></iq>`,
			iq.TypeResult, compDomain},
		{"result from a user of the component", `<iq type='get' id='e' from='user@example.org/r' to='bot@comp.example'><echo xmlns='` + hNS + `'>x</echo></iq>`,
			iq.TypeResult, "bot@comp.example"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leakCheck(t)
			r := componentRig(t, nil)
			r.send(t, tc.req)
			reply := r.wire.nextIQ(t)
			assert.Equal(t, tc.wantType, reply.Type)
			assert.Equal(t, tc.wantFrom, reply.From)
			assert.Equal(t, "user@example.org/r", reply.To)
		})
	}
}

// TestBugComponentFromOutsideDomainIsRefused: a stanza from an address
// outside the component's domain makes the server end the stream
// (invalid-from). It is refused before anything is written, with an error
// wrapping iq.ErrInvalid, and the stream goes on.
func TestBugComponentFromOutsideDomainIsRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		send func(ctx context.Context, r *rig) error
	}{
		{"SendIQ from another domain", func(ctx context.Context, r *rig) error {
			return r.conn.SendIQ(ctx, &iq.IQ{ID: "x", From: "evil.example", Type: iq.TypeResult})
		}},
		{"SendIQ from a subdomain", func(ctx context.Context, r *rig) error {
			return r.conn.SendIQ(ctx, &iq.IQ{ID: "x", From: "sub.comp.example", Type: iq.TypeResult})
		}},
		{"SendIQ from a user of another domain", func(ctx context.Context, r *rig) error {
			return r.conn.SendIQ(ctx, &iq.IQ{ID: "x", From: "comp.example@evil.example", Type: iq.TypeResult})
		}},
		{"SendIQ from a malformed address", func(ctx context.Context, r *rig) error {
			return r.conn.SendIQ(ctx, &iq.IQ{ID: "x", From: "@comp.example", Type: iq.TypeResult})
		}},
		{"Caller request", func(ctx context.Context, r *rig) error {
			_, err := r.ep.Caller.Request(ctx, &iq.IQ{To: "user@example.org", From: "evil.example", Type: iq.TypeGet, Payload: iq.NewElement(hNS, "q")})
			return err
		}},
		{"SendElement message", func(ctx context.Context, r *rig) error {
			return r.conn.SendElement(ctx, iq.NewElement("", "message", "to", "user@example.org", "from", "evil.example"))
		}},
		{"SendElement presence", func(ctx context.Context, r *rig) error {
			return r.conn.SendElement(ctx, iq.NewElement(iq.NSComponent, "presence", "from", "user@evil.example/r"))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leakCheck(t)
			r := componentRig(t, nil)
			before := settled(t, r, "")
			err := tc.send(context.Background(), r)
			require.Error(t, err)
			assert.ErrorIs(t, err, iq.ErrInvalid)
			assert.NotErrorIs(t, err, iq.ErrClosed)
			assert.Contains(t, err.Error(), compDomain)
			assert.Equal(t, before+" ", settled(t, r, before), "nothing is written")
			// The stream goes on.
			r.send(t, `<iq type='get' id='after' from='user@example.org/r'><echo xmlns='`+hNS+`'>y</echo></iq>`)
			reply := r.wire.nextIQ(t)
			assert.Equal(t, "after", reply.ID)
			assert.Equal(t, iq.TypeResult, reply.Type)
		})
	}

	t.Run("a reply to a request addressed outside the domain", func(t *testing.T) {
		leakCheck(t)
		logs := new(syncBuffer)
		r := newRig(t, rigOpts{ns: iq.NSComponent,
			opts:   []stream.Option{stream.WithNamespace(iq.NSComponent), stream.WithLocalAddress(compDomain)},
			epOpts: []iq.Option{iq.WithLogger(slog.New(slog.NewTextHandler(logs, nil)))},
		})
		before := settled(t, r, "")
		r.send(t, `<iq type='get' id='o' from='user@example.org/r' to='other.example'><echo xmlns='`+hNS+`'>y</echo></iq>`)
		require.Eventually(t, func() bool { return strings.Contains(logs.String(), "invalid IQ") }, waitLong, time.Millisecond)
		assert.Equal(t, before+" ", settled(t, r, before), "nothing is written")
	})
}

// TestBugClientStreamWritesNoFrom: stamping concerns streams with an
// address of their own; a client stream leaves from out, as its server
// stamps it.
func TestBugClientStreamWritesNoFrom(t *testing.T) {
	leakCheck(t)
	r := newRig(t, rigOpts{})
	req := callAndAnswer(t, r, func(ctx context.Context) error {
		_, err := r.ep.Caller.Get(ctx, "", iq.NewElement(hNS, "q"))
		return err
	})
	assert.Empty(t, req.From)

	r.send(t, `<iq type='get' id='g'><echo xmlns='`+hNS+`'>x</echo></iq>`)
	reply := r.wire.nextIQ(t)
	assert.Equal(t, iq.TypeResult, reply.Type)
	assert.Empty(t, reply.From)

	require.NoError(t, r.conn.SendElement(context.Background(), iq.NewElement("", "message", "to", "b@example.org")))
	msg := r.wire.next(t)
	assert.Equal(t, "message", msg.Name.Local)
	assert.Empty(t, msg.AttrValue("from"))

	// Any from is the client's business, and its server's.
	require.NoError(t, r.conn.SendIQ(context.Background(), &iq.IQ{ID: "f", From: "elsewhere.example", Type: iq.TypeResult}))
	assert.Equal(t, "elsewhere.example", r.wire.nextIQ(t).From)
}

func TestSendElement_StampsStanzasOnly(t *testing.T) {
	for _, tc := range []struct {
		name     string
		el       func() *iq.Element
		wantFrom string
	}{
		{"message", func() *iq.Element {
			return iq.NewElement("", "message", "to", "user@example.org").Append(iq.NewElement("", "body").AppendText("hi"))
		}, compDomain},
		{"presence in the component namespace", func() *iq.Element { return iq.NewElement(iq.NSComponent, "presence") }, compDomain},
		{"iq", func() *iq.Element { return iq.NewElement("", "iq", "type", "result", "id", "i") }, compDomain},
		{"an empty from", func() *iq.Element { return iq.NewElement("", "message", "from", "", "to", "u@example.org") }, compDomain},
		{"a from in the domain", func() *iq.Element { return iq.NewElement("", "message", "from", "a@comp.example/r") }, "a@comp.example/r"},
		{"not a stanza", func() *iq.Element { return iq.NewElement(iq.NSComponent, "handshake").AppendText("abc") }, ""},
		{"a stanza name in a foreign namespace", func() *iq.Element { return iq.NewElement("urn:x", "message") }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leakCheck(t)
			r := componentRig(t, nil)
			el := tc.el()
			orig := el.Copy()
			require.NoError(t, r.conn.SendElement(context.Background(), el))
			got := r.wire.next(t)
			assert.Equal(t, tc.wantFrom, got.AttrValue("from"))
			assert.Equal(t, el.Name.Local, got.Name.Local)
			assert.True(t, orig.Equal(el), "the caller's element is not modified: %s", el)
			var n int
			for _, a := range got.Attr {
				if a.Name == (xml.Name{Local: "from"}) {
					n++
				}
			}
			assert.LessOrEqual(t, n, 1, "one from at most")
			if to := orig.AttrValue("to"); to != "" {
				assert.Equal(t, to, got.AttrValue("to"))
			}
		})
	}
}

func TestWithLocalAddress_MalformedPanics(t *testing.T) {
	for _, addr := range []string{"", "@comp.example", "comp.example/", "a@"} {
		t.Run(addr, func(t *testing.T) {
			assert.Panics(t, func() { stream.WithLocalAddress(addr) })
		})
	}
}

// discardRWC is a transport that takes every write and has nothing to read.
type discardRWC struct{}

func (discardRWC) Read([]byte) (int, error)    { return 0, io.EOF }
func (discardRWC) Write(b []byte) (int, error) { return len(b), nil }
func (discardRWC) Close() error                { return nil }

// Stamping the from costs no allocation: the IQ is copied on the stack.
// (Measured against an IQ that needs no stamp, so that whatever the write
// itself costs cancels out.)
func TestSendIQ_StampingAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	c := stream.New(discardRWC{}, stream.WithNamespace(iq.NSComponent), stream.WithLocalAddress(compDomain))
	ctx := context.Background()
	allocs := func(out *iq.IQ) float64 {
		require.NoError(t, c.SendIQ(ctx, out))
		return testing.AllocsPerRun(200, func() { _ = c.SendIQ(ctx, out) })
	}
	payload := iq.NewElement(hNS, "r").AppendText("x")
	base := allocs(&iq.IQ{ID: "a", To: "user@example.org", From: compDomain, Type: iq.TypeResult, Payload: payload})
	for _, tc := range []struct {
		name string
		out  *iq.IQ
	}{
		{"no from", &iq.IQ{ID: "a", To: "user@example.org", Type: iq.TypeResult, Payload: payload}},
		{"a from in the domain", &iq.IQ{ID: "a", To: "user@example.org", From: "bot@comp.example/r", Type: iq.TypeResult, Payload: payload}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, base, allocs(tc.out))
		})
	}
	t.Logf("%v allocations per SendIQ", base)
}
