package iq

import (
	"encoding/xml"
	"errors"
	"fmt"
	"slices"
)

// Type is the type attribute of an IQ (RFC 6120 §8.2.3).
type Type string

// The four IQ types.
const (
	TypeGet    Type = "get"    // a request for information
	TypeSet    Type = "set"    // a request to change something
	TypeResult Type = "result" // a successful response
	TypeError  Type = "error"  // a failed response
)

// Stream namespaces an <iq> may be read in, besides no namespace at all.
const (
	NSClient    = "jabber:client"
	NSServer    = "jabber:server"
	NSComponent = "jabber:component:accept"
)

// IQ is an info/query stanza.
//
// The zero value is an empty IQ; fill in the fields to build one. Payload is
// the one child element of a get or set, and the optional one of a result;
// Error is the <error/> of an IQ of type error.
//
// Decoding is lenient and validation separate: xml.Unmarshal of any
// namespace-well-formed <iq> succeeds, whatever its type, id or number of children,
// and Validate reports what breaks RFC 6120 §8.2.3. Child elements beyond
// the first are kept (unexported) for Validate and for re-encoding.
//
// An IQ is a plain value: it is not safe to modify concurrently with any
// other use, but any number of goroutines may read or encode it at once.
type IQ struct {
	ID   string
	To   string
	From string
	// Lang is the xml:lang attribute.
	Lang    string
	Type    Type
	Payload *Element
	Error   *StanzaError

	// extra holds child elements beyond Payload (and beyond Error for an
	// IQ of type error), in document order: none in a well-formed IQ, so
	// a pointer, which keeps the IQ (and a Call that holds one) within a
	// smaller size class than a slice would.
	extra *[]*Element
	// tree is the memory of the element tree the IQ was read into, when
	// Release may give it back (see treeMem).
	tree *treeMem
}

// extras returns the child elements beyond Payload (see IQ.extra).
func (iq *IQ) extras() []*Element {
	if iq.extra == nil {
		return nil
	}
	return *iq.extra
}

// NumChildren reports how many child elements the IQ has besides the
// <error/> of an error IQ: 0 or 1 for a well-formed IQ.
func (iq *IQ) NumChildren() int {
	n := len(iq.extras())
	if iq.Payload != nil {
		n++
	}
	return n
}

// IsRequest reports whether the IQ is a get or a set.
func (iq *IQ) IsRequest() bool { return iq.Type == TypeGet || iq.Type == TypeSet }

// IsResponse reports whether the IQ is a result or an error.
func (iq *IQ) IsResponse() bool { return iq.Type == TypeResult || iq.Type == TypeError }

// Validate reports every way the IQ breaks RFC 6120 §8.2.3: a missing id, a
// type other than get, set, result or error, a get or set without exactly
// one child element, a result with more than one, an error without
// <error/>. The error wraps ErrInvalid, once per problem (errors.Join).
func (iq *IQ) Validate() error {
	var errs []error
	if iq.ID == "" {
		errs = append(errs, invalidf("missing id"))
	}
	n := iq.NumChildren()
	switch iq.Type {
	case TypeGet, TypeSet:
		if iq.Error != nil { // written as a child like any other
			n++
		}
		if n != 1 {
			errs = append(errs, invalidf("%s must have exactly one child element, has %d", iq.Type, n))
		}
	case TypeResult:
		if n > 1 {
			errs = append(errs, invalidf("result must have at most one child element, has %d", n))
		}
	case TypeError:
		if iq.Error == nil {
			errs = append(errs, invalidf("error without an <error/> child"))
		}
		if n > 1 {
			errs = append(errs, invalidf("error must have at most one child besides <error/>, has %d", n))
		}
	case "":
		errs = append(errs, invalidf("missing type"))
	default:
		errs = append(errs, invalidf("unknown type %q", iq.Type))
	}
	return errors.Join(errs...)
}

