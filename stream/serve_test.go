package stream_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/stream"
)

func TestServe_PeerStreamErrorEndsServe(t *testing.T) {
	const se = stream.NSStreamErrors
	for _, tc := range []struct {
		name    string
		xml     string
		cond    stream.Condition
		text    string
		appNS   string
		appName string
	}{
		{
			name: "condition, text and application element",
			xml: `<stream:error><conflict xmlns='` + se + `'/><text xmlns='` + se + `' xml:lang='en'>Replaced by new connection</text>` +
				`<escape-your-data xmlns='urn:example:app'/></stream:error>`,
			cond: stream.Conflict, text: "Replaced by new connection", appNS: "urn:example:app", appName: "escape-your-data",
		},
		{
			name: "application element before the condition",
			xml:  `<stream:error><why xmlns='urn:example:app'>x</why><system-shutdown xmlns='` + se + `'/></stream:error>`,
			cond: stream.SystemShutdown, appNS: "urn:example:app", appName: "why",
		},
		{
			name: "condition only",
			xml:  `<stream:error><host-unknown xmlns='` + se + `'/></stream:error>`,
			cond: stream.HostUnknown,
		},
		{
			name: "no condition is undefined-condition",
			xml:  `<stream:error><text xmlns='` + se + `'>huh</text></stream:error>`,
			cond: stream.UndefinedCondition, text: "huh",
		},
		{
			name: "stream prefix declared on the element",
			xml:  `<s:error xmlns:s='` + stream.NSStream + `'><policy-violation xmlns='` + se + `'/></s:error>`,
			cond: stream.PolicyViolation,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leakCheck(t)
			r := newRig(t, rigOpts{})
			pending := goRequest(r.ep, "pending-1", iq.NewElement(hNS, "never"))
			req := r.wire.nextIQ(t) // the request is on the wire, so pending
			require.Equal(t, "pending-1", req.ID)
			r.quiesce(t)

			r.send(t, tc.xml)
			err := r.served(t)
			var got *stream.StreamError
			require.ErrorAs(t, err, &got)
			assert.Equal(t, tc.cond, got.Condition)
			assert.Equal(t, tc.text, got.Text)
			if tc.appName != "" {
				require.NotNil(t, got.App)
				assert.Equal(t, tc.appNS, got.App.Name.Space)
				assert.Equal(t, tc.appName, got.App.Name.Local)
			} else {
				assert.Nil(t, got.App)
			}
			assert.ErrorIs(t, err, &stream.StreamError{Condition: tc.cond})
			assert.NotErrorIs(t, err, &stream.StreamError{Condition: stream.NotAuthorized})
			assert.Contains(t, err.Error(), tc.cond)

			perr := recvErr(t, pending, waitLong)
			assert.ErrorIs(t, perr, iq.ErrClosed)
			var pse *stream.StreamError
			require.ErrorAs(t, perr, &pse, "the pending request's error wraps the cause")
			assert.Equal(t, tc.cond, pse.Condition)

			// Our side closes the stream and the transport.
			r.wire.waitEOF(t)
			assert.True(t, r.wire.sawEndTag(), "wrote %q", r.wire.tail())
			assert.ErrorAs(t, r.conn.Err(), &got)
			select {
			case <-r.conn.Done():
			default:
				t.Fatal("Done not closed")
			}
		})
	}
}

