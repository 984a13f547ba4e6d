package melliumiq_test

// Tests against a fake server on an in-memory pipe: a mellium session
// whose negotiation is only the server's stream header, so that the server
// side can send what no real server relays and end its stream at a chosen
// moment. They need no XMPP server.

import (
	"context"
	"encoding/xml"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"
	"mellium.im/xmpp/stream"

	"github.com/xmpp-iq/iq"
	melliumiq "github.com/xmpp-iq/iq/adapter/mellium"
	"github.com/xmpp-iq/iq/internal/servertest"
)

const fakeJID = "alice@localhost/fake"

// fakeServer is the server end of a pipe whose client end is a ready
// mellium session bound to fakeJID.
type fakeServer struct {
	t     *testing.T
	conn  net.Conn
	wrote *servertest.SyncBuffer // what the client wrote
	gone  atomic.Bool            // the server has sent its </stream:stream>
	got   chan *iq.IQ            // the IQs the client wrote, decoded
	ended chan struct{}
}

// headerOnly is a negotiation that only reads the server's stream header:
// it writes nothing, and the session is ready once the header is in.
func headerOnly(_ context.Context, in, out *stream.Info, s *xmpp.Session, _ any) (xmpp.SessionState, io.ReadWriter, any, error) {
	r := s.TokenReader()
	defer r.Close()
	for {
		tok, err := r.Token()
		if err != nil {
			return 0, nil, nil, err
		}
		if start, ok := tok.(xml.StartElement); ok {
			out.XMLNS = stanza.NSClient
			return xmpp.Ready, nil, nil, in.FromStartElement(start)
		}
	}
}

// newFake returns a ready client session on a pipe and the server end.
func newFake(t *testing.T) (*xmpp.Session, *fakeServer) {
	t.Helper()
	c, srv := net.Pipe()
	f := &fakeServer{t: t, conn: srv, wrote: new(servertest.SyncBuffer), got: make(chan *iq.IQ, 64), ended: make(chan struct{})}
	go func() {
		_, _ = io.WriteString(srv, `<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' `+
			`from='localhost' to='`+fakeJID+`' id='fake' version='1.0'>`)
	}()
	// A context that never ends: see the package documentation on the
	// context given to NewSession.
	s, err := xmpp.NewSession(context.Background(), jid.MustParse("localhost"), jid.MustParse(fakeJID), c, xmpp.Secure|xmpp.Authn, headerOnly)
	require.NoError(t, err)
	go func() {
		defer close(f.ended)
		d := xml.NewDecoder(io.TeeReader(srv, f.wrote))
		for {
			var in iq.IQ
			if err := d.Decode(&in); err != nil {
				// The client's </stream:stream> (or the pipe closed):
				// answer it with ours, as a server does.
				if !f.gone.Load() {
					_, _ = io.WriteString(srv, `</stream:stream>`)
				}
				return
			}
			f.got <- &in
		}
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		_ = c.Close()
		<-f.ended
	})
	return s, f
}

// send writes raw XML to the client.
func (f *fakeServer) send(x string) {
	f.t.Helper()
	if x == `</stream:stream>` {
		f.gone.Store(true)
	}
	// A client that stopped reading fails the test rather than hangs it.
	require.NoError(f.t, f.conn.SetWriteDeadline(time.Now().Add(5*time.Second)))
	_, err := io.WriteString(f.conn, x)
	require.NoError(f.t, err)
}

// next returns the next IQ the client wrote.
func (f *fakeServer) next() *iq.IQ {
	f.t.Helper()
	select {
	case in := <-f.got:
		return in
	case <-time.After(5 * time.Second):
		f.t.Fatalf("the client wrote no IQ; it wrote %q", f.wrote.String())
		return nil
	}
}

// none checks that the client writes no further IQ for a moment.
func (f *fakeServer) none() {
	f.t.Helper()
	select {
	case in := <-f.got:
		f.t.Errorf("the client wrote a further IQ: %v", in)
	case <-time.After(200 * time.Millisecond):
	}
}

// served is a Serve that runs until the test ends.
type served struct {
	done chan struct{}
	err  error // what Serve returned, once done is closed
}

// serveFake runs Adapter.Serve until the test ends.
func serveFake(t *testing.T, a *melliumiq.Adapter) *served {
	ctx, cancel := context.WithCancel(context.Background())
	sv := &served{done: make(chan struct{})}
	go func() {
		defer close(sv.done)
		sv.err = a.Serve(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-sv.done:
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return")
		}
	})
	return sv
}

