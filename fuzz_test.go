package iq_test

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/xmpp-iq/iq"
)

// Fuzz targets. The seed corpora in testdata/fuzz/ hold real stanzas
// (RFC 6120 examples, replies captured from Prosody); go test runs them as
// ordinary tests, and scripts/fuzz.sh runs each target for a while.

// sameIQ reports the first difference between two IQs, or "".
func sameIQ(a, b *iq.IQ) string {
	switch {
	case a.ID != b.ID:
		return "id"
	case a.To != b.To:
		return "to"
	case a.From != b.From:
		return "from"
	case a.Lang != b.Lang:
		return "lang"
	case a.Type != b.Type:
		return "type"
	case !a.Payload.Equal(b.Payload):
		return "payload"
	case a.NumChildren() != b.NumChildren():
		return "number of children"
	case (a.Error == nil) != (b.Error == nil):
		return "error presence"
	case a.Error != nil && !sameStanzaError(a.Error, b.Error):
		return "error"
	}
	return ""
}

func sameStanzaError(a, b *iq.StanzaError) bool {
	return a.Type == b.Type && a.Condition == b.Condition && a.Text == b.Text &&
		a.Lang == b.Lang && a.By == b.By && a.Target == b.Target && a.App.Equal(b.App)
}

// encodeTokens writes q's AppendTokens through an encoding/xml Encoder, as
// a token-based stack (mellium.im/xmpp's session) does.
func encodeTokens(q *iq.IQ) ([]byte, error) {
	toks, err := q.AppendTokens(nil)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := xml.NewEncoder(&buf)
	for _, tok := range toks {
		if err := enc.EncodeToken(tok); err != nil {
			return nil, err
		}
	}
	if err := enc.Flush(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// iqFromDecoder reads data's first element with IQFromTokens, as a
// token-based stack hands it out: the element's tokens from an
// encoding/xml Decoder, copied, the last one returned together with
// io.EOF (which an xml.TokenReader may do).
func iqFromDecoder(data []byte) (*iq.IQ, error) {
	d := xml.NewDecoder(bytes.NewReader(data))
	var start xml.StartElement
	for {
		tok, err := d.Token()
		if err != nil {
			return nil, err
		}
		if s, ok := tok.(xml.StartElement); ok {
			start = s.Copy()
			break
		}
	}
	var toks []xml.Token
	for depth := 1; depth > 0; {
		tok, err := d.Token()
		if err != nil {
			return nil, err
		}
		switch tok.(type) {
		case xml.StartElement:
			depth++
		case xml.EndElement:
			depth--
		}
		toks = append(toks, xml.CopyToken(tok))
	}
	return iq.IQFromTokens(start, &lastWithEOF{toks: toks})
}

// lastWithEOF yields toks, the last one together with io.EOF.
type lastWithEOF struct{ toks []xml.Token }

func (r *lastWithEOF) Token() (xml.Token, error) {
	if len(r.toks) == 0 {
		return nil, io.EOF
	}
	t := r.toks[0]
	r.toks = r.toks[1:]
	if len(r.toks) == 0 {
		return t, io.EOF
	}
	return t, nil
}

func FuzzIQUnmarshal(f *testing.F) {
	f.Add([]byte(`<iq type='get' id='a1'><query xmlns='jabber:iq:roster'/></iq>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var first iq.IQ
		err := xml.Unmarshal(data, &first)
		// IQFromTokens accepts and reads what UnmarshalXML does.
		fromTokens, tokErr := iqFromDecoder(data)
		if (err == nil) != (tokErr == nil) {
			t.Fatalf("xml.Unmarshal: %v; IQFromTokens: %v\n%s", err, tokErr, data)
		}
		if err != nil {
			return
		}
		if d := sameIQ(&first, fromTokens); d != "" {
			t.Fatalf("IQFromTokens read another %s:\nin: %s", d, data)
		}
		_ = first.Validate()
		// Both encoders must write what decodes back to the same IQ.
		fast, err := first.AppendXML(nil)
		if err != nil {
			t.Fatalf("AppendXML of a decoded IQ: %v", err)
		}
		std, err := xml.Marshal(&first)
		if err != nil {
			t.Fatalf("xml.Marshal of a decoded IQ: %v", err)
		}
		toks, err := encodeTokens(&first)
		if err != nil {
			t.Fatalf("AppendTokens of a decoded IQ: %v", err)
		}
		for name, enc := range map[string][]byte{"AppendXML": fast, "xml.Marshal": std, "AppendTokens": toks} {
			var second iq.IQ
			if err := xml.Unmarshal(enc, &second); err != nil {
				t.Fatalf("%s output does not decode: %v\n%s", name, err, enc)
			}
			if d := sameIQ(&first, &second); d != "" {
				t.Fatalf("%s round trip changed the %s:\nin:  %s\nout: %s", name, d, data, enc)
			}
		}
	})
}

func FuzzElementRoundTrip(f *testing.F) {
	f.Add([]byte(`<a xmlns='u:1' xmlns:p='u:2' p:x='1'>t<b/>u<p:c>v</p:c></a>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var first iq.Element
		if err := xml.Unmarshal(data, &first); err != nil {
			return
		}
		fast, err := first.AppendXML(nil)
		if err != nil {
			t.Fatalf("AppendXML of a decoded element: %v", err)
		}
		std, err := xml.Marshal(&first)
		if err != nil {
			t.Fatalf("xml.Marshal of a decoded element: %v", err)
		}
		for name, enc := range map[string][]byte{"AppendXML": fast, "xml.Marshal": std} {
			var second iq.Element
			if err := xml.Unmarshal(enc, &second); err != nil {
				t.Fatalf("%s output does not decode: %v\n%s", name, err, enc)
			}
			if !first.Equal(&second) {
				t.Fatalf("%s round trip changed the element:\nin:  %s\nout: %s", name, data, enc)
			}
		}
	})
}

func FuzzStanzaError(f *testing.F) {
	f.Add([]byte(`<error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var first iq.StanzaError
		if err := xml.Unmarshal(data, &first); err != nil {
			// Only input that holds no well-formed element may fail.
			var syn *xml.SyntaxError
			if !errors.As(err, &syn) && !errors.Is(err, io.EOF) {
				t.Fatalf("decode error that is not a syntax error: %v", err)
			}
			return
		}
		if !first.Condition.Valid() {
			t.Fatalf("condition %q is not one of RFC 6120's", first.Condition)
		}
		_ = first.Error()
		enc, err := xml.Marshal(&first)
		if err != nil {
			t.Fatalf("xml.Marshal of a decoded error: %v", err)
		}
		var second iq.StanzaError
		if err := xml.Unmarshal(enc, &second); err != nil {
			t.Fatalf("output does not decode: %v\n%s", err, enc)
		}
		// A missing or unknown type is written as cancel.
		if !first.Type.Valid() {
			first.Type = iq.Cancel
		}
		if !sameStanzaError(&first, &second) {
			t.Fatalf("round trip changed the error:\nin:  %s\nout: %s\n%+v\n%+v", data, enc, first, second)
		}
	})
}

// FuzzParseElement checks the package's own decoder (ParseElement, which
// stream.Conn uses through ElementBuilder) against encoding/xml: both
// accept or both reject, and what they build is equal.
//
// The one allowed difference: UnmarshalXML sees names only after
// encoding/xml replaced their prefixes, so an undeclared prefix p is
// missed there when some declaration in the element binds the namespace
// "p" itself (see Element.UnmarshalXML); ParseElement reads the prefixes.
func FuzzParseElement(f *testing.F) {
	f.Add([]byte(`<a xmlns='u:1' xmlns:p='u:2' p:x='1'>t<b/>u<![CDATA[<v>]]><p:c>&amp;&#x41;</p:c></a>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var want iq.Element
		wantErr := xml.Unmarshal(data, &want)
		got, err := iq.ParseElement(data)
		if err != nil && wantErr == nil && undeclaredButAmbiguous(err, data) {
			return
		}
		if (err == nil) != (wantErr == nil) {
			t.Fatalf("ParseElement error %v, encoding/xml error %v, for %q", err, wantErr, data)
		}
		if err == nil && !got.Equal(&want) {
			t.Fatalf("ParseElement built %s, encoding/xml %s, for %q", got, &want, data)
		}
	})
}

// undeclaredButAmbiguous reports whether err is ParseElement's error for
// an undeclared prefix p while data declares a namespace named "p", or
// declares p empty (xmlns:p="", which Namespaces in XML 1.0 forbids: the
// decoder leaves p unbound, where encoding/xml binds it to no namespace).
func undeclaredButAmbiguous(err error, data []byte) bool {
	var syn *xml.SyntaxError
	const lead = "undeclared namespace prefix "
	if !errors.As(err, &syn) || !strings.HasPrefix(syn.Msg, lead) {
		return false
	}
	p, uerr := strconv.Unquote(strings.TrimPrefix(syn.Msg, lead))
	return uerr == nil && p != "" &&
		(bytes.Contains(data, []byte("'"+p+"'")) || bytes.Contains(data, []byte(`"`+p+`"`)) ||
			bytes.Contains(data, []byte("xmlns:"+p+"=''")) || bytes.Contains(data, []byte(`xmlns:`+p+`=""`)))
}
