package bench

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"
	mstream "mellium.im/xmpp/stream"
)

// melliumPeer is two mellium sessions over one connection, the server's
// answering through a mux: mellium's SendIQElement → wire → mux handler →
// wire → the response's token reader.
type melliumPeer struct {
	client *xmpp.Session
	to     jid.JID
}

var (
	melliumClientJID = jid.MustParse("test@example.net/a")
	melliumServerJID = jid.MustParse("example.net")
)

// nopNegotiator reads the peer's stream header that melliumSession puts in
// front of the connection and declares the session ready, as mellium's own
// tests do.
func nopNegotiator(state xmpp.SessionState) xmpp.Negotiator {
	return func(ctx context.Context, in, out *mstream.Info, s *xmpp.Session, data any) (xmpp.SessionState, io.ReadWriter, any, error) {
		r := s.TokenReader()
		defer r.Close()
		for {
			tok, err := r.Token()
			if err != nil {
				return state | xmpp.Ready, nil, nil, err
			}
			if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "stream" {
				out.XMLNS = stanza.NSClient
				return state | xmpp.Ready, nil, nil, nil
			}
		}
	}
}

func melliumSession(tb testing.TB, state xmpp.SessionState, origin, location jid.JID, conn net.Conn) *xmpp.Session {
	header := `<stream:stream from="` + location.String() + `" to="` + origin.String() +
		`" id="123" version="1.0" xmlns="jabber:client" xmlns:stream="http://etherx.jabber.org/streams">`
	rw := struct {
		io.Reader
		io.Writer
	}{io.MultiReader(strings.NewReader(header), conn), conn}
	s, err := xmpp.NewSession(context.Background(), location, origin, rw, state, nopNegotiator(state))
	if err != nil {
		tb.Fatalf("mellium session: %v", err)
	}
	return s
}

// newMelliumPeer serves both sessions until the test ends. The server
// echoes gets of <query/> in echoNS and dataNS, answers forecasts with
// the struct it decoded, and one in wrongNS with an empty <query/>.
func newMelliumPeer(tb testing.TB, client, server net.Conn) *melliumPeer {
	p := &melliumPeer{to: melliumServerJID}
	p.client = melliumSession(tb, 0, melliumClientJID, melliumServerJID, client)
	srv := melliumSession(tb, xmpp.Received, melliumServerJID, melliumClientJID, server)
	m := mux.New(stanza.NSClient,
		mux.IQFunc(stanza.GetIQ, xml.Name{Space: echoNS, Local: "query"}, melliumEcho),
		mux.IQFunc(stanza.GetIQ, xml.Name{Space: dataNS, Local: "query"}, melliumEcho),
		mux.IQFunc(stanza.GetIQ, xml.Name{Space: weatherNS, Local: "forecast"}, melliumTyped),
		mux.IQFunc(stanza.GetIQ, xml.Name{Space: wrongNS, Local: "query"}, melliumWrong),
	)
	var done sync.WaitGroup
	done.Go(func() { _ = p.client.Serve(nil) })
	done.Go(func() { _ = srv.Serve(m) })
	tb.Cleanup(func() {
		// Closing the sessions first can deadlock mellium's writers on
		// the unbuffered pipe; cutting the connection ends both read loops.
		_ = client.Close()
		_ = server.Close()
		done.Wait()
	})
	return p
}

// melliumEcho answers with the payload it was sent. It reads the whole
// payload before it writes (copying each token, as the decoder reuses its
// buffers): writing while the request is still arriving could deadlock a
// large one on net.Pipe, where the client writes its request to the end
// before it reads.
func melliumEcho(q stanza.IQ, t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	toks := []xml.Token{start.Copy()}
	for {
		tok, err := t.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		toks = append(toks, xml.CopyToken(tok))
	}
	_, err := xmlstream.Copy(t, q.Result(&tokenSlice{toks: toks}))
	return err
}

// melliumWrong answers with an empty <query/>, for the tests that check
// the checks.
func melliumWrong(q stanza.IQ, t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	_, err := xmlstream.Copy(t, q.Result(xmlstream.Wrap(nil, xml.StartElement{Name: start.Name})))
	return err
}

// melliumTyped decodes the forecast with xml.Decoder.DecodeElement from
// the request's token stream, the way mellium's documentation shows (a
// decoder over the payload's start token and the rest), as its own
// unmarshalIQ does on the client, and sends it back.
func melliumTyped(q stanza.IQ, t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	d := xml.NewTokenDecoder(xmlstream.MultiReader(xmlstream.Token(*start), t))
	tok, err := d.Token()
	if err != nil {
		return err
	}
	payload, ok := tok.(xml.StartElement)
	if !ok {
		return fmt.Errorf("mellium typed: payload starts with %T", tok)
	}
	var f forecast
	if err := d.DecodeElement(&f, &payload); err != nil {
		return err
	}
	_, err = xmlstream.Copy(t, q.Result(f.TokenReader()))
	return err
}

// send sends toks as the payload of a get and returns the response.
func (p *melliumPeer) send(ctx context.Context, toks []xml.Token) (xmlstream.TokenReadCloser, error) {
	return p.client.SendIQElement(ctx, &tokenSlice{toks: toks}, stanza.IQ{Type: stanza.GetIQ, To: p.to})
}

// echo sends toks and returns every token of the response, the <iq/>
// included, copied.
func (p *melliumPeer) echo(ctx context.Context, toks []xml.Token) ([]xml.Token, error) {
	r, err := p.send(ctx, toks)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var got []xml.Token
	for {
		tok, err := r.Token()
		if err == io.EOF {
			return got, nil
		}
		if err != nil {
			return got, err
		}
		got = append(got, xml.CopyToken(tok))
	}
}

// echoOp is the benchmarks' round trip: mellium's response read to its end
// token by token, as a streaming reader would, counting elements and text
// against what was sent (the <iq/> is one more element).
func (p *melliumPeer) echoOp(toks []xml.Token) func(context.Context) error {
	want := statsOf(toks)
	want.elements++
	return func(ctx context.Context) error {
		r, err := p.send(ctx, toks)
		if err != nil {
			return fmt.Errorf("mellium echo: %w", err)
		}
		var got tokenStats
		for {
			tok, err := r.Token()
			if err != nil {
				break
			}
			switch tok := tok.(type) {
			case xml.StartElement:
				got.elements++
			case xml.CharData:
				got.text += len(tok)
			}
		}
		_ = r.Close()
		if got != want {
			return fmt.Errorf("mellium echo: got %+v, want %+v", got, want)
		}
		return nil
	}
}

// typed sends f and decodes the result's payload, with mellium's
// UnmarshalIQElement (xml.Decoder.DecodeElement on the response's tokens).
func (p *melliumPeer) typed(ctx context.Context, f *forecast) (forecast, error) {
	var got forecast
	err := p.client.UnmarshalIQElement(ctx, f.TokenReader(), stanza.IQ{Type: stanza.GetIQ, To: p.to}, &got)
	return got, err
}

func (p *melliumPeer) typedOp() func(context.Context) error {
	f := sampleForecast()
	return func(ctx context.Context) error {
		got, err := p.typed(ctx, &f)
		if err != nil {
			return fmt.Errorf("mellium typed: %w", err)
		}
		if !sameForecast(&got, &f) {
			return fmt.Errorf("mellium typed: got %+v, want %+v", got, f)
		}
		return nil
	}
}
