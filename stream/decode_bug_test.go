package stream_test

import (
	"context"
	"encoding/xml"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/stream"
)

// refused is XML a stream must refuse, with the stream error RFC 6120
// §4.9.3 names for it and the error Serve or Open returns.
var refused = []struct {
	name  string
	xml   string // sent mid-stream
	cond  stream.Condition
	err   error
	inHdr string // the peer's header carrying the same fault, for Open
}{
	{
		name: "undeclared prefix", xml: `<iq type='get' id='u1'><p:y/></iq>`,
		cond: stream.NotWellFormed, err: stream.ErrNotWellFormed,
		inHdr: `<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' p:id='1'>`,
	},
	{
		name: "undeclared prefix on a stanza", xml: `<p:iq type='get' id='u2'/>`,
		cond: stream.NotWellFormed, err: stream.ErrNotWellFormed,
		inHdr: `<stream:stream xmlns='jabber:client'>`,
	},
	{
		name: "duplicate attribute", xml: `<iq type='get' id='d1' type='result'><echo xmlns='` + hNS + `'>x</echo></iq>`,
		cond: stream.NotWellFormed, err: stream.ErrNotWellFormed,
		inHdr: `<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='1' id='2'>`,
	},
	{
		name: "one expanded name twice", xml: `<message xmlns:a='urn:x' xmlns:b='urn:x' a:v='1' b:v='2'/>`,
		cond: stream.NotWellFormed, err: stream.ErrNotWellFormed,
		inHdr: `<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' xmlns:stream='urn:other'>`,
	},
	{
		name: "XML 1.1", xml: `<?xml version='1.1'?>`,
		cond: stream.BadFormat, err: stream.ErrUnsupportedXMLVersion,
		inHdr: `<?xml version='1.1'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>`,
	},
	{
		name: "encoding other than UTF-8", xml: `<?xml version='1.0' encoding='ISO-8859-1'?>`,
		cond: stream.UnsupportedEncoding, err: stream.ErrUnsupportedEncoding,
		inHdr: `<?xml version="1.0" encoding="UTF-16"?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>`,
	},
}

// TestBugRefusedXMLTakenOrEndedSilently: an undeclared prefix (<p:y/> was
// routed as namespace "p") and duplicate attributes (the last type won)
// were taken, and an XML declaration of version 1.1 or of an encoding
// other than UTF-8 ended the stream with a bare </stream:stream>. Each now
// ends the stream with the stream error RFC 6120 §4.9.3 names, then the
// closing tag, and Serve returns the matching error.
func TestBugRefusedXMLTakenOrEndedSilently(t *testing.T) {
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			leakCheck(t)
			handled := make(chan struct{}, 1)
			r := newRig(t, rigOpts{register: func(ep *iq.Endpoint) {
				ep.Callee.Get("p", "y", func(context.Context, *iq.IQ) (*iq.Element, error) {
					handled <- struct{}{}
					return nil, nil
				})
			}})
			r.sendAsync(tc.xml)
			err := r.served(t)
			assert.ErrorIs(t, err, tc.err)
			el := r.wire.next(t)
			assert.True(t, isStreamErr(el, tc.cond), "wrote %s, want a %s stream error", el, tc.cond)
			raw := r.wire.waitEOF(t)
			assert.True(t, r.wire.sawEndTag(), "no closing tag after the stream error: %q", raw)
			assert.True(t, strings.HasSuffix(raw, "</stream:error></stream:stream>"), "wrote %q", raw)
			assert.Empty(t, r.fb, "nothing reaches the fallback")
			assert.Empty(t, handled, "nothing reaches a handler")
		})
	}
}

// TestBugRefusedXMLInPeerHeader: the same faults in the header Open reads
// make Open fail with the matching error after writing the stream error
// and our closing tag after our header, rather than dropping the
// connection without a word.
func TestBugRefusedXMLInPeerHeader(t *testing.T) {
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			leakCheck(t)
			p1, p2 := net.Pipe()
			defer p1.Close()
			defer p2.Close()
			got := make(chan string, 1)
			go func() {
				b, _ := io.ReadAll(p2)
				got <- string(b)
			}()
			go func() {
				_ = p2.SetWriteDeadline(time.Now().Add(waitLong))
				_, _ = io.WriteString(p2, tc.inHdr)
			}()
			ctx, cancel := context.WithTimeout(context.Background(), waitLong)
			defer cancel()
			c, err := stream.Open(ctx, p1, stream.Header{To: "example.com"})
			require.Error(t, err)
			assert.Nil(t, c)
			assert.ErrorIs(t, err, tc.err)
			var raw string
			select {
			case raw = <-got:
			case <-time.After(waitLong):
				t.Fatal("Open did not close the transport")
			}
			// What the peer read: our header, the stream error, our
			// closing tag.
			dec := xml.NewDecoder(strings.NewReader(raw))
			var sawErr, sawEnd bool
			for {
				tok, derr := dec.Token()
				if derr != nil {
					break
				}
				switch tok := tok.(type) {
				case xml.StartElement:
					if tok.Name.Local == "stream" {
						continue
					}
					var el iq.Element
					require.NoError(t, dec.DecodeElement(&el, &tok))
					assert.True(t, isStreamErr(&el, tc.cond), "wrote %s, want a %s stream error", &el, tc.cond)
					sawErr = true
				case xml.EndElement:
					sawEnd = sawErr
				}
			}
			assert.True(t, sawErr && sawEnd, "want the stream error, then </stream:stream>; peer read %q", raw)
		})
	}
}

// TestBugRefusedXMLInReadElement: ReadElement, which negotiation steps use
// before Serve (a component's handshake), refuses the same XML with the
// same stream error and closing tag.
func TestBugRefusedXMLInReadElement(t *testing.T) {
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			leakCheck(t)
			p1, p2 := net.Pipe()
			defer p2.Close()
			c := stream.New(p1)
			defer c.Close()
			w := newWire(p2, iq.NSClient)
			go func() {
				_ = p2.SetWriteDeadline(time.Now().Add(waitLong))
				_, _ = io.WriteString(p2, tc.xml)
			}()
			el, err := c.ReadElement()
			assert.Nil(t, el)
			assert.ErrorIs(t, err, tc.err)
			got := w.next(t)
			assert.True(t, isStreamErr(got, tc.cond), "wrote %s, want a %s stream error", got, tc.cond)
			w.waitEOF(t)
			assert.True(t, w.sawEndTag())
		})
	}
}