func TestServe_NonIQGoesToFallback(t *testing.T) {
	leakCheck(t)
	r := newRig(t, rigOpts{})
	cases := []struct {
		name  string
		xml   string
		space string
		local string
		check func(t *testing.T, el *iq.Element)
	}{
		{
			name:  "message",
			xml:   `<message from='a@x/r' to='b@x' id='m1' type='chat'><body>hi &amp; bye</body><thread>t1</thread></message>`,
			space: iq.NSClient, local: "message",
			check: func(t *testing.T, el *iq.Element) {
				assert.Equal(t, "a@x/r", el.AttrValue("from"))
				assert.Equal(t, "m1", el.AttrValue("id"))
				assert.Equal(t, "chat", el.AttrValue("type"))
				require.NotNil(t, el.Child(iq.NSClient, "body"))
				assert.Equal(t, "hi & bye", el.Child(iq.NSClient, "body").Text())
				assert.Equal(t, "t1", el.Child(iq.NSClient, "thread").Text())
			},
		},
		{
			name:  "presence",
			xml:   `<presence from='a@x/r' id='p1'><show>away</show><x xmlns='urn:example:x' k='v'/></presence>`,
			space: iq.NSClient, local: "presence",
			check: func(t *testing.T, el *iq.Element) {
				assert.Equal(t, "p1", el.AttrValue("id"))
				assert.Equal(t, "away", el.Child(iq.NSClient, "show").Text())
				x := el.Child("urn:example:x", "x")
				require.NotNil(t, x)
				assert.Equal(t, "v", x.AttrValue("k"))
			},
		},
		{
			name:  "empty presence",
			xml:   `<presence/>`,
			space: iq.NSClient, local: "presence",
			check: func(t *testing.T, el *iq.Element) { assert.Zero(t, el.NumChildren()) },
		},
		{
			name:  "unknown element in its own namespace",
			xml:   `<thing xmlns='urn:example:thing' n='1'>text<sub>deep</sub>tail</thing>`,
			space: "urn:example:thing", local: "thing",
			check: func(t *testing.T, el *iq.Element) {
				assert.Equal(t, "1", el.AttrValue("n"))
				assert.Equal(t, "deep", el.Child("urn:example:thing", "sub").Text())
				assert.Contains(t, el.Text(), "text")
				assert.Contains(t, el.Text(), "tail")
			},
		},
		{
			name:  "iq in a foreign namespace is not an IQ",
			xml:   `<iq xmlns='urn:example:not-a-stanza' type='get' id='q1'><a/></iq>`,
			space: "urn:example:not-a-stanza", local: "iq",
			check: func(t *testing.T, el *iq.Element) { assert.Equal(t, "q1", el.AttrValue("id")) },
		},
		{
			name:  "stream features",
			xml:   `<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>`,
			space: stream.NSStream, local: "features",
			check: func(t *testing.T, el *iq.Element) {
				assert.NotNil(t, el.Child("urn:ietf:params:xml:ns:xmpp-bind", "bind"))
			},
		},
	}
	// Sent in one go, with keepalives between, they arrive in order.
	var all strings.Builder
	for _, tc := range cases {
		all.WriteString(tc.xml)
		all.WriteString("\n ")
	}
	r.send(t, all.String())
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			select {
			case el := <-r.fb:
				assert.Equal(t, tc.space, el.Name.Space)
				assert.Equal(t, tc.local, el.Name.Local)
				tc.check(t, el)
			case <-time.After(waitLong):
				t.Fatal("fallback not called")
			}
		})
	}
	// IQs never reach the fallback; the stream goes on.
	r.send(t, `<iq type='get' id='after'><echo xmlns='`+hNS+`'>still</echo></iq>`)
	res := r.wire.nextIQ(t)
	assert.Equal(t, "after", res.ID)
	assert.Equal(t, iq.TypeResult, res.Type)
	assert.Empty(t, r.fb)
}

func TestServe_NilFallbackLogs(t *testing.T) {
	leakCheck(t)
	for _, tc := range []struct {
		name string
		xml  string
		want []string
	}{
		{"message", `<message id='m1' from='a@x'><body>b</body></message>`, []string{"name=message", "id=m1", "from=a@x", "ns=jabber:client"}},
		{"presence", `<presence id='p1' from='c@x/r'/>`, []string{"name=presence", "id=p1", "from=c@x/r"}},
		{"unknown", `<thing xmlns='urn:example:thing' id='t1'/>`, []string{"name=thing", "ns=urn:example:thing", "id=t1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leakCheck(t)
			var buf syncBuffer
			log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
			r := newRig(t, rigOpts{noFB: true, opts: []stream.Option{stream.WithLogger(log)}})
			r.send(t, tc.xml+`</stream:stream>`)
			require.NoError(t, r.served(t))
			out := buf.String()
			assert.Contains(t, out, "unhandled stanza")
			for _, w := range tc.want {
				assert.Contains(t, out, w)
			}
		})
	}
}