// Each request gets exactly one reply, the Callee's, without from; the
// local JID is the bound one.
func TestFakeOneReplyEach(t *testing.T) {
	s, f := newFake(t)
	a := melliumiq.New(s)
	a.Endpoint.Callee.Get(nsTest, "echo", echoHandler)
	serveFake(t, a)

	cases := []struct {
		name, xml string
		check     func(t *testing.T, reply *iq.IQ)
	}{
		{"handled", `<iq type='get' id='r1' from='bob@localhost/x' to='` + fakeJID + `'><echo xmlns='` + nsTest + `'>hi</echo></iq>`,
			func(t *testing.T, reply *iq.IQ) {
				assert.Equal(t, iq.TypeResult, reply.Type)
				assert.Equal(t, "hi", reply.Payload.Text())
			}},
		{"unknown namespace", `<iq type='set' id='r2' from='bob@localhost/x' to='` + fakeJID + `'><q xmlns='urn:example:none'/></iq>`,
			func(t *testing.T, reply *iq.IQ) {
				assert.ErrorIs(t, reply.Error, &iq.StanzaError{Type: iq.Cancel, Condition: iq.FeatureNotImplemented})
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f.send(tc.xml)
			reply := f.next()
			id := reply.ID
			assert.Contains(t, tc.xml, "id='"+id+"'")
			assert.Equal(t, "bob@localhost/x", reply.To)
			assert.Empty(t, reply.From, "a client's reply carries no from")
			tc.check(t, reply)
			f.none()
		})
	}
	// A response from the account's own bare JID to a request with no to:
	// accepted, as the local JID is the bound one.
	call := a.Endpoint.Caller.Go(context.Background(), &iq.IQ{Type: iq.TypeGet, Payload: iq.NewElement(nsPing, "ping")}, nil)
	req := f.next()
	assert.Empty(t, req.To)
	f.send(`<iq type='result' id='` + req.ID + `' from='alice@localhost'/>`)
	select {
	case <-call.Done:
		assert.NoError(t, call.Err)
	case <-time.After(5 * time.Second):
		t.Fatal("the response from the bare JID was not accepted")
	}
}

// melliumServe runs mellium's own Serve with h until the test ends.
func melliumServe(t *testing.T, s *xmpp.Session, h xmpp.Handler) {
	served := make(chan error, 1)
	go func() { served <- s.Serve(h) }()
	t.Cleanup(func() {
		_ = s.Conn().Close()
		<-served
	})
}

// TestBugUndecodableRequestUnanswered: a get whose payload the IQ decoder
// refuses (an attribute given twice, which encoding/xml lets through) was
// dropped without a reply, leaving the requester to time out. It gets
// bad-request, once, under Serve and under mellium's Serve alike.
func TestBugUndecodableRequestUnanswered(t *testing.T) {
	const req = `<iq type='get' id='dup' from='bob@localhost/x' to='` + fakeJID + `'><q xmlns='` + nsTest + `' a='1' a='2'/></iq>`
	serves := []struct {
		name  string
		serve func(t *testing.T, s *xmpp.Session, a *melliumiq.Adapter)
	}{
		{"Adapter.Serve", func(t *testing.T, _ *xmpp.Session, a *melliumiq.Adapter) { serveFake(t, a) }},
		{"mellium's Serve with Adapter.Handler", func(t *testing.T, s *xmpp.Session, a *melliumiq.Adapter) {
			melliumServe(t, s, a.Handler(nil))
		}},
		{"mellium's Serve with Adapter.Handler and a mux for the rest", func(t *testing.T, s *xmpp.Session, a *melliumiq.Adapter) {
			melliumServe(t, s, a.Handler(mux.New(stanza.NSClient,
				mux.IQFunc(stanza.GetIQ, xml.Name{Space: nsTest, Local: "q"}, func(stanza.IQ, xmlstream.TokenReadEncoder, *xml.StartElement) error {
					return errors.New("the mux's IQ route must not run")
				}))))
		}},
	}
	for _, tc := range serves {
		t.Run(tc.name, func(t *testing.T) {
			s, f := newFake(t)
			a := melliumiq.New(s)
			a.Endpoint.Callee.Get(nsTest, "q", func(context.Context, *iq.IQ) (*iq.Element, error) {
				return nil, errors.New("the handler must not run")
			})
			tc.serve(t, s, a)
			f.send(req)
			reply := f.next()
			assert.Equal(t, "dup", reply.ID)
			assert.ErrorIs(t, reply.Error, &iq.StanzaError{Type: iq.Modify, Condition: iq.BadRequest})
			f.none()
		})
	}
}