// checkRequest refuses, before anything is sent, a request the peer could
// only answer with an error: not a get or a set, without exactly one child
// element (an <error/> counts as one), or whose payload is in no namespace
// (written without an xmlns, it would take the stream's, jabber:client,
// which no service answers in).
func checkRequest(req *IQ) error {
	if req == nil {
		return invalidf("nil request")
	}
	if !req.IsRequest() {
		return invalidf("request of type %q: only get and set are requests", req.Type)
	}
	n := req.NumChildren()
	if req.Error != nil {
		n++
	}
	if n != 1 {
		return invalidf("%s with %d child elements, want exactly one", req.Type, n)
	}
	if req.Payload == nil {
		return invalidf("%s whose one child is not its Payload", req.Type)
	}
	if req.Payload.Name.Space == "" {
		return invalidf("%s payload <%s/> in no namespace", req.Type, req.Payload.Name.Local)
	}
	return nil
}

// Result returns a result reply to iq carrying payload (nil for an empty
// result): same id, to the request's sender, from its recipient.
func (iq *IQ) Result(payload *Element) *IQ {
	r := new(IQ)
	iq.fillResult(r, payload)
	return r
}

// fillResult makes r the result Result returns (a Callee fills one from
// its pool so).
func (iq *IQ) fillResult(r *IQ, payload *Element) {
	*r = IQ{ID: iq.ID, To: iq.From, From: iq.To, Type: TypeResult, Payload: payload}
}

// ErrorReply returns an error reply to iq carrying err, addressed as
// Result's. The request's payload is not echoed back: RFC 6120 §8.3.1
// allows it, but it may be large, and it is of no use to the requester,
// who still has it.
func (iq *IQ) ErrorReply(err *StanzaError) *IQ {
	return &IQ{ID: iq.ID, To: iq.From, From: iq.To, Type: TypeError, Error: err}
}

// String returns the IQ serialized as XML, for logs and tests.
func (iq *IQ) String() string {
	b, err := iq.AppendXML(nil)
	if err != nil {
		return errorComment(err)
	}
	return string(b)
}

// AppendXML appends the IQ's serialization to b: an <iq> with no xmlns, so
// that it takes the stream's. It is the fast path behind MarshalXML's
// output, for stream writers.
//
// An IQ that cannot be written (a name in it is not an XML name) fails
// with an error wrapping ErrEncode.
func (iq *IQ) AppendXML(b []byte) ([]byte, error) {
	b, err := iq.appendXML(b)
	return b, encodeErr(err)
}

func (iq *IQ) appendXML(b []byte) ([]byte, error) {
	b = append(b, "<iq"...)
	b = appendAttr(b, "type", string(iq.Type))
	b = appendAttr(b, "id", iq.ID)
	b = appendAttr(b, "to", iq.To)
	b = appendAttr(b, "from", iq.From)
	if iq.Lang != "" {
		b = append(b, ` xml:lang="`...)
		b = appendEscaped(b, iq.Lang, true)
		b = append(b, '"')
	}
	if iq.Payload == nil && iq.extra == nil && iq.Error == nil {
		return append(b, "/>"...), nil
	}
	b = append(b, '>')
	var err error
	if iq.Payload != nil {
		if b, err = appendElement(b, iq.Payload, ""); err != nil {
			return b, err
		}
	}
	for _, e := range iq.extras() {
		if b, err = appendElement(b, e, ""); err != nil {
			return b, err
		}
	}
	if iq.Error != nil {
		if b, err = appendStanzaError(b, iq.Error); err != nil {
			return b, err
		}
	}
	return append(b, "</iq>"...), nil
}

func appendAttr(b []byte, name, value string) []byte {
	if value == "" {
		return b
	}
	b = append(b, ' ')
	b = append(b, name...)
	b = append(b, `="`...)
	b = appendEscaped(b, value, true)
	return append(b, '"')
}