func TestServe_IQNamespacesReachEndpoint(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opts  []stream.Option
		ns    string // the stream's default namespace
		attrs string // on the incoming <iq>
	}{
		{name: "jabber:client default", ns: iq.NSClient},
		{name: "jabber:component:accept", opts: []stream.Option{stream.WithNamespace(iq.NSComponent)}, ns: iq.NSComponent},
		{name: "jabber:server", opts: []stream.Option{stream.WithNamespace(iq.NSServer)}, ns: iq.NSServer},
		{name: "no namespace stream", opts: []stream.Option{stream.WithNamespace("")}, ns: ""},
		{name: "explicit xmlns empty", ns: iq.NSClient, attrs: ` xmlns=''`},
		{name: "explicit jabber:component:accept on a client stream", ns: iq.NSClient, attrs: ` xmlns='` + iq.NSComponent + `'`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leakCheck(t)
			r := newRig(t, rigOpts{ns: tc.ns, opts: tc.opts})
			assert.Equal(t, tc.ns, r.conn.PeerHeader().NS)

			// A get reaches the Callee.
			r.send(t, `<iq`+tc.attrs+` type='get' id='g1' from='peer@x/r'><echo xmlns='`+hNS+`'>ping</echo></iq>`)
			res := r.wire.nextIQ(t)
			assert.Equal(t, "g1", res.ID)
			assert.Equal(t, iq.TypeResult, res.Type)
			assert.Equal(t, "peer@x/r", res.To)
			require.NotNil(t, res.Payload)
			assert.Equal(t, "ping", res.Payload.Text())

			// A result reaches the Caller.
			errc := make(chan error, 1)
			got := make(chan *iq.Element, 1)
			go func() {
				el, err := r.ep.Caller.Get(context.Background(), "", iq.NewElement(hNS, "q"))
				got <- el
				errc <- err
			}()
			req := r.wire.nextIQ(t)
			r.send(t, `<iq`+tc.attrs+` type='result' id='`+req.ID+`'><q xmlns='`+hNS+`'>pong</q></iq>`)
			require.NoError(t, recvErr(t, errc, waitLong))
			el := <-got
			require.NotNil(t, el)
			assert.Equal(t, "pong", el.Text())

			// An error reaches the Caller as a *StanzaError.
			go func() {
				_, err := r.ep.Caller.Get(context.Background(), "", iq.NewElement(hNS, "q"))
				errc <- err
			}()
			req = r.wire.nextIQ(t)
			r.send(t, `<iq`+tc.attrs+` type='error' id='`+req.ID+`'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`)
			err := recvErr(t, errc, waitLong)
			var serr *iq.StanzaError
			require.ErrorAs(t, err, &serr)
			assert.Equal(t, iq.ItemNotFound, serr.Condition)
			assert.Empty(t, r.fb, "no IQ goes to the fallback")
		})
	}
}

func TestServe_PeerCloseTagEndsCleanly(t *testing.T) {
	for _, tc := range []struct {
		name   string
		before string
	}{
		{"at once", ""},
		{"after stanzas and keepalives", "<presence/>\n\n <message><body>x</body></message> \t"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leakCheck(t)
			r := newRig(t, rigOpts{})
			pending := goRequest(r.ep, "p1", iq.NewElement(hNS, "never"))
			r.wire.nextIQ(t)
			r.quiesce(t)

			r.send(t, tc.before+`</stream:stream>`)
			require.NoError(t, r.served(t))
			raw := r.wire.waitEOF(t)
			assert.True(t, r.wire.sawEndTag(), "wrote %q", r.wire.tail())
			assert.True(t, strings.HasSuffix(raw, "</stream:stream>"), "wrote %q", raw)
			assert.Equal(t, 1, strings.Count(raw, "</stream:stream>"))

			perr := recvErr(t, pending, waitLong)
			assert.ErrorIs(t, perr, iq.ErrClosed)
			assert.ErrorIs(t, r.conn.SendIQ(context.Background(), &iq.IQ{ID: "late", Type: iq.TypeResult}), iq.ErrClosed)
		})
	}
}

func TestServe_AbruptEOF(t *testing.T) {
	for _, tc := range []struct {
		name    string
		partial string
	}{
		{"between stanzas", "<presence/> "},
		{"inside a start tag", "<iq type='get' id='x"},
		{"inside content", "<iq type='get' id='x'><echo xmlns='" + hNS + "'>hal"},
		{"nothing at all", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leakCheck(t)
			r := newRig(t, rigOpts{})
			pending := goRequest(r.ep, "p1", iq.NewElement(hNS, "never"))
			r.wire.nextIQ(t)
			if tc.partial != "" {
				r.send(t, tc.partial)
			}
			start := time.Now()
			require.NoError(t, r.peer.Close())
			err := r.served(t)
			assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
			perr := recvErr(t, pending, time.Second)
			assert.Less(t, time.Since(start), time.Second)
			assert.ErrorIs(t, perr, iq.ErrClosed)
			assert.ErrorIs(t, perr, io.ErrUnexpectedEOF)
			assert.ErrorIs(t, r.conn.Err(), io.ErrUnexpectedEOF)
		})
	}
}

