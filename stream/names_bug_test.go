package stream_test

import (
	"context"
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/stream"
)

// The reserved namespaces of Namespaces in XML 1.0.
const (
	xmlNSURL   = "http://www.w3.org/XML/1998/namespace"
	xmlnsNSURL = "http://www.w3.org/2000/xmlns/"
)

// firstIQNames reads raw, the inside of a jabber:client stream, with
// encoding/xml alone and returns the names of the elements and attributes
// (namespace declarations left out) inside the first <iq> with the given
// id, in document order. It fails the test when any element declares one
// of the reserved namespaces.
func firstIQNames(t *testing.T, raw, id string) []xml.Name {
	t.Helper()
	prefix := `<stream:stream xmlns="` + iq.NSClient + `" xmlns:stream="` + stream.NSStream + `">`
	d := xml.NewDecoder(strings.NewReader(prefix + raw))
	depth, in := 0, false
	var out []xml.Name
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err, "encoding/xml reads what the Conn wrote: %q", raw)
		switch tk := tok.(type) {
		case xml.StartElement:
			depth++
			if depth == 2 && tk.Name.Local == "iq" {
				for _, a := range tk.Attr {
					in = in || a.Name.Local == "id" && a.Value == id && out == nil
				}
				continue
			}
			for _, a := range tk.Attr {
				isDecl := a.Name.Space == "xmlns" || a.Name == (xml.Name{Local: "xmlns"})
				if isDecl && (a.Value == xmlNSURL || a.Value == xmlnsNSURL) {
					// Namespaces in XML 1.0 §3: the xml prefix alone is bound
					// to the XML namespace, and nothing to the xmlns one;
					// servers refuse a stream that breaks it.
					t.Errorf("%s declares a reserved namespace: %q", tk.Name.Local, raw)
				}
			}
			if in {
				out = append(out, tk.Name)
				for _, a := range tk.Attr {
					if a.Name.Space != "xmlns" && a.Name != (xml.Name{Local: "xmlns"}) {
						out = append(out, a.Name)
					}
				}
			}
		case xml.EndElement:
			depth--
			if depth == 1 && in {
				return out
			}
		}
	}
}

// payloadIn returns payload as a stanza's child in jabber:client holds it.
func payloadIn(t *testing.T, payload string) *iq.Element {
	t.Helper()
	el, err := iq.ParseElement([]byte(`<iq xmlns='` + iq.NSClient + `'>` + payload + `</iq>`))
	require.NoError(t, err)
	return el.Content[0].Element
}

// echoNames checks that a get whose payload is payload, routed to
// (space, local), is answered with the payload echoed back, written as
// XML encoding/xml reads to the same names, and that the stream lives on.
func echoNames(t *testing.T, payload, space, local string) {
	t.Helper()
	leakCheck(t)
	r := newRig(t, rigOpts{register: func(ep *iq.Endpoint) {
		ep.Callee.Get(space, local, func(_ context.Context, req *iq.IQ) (*iq.Element, error) {
			return req.Payload, nil
		})
	}})
	want := payloadIn(t, payload)
	r.send(t, `<iq type='get' id='n1' from='peer@example.com/r'>`+payload+`</iq>`)
	got := r.wire.nextIQ(t)
	require.Equal(t, "n1", got.ID, "read %q", r.wire.tail())
	require.Equal(t, iq.TypeResult, got.Type, "read %q", r.wire.tail())
	assert.True(t, want.Equal(got.Payload), "echoed %s, want %s", got.Payload, want)

	// The stream lives on: a second request is answered.
	r.send(t, `<iq type='get' id='n2'><echo xmlns='`+hNS+`'>still here</echo></iq>`)
	got = r.wire.nextIQ(t)
	assert.Equal(t, "n2", got.ID)
	assert.Equal(t, "still here", got.Payload.Text())
	assert.False(t, r.wire.sawEndTag(), "the stream ended: %q", r.wire.tail())
	assert.NoError(t, r.conn.Err())

	// What went out reads, with encoding/xml alone, to the names that came in.
	wantNames := firstIQNames(t, `<iq type='get' id='n1'>`+payload+`</iq>`, "n1")
	r.quiesce(t)
	assert.Equal(t, wantNames, firstIQNames(t, r.wire.Raw(), "n1"), "wrote %q", r.wire.Raw())
}

// TestBugNonASCIINameEndsStream: the decoder refused names that
// encoding/xml and the servers in front of us accept, an element named
// U+3007 or a name holding U+0387, with not-well-formed, ending the stream
// for one stanza any user could send. They are now read, routed, and
// echoed back.
func TestBugNonASCIINameEndsStream(t *testing.T) {
	const ns = "urn:test:names"
	tests := []struct {
		name    string
		payload string
		local   string
	}{
		{name: "element U+3007", payload: `<〇 xmlns='` + ns + `'>zero</〇>`, local: "〇"},
		{name: "U+0387 in element and attribute names", payload: "<a\u0387b xmlns='" + ns + "' c\u0387='1'><d\u0387/></a\u0387b>", local: "a\u0387b"},
		{name: "prefixed U+3007 with a U+0387 prefix", payload: "<p\u0387:〇 xmlns:p\u0387='" + ns + "' p\u0387:x\u0387='v'/>", local: "〇"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			echoNames(t, tt.payload, ns, tt.local)
		})
	}
}

// TestBugXMLNamespaceEchoEndsStream: an echoed payload in the XML namespace
// was written with that namespace declared as the default one, which
// servers refuse, ending our stream. It now goes out with the xml prefix.
func TestBugXMLNamespaceEchoEndsStream(t *testing.T) {
	tests := []struct {
		name    string
		payload string
	}{
		{name: "the issue's payload", payload: `<xml:foo xml:lang='en'><bar/></xml:foo>`},
		{name: "children in other namespaces", payload: `<xml:foo><bar xmlns='urn:b'><baz/></bar><qux xmlns=''/><xml:x/></xml:foo>`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			echoNames(t, tt.payload, xmlNSURL, "foo")
		})
	}
}