func appendStanzaError(b []byte, e *StanzaError) ([]byte, error) {
	b = append(b, "<error"...)
	b = appendAttr(b, "type", string(e.errType()))
	b = appendAttr(b, "by", e.By)
	b = append(b, "><"...)
	b = append(b, e.condition()...)
	b = append(b, ` xmlns="`+NSStanzas+`"`...)
	if e.Target != "" {
		b = append(b, '>')
		b = appendEscaped(b, e.Target, false)
		b = append(b, "</"...)
		b = append(b, e.condition()...)
		b = append(b, '>')
	} else {
		b = append(b, "/>"...)
	}
	if e.Text != "" {
		b = append(b, `<text xmlns="`+NSStanzas+`"`...)
		if e.Lang != "" {
			b = append(b, ` xml:lang="`...)
			b = appendEscaped(b, e.Lang, true)
			b = append(b, '"')
		}
		b = append(b, '>')
		b = appendEscaped(b, e.Text, false)
		b = append(b, "</text>"...)
	}
	if e.App != nil {
		var err error
		if b, err = appendElement(b, e.App, ""); err != nil {
			return b, err
		}
	}
	return append(b, "</error>"...), nil
}

// MarshalXML implements xml.Marshaler. It writes <iq> with no xmlns, so
// that the IQ takes its stream's namespace; the start element passed in is
// ignored.
func (iq *IQ) MarshalXML(enc *xml.Encoder, _ xml.StartElement) error {
	if err := iq.encodeTokens(enc); err != nil {
		return err
	}
	return enc.Flush()
}

// AppendTokens appends the IQ to toks as XML tokens, for a stack that
// writes tokens rather than bytes (mellium.im/xmpp's Session.Send, say):
// the tokens MarshalXML encodes, an <iq> with no namespace, so that it
// takes its stream's, then its payload, any further children and its
// error, each element in its namespace (xml.Name.Space), with an
// xmlns="" attribute where an element in no namespace sits below one in
// a namespace. A writer such as encoding/xml's Encoder turns them into
// what AppendXML writes, up to the choice of prefixes and quotes.
//
// The tokens share no memory with the IQ that a writer could change:
// each StartElement's Attr is a slice of its own (character data is
// copied by the conversion to xml.CharData). It costs an allocation per
// token; AppendXML, which costs none, is the fast path for a writer that
// takes bytes.
//
// An IQ that cannot be written (see ErrEncode) fails with an error
// wrapping ErrEncode, as AppendXML does, and toks is returned as it was
// given.
func (iq *IQ) AppendTokens(toks []xml.Token) ([]xml.Token, error) {
	n, attrs := iq.tokenRoom()
	l := tokenList{toks: slices.Grow(toks, n), attrs: make([]xml.Attr, 0, attrs)}
	if err := iq.encodeTokens(&l); err != nil {
		return toks, encodeErr(err)
	}
	return l.toks, nil
}

// tokenRoom returns at least how many tokens encodeTokens writes, and how
// many attributes their start elements hold in all.
func (iq *IQ) tokenRoom() (toks, attrs int) {
	toks, attrs = 2, 5 // <iq>, </iq>; type, id, to, from, xml:lang
	add := func(e *Element) {
		t, a := e.tokenRoom()
		toks, attrs = toks+t, attrs+a
	}
	if iq.Payload != nil {
		add(iq.Payload)
	}
	for _, e := range iq.extras() {
		add(e)
	}
	if e := iq.Error; e != nil {
		toks, attrs = toks+8, attrs+3 // <error type by>, condition, text, xml:lang
		if e.App != nil {
			add(e.App)
		}
	}
	return toks, attrs
}