func TestServe_ContextEnds(t *testing.T) {
	for _, tc := range []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		end  func(cancel context.CancelFunc)
		want error
	}{
		{"cancel", func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) },
			func(cancel context.CancelFunc) { cancel() }, context.Canceled},
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 300*time.Millisecond)
		}, func(context.CancelFunc) {}, context.DeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leakCheck(t)
			ctx, cancel := tc.ctx()
			defer cancel()
			held := make(chan struct{})
			handlerDone := make(chan error, 1)
			r := newRig(t, rigOpts{ctx: ctx, register: func(ep *iq.Endpoint) {
				ep.Callee.Get(hNS, "hold", func(hctx context.Context, _ *iq.IQ) (*iq.Element, error) {
					close(held)
					<-hctx.Done()
					handlerDone <- hctx.Err()
					return nil, hctx.Err()
				})
			}})
			pending := goRequest(r.ep, "p1", iq.NewElement(hNS, "never"))
			r.wire.nextIQ(t)
			r.send(t, `<iq type='get' id='h1'><hold xmlns='`+hNS+`'/></iq>`)
			select {
			case <-held:
			case <-time.After(waitLong):
				t.Fatal("handler not started")
			}

			tc.end(cancel)
			start := time.Now()
			err := r.served(t)
			assert.Less(t, time.Since(start), 2*time.Second)
			assert.ErrorIs(t, err, tc.want)
			assert.ErrorIs(t, recvErr(t, pending, time.Second), iq.ErrClosed)
			assert.Error(t, recvErr(t, handlerDone, waitLong), "the handler's context ends")
			// The transport is closed. (The closing tag is best effort: it is
			// skipped when the handler's reply holds the write lock.)
			r.wire.waitEOF(t)
			assert.ErrorIs(t, r.conn.SendIQ(context.Background(), &iq.IQ{ID: "x", Type: iq.TypeResult}), iq.ErrClosed)
		})
	}
}

func TestServe_CalledTwice(t *testing.T) {
	leakCheck(t)
	r := newRig(t, rigOpts{})
	// The first Serve is running once it answers.
	r.send(t, `<iq type='get' id='g'><echo xmlns='`+hNS+`'/></iq>`)
	r.wire.nextIQ(t)

	ep2 := iq.NewEndpoint(r.conn)
	defer ep2.Close()
	errc := make(chan error, 1)
	go func() { errc <- r.conn.Serve(context.Background(), ep2, nil) }()
	err := recvErr(t, errc, waitLong)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "twice")

	// The first is unharmed.
	r.send(t, `<iq type='get' id='g2'><echo xmlns='`+hNS+`'>x</echo></iq>`)
	assert.Equal(t, "g2", r.wire.nextIQ(t).ID)
	require.NoError(t, r.conn.Close())
	assert.NoError(t, r.served(t))
}

func TestServe_BadStanzaKeepsStream(t *testing.T) {
	leakCheck(t)
	r := newRig(t, rigOpts{})
	for i, tc := range []struct {
		name string
		xml  string
		id   string
		cond iq.Condition
	}{
		{"get without id", `<iq type='get'><echo xmlns='` + hNS + `'/></iq>`, "", iq.BadRequest},
		{"get with two children", `<iq type='get' id='two'><echo xmlns='` + hNS + `'/><echo xmlns='` + hNS + `'/></iq>`, "two", iq.BadRequest},
		{"set without children", `<iq type='set' id='none'/>`, "none", iq.BadRequest},
		{"unknown type", `<iq type='bogus' id='bt'><echo xmlns='` + hNS + `'/></iq>`, "bt", iq.BadRequest},
		{"no type", `<iq id='nt'><echo xmlns='` + hNS + `'/></iq>`, "nt", iq.BadRequest},
		{"unknown payload", `<iq type='get' id='un'><nope xmlns='urn:unknown'/></iq>`, "un", iq.FeatureNotImplemented},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r.send(t, tc.xml)
			res := r.wire.nextIQ(t)
			assert.Equal(t, iq.TypeError, res.Type)
			assert.Equal(t, tc.id, res.ID)
			require.NotNil(t, res.Error, "%v", res)
			assert.Equal(t, tc.cond, res.Error.Condition)

			// The next request still works.
			id := "ok-" + string(rune('a'+i))
			r.send(t, `<iq type='get' id='`+id+`'><echo xmlns='`+hNS+`'>fine</echo></iq>`)
			ok := r.wire.nextIQ(t)
			assert.Equal(t, id, ok.ID)
			assert.Equal(t, iq.TypeResult, ok.Type)
			assert.Nil(t, r.conn.Err())
		})
	}
}