// TestBugRepliesLostAtServerClose: when the server ended its stream, the
// Endpoint closed at once and the replies of handlers still running were
// written after our </stream:stream>, or not at all. Now the pending
// requests fail (no response can follow), the replies due are sent, and
// then the stream is closed.
func TestBugRepliesLostAtServerClose(t *testing.T) {
	s, f := newFake(t)
	a := melliumiq.New(s)
	started, release := make(chan struct{}), make(chan struct{})
	a.Endpoint.Callee.Get(nsTest, "slow", func(context.Context, *iq.IQ) (*iq.Element, error) {
		close(started)
		<-release
		return iq.NewElement(nsTest, "slow").AppendText("done"), nil
	})
	served := serveFake(t, a)

	call := a.Endpoint.Caller.Go(context.Background(), &iq.IQ{Type: iq.TypeGet, To: "bob@localhost/x",
		Payload: iq.NewElement(nsPing, "ping")}, nil)
	f.next() // our request
	f.send(`<iq type='get' id='slow1' from='bob@localhost/x' to='` + fakeJID + `'><slow xmlns='` + nsTest + `'/></iq>`)
	<-started
	f.send(`</stream:stream>`)

	select {
	case <-call.Done:
		assert.ErrorIs(t, call.Err, iq.ErrClosed)
		assert.ErrorIs(t, call.Err, melliumiq.ErrStreamEnded)
	case <-time.After(time.Second):
		t.Fatal("the pending request did not fail when the server ended its stream")
	}
	close(release)
	reply := f.next()
	assert.Equal(t, "slow1", reply.ID)
	assert.Equal(t, "done", reply.Payload.Text())
	select {
	case <-served.done:
		assert.NoError(t, served.err)
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
	<-f.ended // our </stream:stream> came after the reply
}

// Under mellium's Serve, Adapter.Handler hands every element but <iq> to
// the handler it was given, and takes every IQ itself.
func TestHandlerPassesTheRestOn(t *testing.T) {
	s, f := newFake(t)
	a := melliumiq.New(s)
	a.Endpoint.Callee.Get(nsTest, "echo", echoHandler)
	messages := make(chan string, 1)
	melliumServe(t, s, a.Handler(mux.New(stanza.NSClient,
		mux.MessageFunc(stanza.ChatMessage, xml.Name{Local: "body"}, func(m stanza.Message, _ xmlstream.TokenReadEncoder) error {
			messages <- m.ID
			return nil
		}),
		mux.IQFunc(stanza.GetIQ, xml.Name{Space: nsTest, Local: "echo"}, func(stanza.IQ, xmlstream.TokenReadEncoder, *xml.StartElement) error {
			return errors.New("the mux's IQ route must not run")
		}))))

	f.send(`<message type='chat' id='m1' from='bob@localhost/x'><body>hi</body></message>`)
	select {
	case id := <-messages:
		assert.Equal(t, "m1", id)
	case <-time.After(5 * time.Second):
		t.Fatal("the message did not reach the mux")
	}
	f.send(`<iq type='get' id='e1' from='bob@localhost/x' to='` + fakeJID + `'><echo xmlns='` + nsTest + `'>x</echo></iq>`)
	reply := f.next()
	assert.Equal(t, "e1", reply.ID)
	assert.Equal(t, "x", reply.Payload.Text())
	assert.Empty(t, reply.From)
	f.none()
}

// The Sender writes every IQ as tokens through the session's encoder: the
// server reads back the IQ it was given, whatever namespaces, prefixes,
// escapes and children it holds (from aside, which a client stream drops),
// name for name: namespaces compared as the decoder resolves them, not as
// text that writes two namespaces alike.
func TestSenderWritesWhatItIsGiven(t *testing.T) {
	mustParse := func(x string) *iq.Element {
		el, err := iq.ParseElement([]byte(x))
		require.NoError(t, err)
		return el
	}
	const xmlNS = "http://www.w3.org/XML/1998/namespace"
	xmlPrefixed := iq.NewElement("urn:example:a", "q")
	xmlPrefixed.Attr = append(xmlPrefixed.Attr, xml.Attr{Name: xml.Name{Space: "xml", Local: "lang"}, Value: "fr"})
	twoChildren, err := iq.IQFromElement(mustParse(`<iq type='set' id='p8'><a xmlns='urn:example:1' k='v'/><b xmlns='urn:example:2'>t</b></iq>`))
	require.NoError(t, err)
	cases := []struct {
		name string
		in   *iq.IQ
		want *iq.IQ // when the server reads it otherwise than written: in, with no from
	}{
		{name: "plain get", in: &iq.IQ{Type: iq.TypeGet, ID: "p1", To: "localhost", Payload: iq.NewElement(nsTest, "echo")}},
		{name: "nested namespaces", in: &iq.IQ{Type: iq.TypeSet, ID: "p2", To: "localhost", Payload: mustParse(
			`<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='n'><item id='i'><entry xmlns='http://www.w3.org/2005/Atom'><title>t</title></entry></item></publish></pubsub>`)}},
		{name: "a child in no namespace", in: &iq.IQ{Type: iq.TypeGet, ID: "p3", Payload: mustParse(
			`<q xmlns='urn:example:a'><plain xmlns=''><deeper/></plain><back/></q>`)}},
		{name: "prefixed attributes and xml:lang", in: &iq.IQ{Type: iq.TypeResult, ID: "p4", Lang: "de", Payload: mustParse(
			`<q xmlns='urn:example:a' xmlns:p='urn:example:p' p:x='1' xml:lang='en'><r p:y='2'>z</r></q>`)}},
		{name: "an element in the xml namespace", in: &iq.IQ{Type: iq.TypeResult, ID: "p5",
			Payload: iq.NewElement("urn:example:a", "q").Append(iq.NewElement(xmlNS, "x").AppendText("in xml"))}},
		{name: "an attribute named with the xml prefix", in: &iq.IQ{Type: iq.TypeResult, ID: "p6", Payload: xmlPrefixed},
			want: &iq.IQ{Type: iq.TypeResult, ID: "p6", Payload: iq.NewElement("urn:example:a", "q")}},
		{name: "escapes", in: &iq.IQ{Type: iq.TypeGet, ID: `a"b'c<d>&e`, To: "x@y", Payload: iq.NewElement(nsTest, "echo", "v", "<&>\"'\t").
			AppendText("1 < 2 & 3 > 2 ]]> \r\n")}},
		{name: "two children", in: twoChildren},
		{name: "error reply with text and app", in: (&iq.IQ{Type: iq.TypeGet, ID: "p9", From: "x@y/r", Payload: iq.NewElement(nsTest, "echo")}).
			ErrorReply(&iq.StanzaError{Type: iq.Wait, Condition: iq.ResourceConstraint, Text: "slow", Lang: "en", By: "localhost",
				App: iq.NewElement("urn:example:app", "busy")})},
	}
	cases[5].want.Payload.Attr = []xml.Attr{{Name: xml.Name{Space: xmlNS, Local: "lang"}, Value: "fr"}}
	s, f := newFake(t)
	snd := melliumiq.NewSender(s)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			require.NoError(t, snd.SendIQ(ctx, tc.in))
			got := f.next()
			want := tc.want
			if want == nil {
				w := *tc.in
				w.From = "" // a client stream writes none
				want = &w
			}
			assert.Equal(t, []string{want.ID, want.To, want.From, want.Lang, string(want.Type)},
				[]string{got.ID, got.To, got.From, got.Lang, string(got.Type)}, "id, to, from, xml:lang, type")
			assert.True(t, want.Payload.Equal(got.Payload), "payload: sent %v, read %v", want.Payload, got.Payload)
			assert.Equal(t, want.NumChildren(), got.NumChildren(), "children")
			assert.Equal(t, want.String(), got.String())
			if assert.Equal(t, want.Error == nil, got.Error == nil, "error") && want.Error != nil {
				w, g := want.Error, got.Error
				assert.Equal(t, []string{string(w.Type), string(w.Condition), w.Text, w.Lang, w.By},
					[]string{string(g.Type), string(g.Condition), g.Text, g.Lang, g.By})
				assert.True(t, w.App.Equal(g.App), "application condition: sent %v, read %v", w.App, g.App)
			}
		})
	}
}