// encodeTokens writes the IQ's tokens through enc, without flushing.
func (iq *IQ) encodeTokens(enc tokenEncoder) error {
	start := xml.StartElement{Name: xml.Name{Local: "iq"}, Attr: make([]xml.Attr, 0, 5)}
	for _, a := range [...]struct{ name, value string }{
		{"type", string(iq.Type)}, {"id", iq.ID}, {"to", iq.To}, {"from", iq.From},
	} {
		if a.value != "" {
			start.Attr = append(start.Attr, xml.Attr{Name: xml.Name{Local: a.name}, Value: a.value})
		}
	}
	if iq.Lang != "" {
		start.Attr = append(start.Attr, xml.Attr{Name: xml.Name{Space: xmlURL, Local: "lang"}, Value: iq.Lang})
	}
	if err := enc.EncodeToken(start); err != nil {
		return err
	}
	if iq.Payload != nil {
		if err := encodeElement(enc, iq.Payload, ""); err != nil {
			return err
		}
	}
	for _, e := range iq.extras() {
		if err := encodeElement(enc, e, ""); err != nil {
			return err
		}
	}
	if iq.Error != nil {
		if err := encodeStanzaError(enc, iq.Error); err != nil {
			return err
		}
	}
	return enc.EncodeToken(start.End())
}

// isStreamNS reports whether space is a namespace an <iq> may be in.
func isStreamNS(space string) bool {
	return space == "" || space == NSClient || space == NSServer || space == NSComponent
}

// UnmarshalXML implements xml.Unmarshaler. It reads an <iq> in
// jabber:client, jabber:server, jabber:component:accept or no namespace,
// and fails only on XML that is not namespace-well-formed (as
// Element.UnmarshalXML does: an undeclared prefix or an attribute given
// twice included) or on an element that is not such an <iq>.
func (iq *IQ) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	if start.Name.Local != "iq" || !isStreamNS(start.Name.Space) {
		return fmt.Errorf("iq: cannot decode <%s xmlns=%q> as an IQ", start.Name.Local, start.Name.Space)
	}
	var el Element
	if err := decodeElement(decoderSource{d}, start, &el); err != nil {
		return err
	}
	*iq = IQ{}
	iq.fromElement(&el)
	return nil
}

// IQFromTokens reads an <iq> from a stack that hands out its stanzas as
// XML tokens (mellium.im/xmpp's session, say): start is its start
// element, and r yields the rest, up to and including the end element,
// as an encoding/xml Decoder's Token does (each name in its namespace,
// end elements matching their starts). It accepts and refuses what
// UnmarshalXML does, and reads the IQ the same way, without putting an
// encoding/xml Decoder of its own over r. An r that ends, or yields an
// end element that does not match, before the <iq> is complete is a
// syntax error; an error of r is returned as it is. A token r returns
// together with an error is taken, the error dropped, as a Decoder over
// r does: r is asked again for what follows.
func IQFromTokens(start xml.StartElement, r xml.TokenReader) (*IQ, error) {
	if start.Name.Local != "iq" || !isStreamNS(start.Name.Space) {
		return nil, fmt.Errorf("iq: cannot decode <%s xmlns=%q> as an IQ", start.Name.Local, start.Name.Space)
	}
	var el Element
	if err := decodeElement(&readerSource{r: r, open: []xml.Name{start.Name}}, start, &el); err != nil {
		return nil, err
	}
	in := new(IQ)
	in.fromElement(&el)
	return in, nil
}

// fromElement fills iq from a decoded <iq> element.
func (iq *IQ) fromElement(el *Element) {
	for _, a := range el.Attr {
		switch {
		case a.Name.Space == "" && a.Name.Local == "id":
			iq.ID = a.Value
		case a.Name.Space == "" && a.Name.Local == "type":
			iq.Type = Type(a.Value)
		case a.Name.Space == "" && a.Name.Local == "to":
			iq.To = a.Value
		case a.Name.Space == "" && a.Name.Local == "from":
			iq.From = a.Value
		case a.Name.Space == xmlURL && a.Name.Local == "lang":
			iq.Lang = a.Value
		}
	}
	for c := range el.Children() {
		if iq.Type == TypeError && iq.Error == nil && c.Name.Local == "error" &&
			(c.Name.Space == el.Name.Space || isStreamNS(c.Name.Space)) {
			iq.Error = stanzaErrorFrom(c)
			continue
		}
		if iq.Payload == nil {
			iq.Payload = c
		} else {
			if iq.extra == nil {
				iq.extra = new([]*Element)
			}
			*iq.extra = append(*iq.extra, c)
		}
	}
}