func TestClose_Idempotent(t *testing.T) {
	leakCheck(t)
	r := newRig(t, rigOpts{})
	for i := 0; i < 3; i++ {
		require.NoError(t, r.conn.Close())
	}
	require.NoError(t, r.served(t))
	raw := r.wire.waitEOF(t)
	assert.Equal(t, "</stream:stream>", raw)
	assert.ErrorIs(t, r.conn.Err(), stream.ErrClosed)
	assert.ErrorIs(t, r.conn.Err(), iq.ErrClosed)
	err := r.conn.SendIQ(context.Background(), &iq.IQ{ID: "x", Type: iq.TypeResult})
	assert.ErrorIs(t, err, stream.ErrClosed)
	assert.ErrorIs(t, r.conn.SendRaw(context.Background(), []byte("<presence/>")), iq.ErrClosed)
	assert.ErrorIs(t, r.conn.SendElement(context.Background(), iq.NewElement("", "presence")), iq.ErrClosed)
}

func TestClose_Concurrent(t *testing.T) {
	leakCheck(t)
	r := newRig(t, rigOpts{})
	const n = 64
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs <- r.conn.Close()
		}()
	}
	close(start)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(waitLong):
		t.Fatal("concurrent Close did not return")
	}
	close(errs)
	for err := range errs {
		assert.NoError(t, err)
	}
	require.NoError(t, r.served(t))
	assert.Equal(t, "</stream:stream>", r.wire.waitEOF(t), "one closing tag, once")
}

func TestClose_WhileWriteBlocked(t *testing.T) {
	for _, tc := range []struct {
		name string
		send func(c *stream.Conn, ep *iq.Endpoint) error
	}{
		{"SendIQ", func(c *stream.Conn, _ *iq.Endpoint) error {
			return c.SendIQ(context.Background(), &iq.IQ{ID: "blocked", Type: iq.TypeGet, Payload: iq.NewElement(hNS, "q")})
		}},
		{"Caller request", func(_ *stream.Conn, ep *iq.Endpoint) error {
			_, err := ep.Caller.Get(context.Background(), "", iq.NewElement(hNS, "q"))
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leakCheck(t)
			tr, peer := newSignalPipe()
			defer peer.Close() // nobody ever reads it
			c := stream.New(tr)
			ep := iq.NewEndpoint(c)
			defer ep.Close()
			served := make(chan error, 1)
			go func() { served <- c.Serve(context.Background(), ep, nil) }()

			sent := make(chan error, 1)
			go func() { sent <- tc.send(c, ep) }()
			select {
			case <-tr.entered:
			case <-time.After(waitLong):
				t.Fatal("the write never started")
			}

			start := time.Now()
			closed := make(chan error, 1)
			go func() { closed <- c.Close() }()
			assert.NoError(t, recvErr(t, closed, 2*time.Second))
			assert.Less(t, time.Since(start), 2*time.Second)
			err := recvErr(t, sent, 2*time.Second)
			assert.ErrorIs(t, err, iq.ErrClosed)
			assert.NoError(t, recvErr(t, served, 2*time.Second))
		})
	}
}

// errorsIsAny reports whether err matches one of targets.
func errorsIsAny(err error, targets ...error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}

// The stream error that ends a stream must reach a healthy peer even when
// a write (a reply, say) holds the write lock at that moment: here a write
// is under way on a peer that has paused reading, and resumes. RFC 6120
// §4.9.1.1: the entity that detects the error MUST send the stream error.
func TestEnd_StreamErrorNotDroppedWhileAWriteHoldsTheLock(t *testing.T) {
	leakCheck(t)
	p1, p2 := net.Pipe()
	defer p2.Close()
	c := stream.New(p1)
	ep := iq.NewEndpoint(c)
	defer ep.Close()
	served := make(chan error, 1)
	go func() { served <- c.Serve(context.Background(), ep, nil) }()

	// A reply is under way: one byte of it taken, the rest waits.
	sent := make(chan error, 1)
	go func() { sent <- c.SendIQ(context.Background(), result("reply")) }()
	first := make([]byte, 1)
	_, err := io.ReadFull(p2, first)
	require.NoError(t, err)

	// The peer sends bad XML, then reads again, at the latest 300 ms later.
	go func() { _, _ = io.WriteString(p2, "<message></presence>") }()
	select {
	case <-c.Done():
	case <-time.After(300 * time.Millisecond):
	}
	w := newWire(io.MultiReader(strings.NewReader(string(first)), p2), iq.NSClient)

	assert.ErrorIs(t, recvErr(t, served, waitLong), stream.ErrNotWellFormed)
	<-sent
	raw := w.waitEOF(t)
	assert.Contains(t, raw, stream.NotWellFormed, "the peer never learns why the stream ended")
	assert.Contains(t, raw, "</stream:stream>")
}
