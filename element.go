package iq

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"iter"
	"strings"

	"github.com/xmpp-iq/iq/internal/xmldec"
)

// xmlURL is the namespace bound to the reserved "xml" prefix.
const xmlURL = "http://www.w3.org/XML/1998/namespace"

// Element is a generic XML element: the payload of an IQ, or any part of it.
//
// An Element holds the XML Infoset of what it was decoded from: namespace
// qualified names, attributes, and its content (character data and child
// elements, in document order). Namespace prefixes are not kept, only the
// namespaces they stand for, so re-encoding an Element may declare the same
// namespaces with other prefixes; comments and processing instructions, which
// RFC 6120 §11.1 forbids on XMPP streams, are dropped.
//
// Name.Space is the element's namespace; an empty one means no namespace.
// At the top of a stanza such an element is written without a declaration
// (and so takes the stream's namespace); below a parent in a namespace it
// is written with xmlns="", which keeps it in none. A decoded Element always
// carries the namespace it was in.
//
// The two reserved namespaces of XML Namespaces are never declared. An
// element or attribute in the XML namespace (http://www.w3.org/XML/1998/namespace)
// is written with the xml prefix, as in xml:lang; such an element leaves the
// default namespace its children are written in as it was (at the top of a
// stanza, its children in no namespace get xmlns=""). Nothing can be
// written in the xmlns namespace (http://www.w3.org/2000/xmlns/), whose
// attributes are namespace declarations: writing an element or attribute
// there fails with an error wrapping ErrInvalid.
//
// An Element is a plain value: it is not safe to modify concurrently with any
// other use, but any number of goroutines may read or encode it at once.
type Element struct {
	Name xml.Name
	// Attr holds the element's attributes, without namespace declarations
	// (xmlns and xmlns:*), which are implied by the names.
	Attr []xml.Attr
	// Content is what the element holds, in document order.
	Content []Node
}

// Node is one piece of an Element's content: a child element when Element
// is not nil, else character data.
type Node struct {
	Element *Element
	Text    string
}

// NewElement returns an element named local in namespace space, with the
// given attributes as name, value pairs:
//
//	iq.NewElement("jabber:iq:version", "query")
//	iq.NewElement("urn:example:echo", "item", "id", "7", "kind", "test")
//
// It panics if attrs has an odd number of strings, as that is a programming
// error.
func NewElement(space, local string, attrs ...string) *Element {
	if len(attrs)%2 != 0 {
		panic("iq: NewElement: odd number of attribute strings")
	}
	e := &Element{Name: xml.Name{Space: space, Local: local}}
	if len(attrs) > 0 {
		e.Attr = make([]xml.Attr, 0, len(attrs)/2)
		for i := 0; i < len(attrs); i += 2 {
			e.Attr = append(e.Attr, xml.Attr{Name: xml.Name{Local: attrs[i]}, Value: attrs[i+1]})
		}
	}
	return e
}

// SetAttr sets the unqualified attribute local to value, replacing an
// existing one, and returns e so that calls chain.
func (e *Element) SetAttr(local, value string) *Element {
	for i := range e.Attr {
		if e.Attr[i].Name.Space == "" && e.Attr[i].Name.Local == local {
			e.Attr[i].Value = value
			return e
		}
	}
	e.Attr = append(e.Attr, xml.Attr{Name: xml.Name{Local: local}, Value: value})
	return e
}

// AttrValue returns the value of the unqualified attribute local, or "" if
// e has none.
func (e *Element) AttrValue(local string) string {
	if e == nil {
		return ""
	}
	for _, a := range e.Attr {
		if a.Name.Space == "" && a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}

// Append adds children to the end of e's content and returns e. Nil children
// are skipped.
func (e *Element) Append(children ...*Element) *Element {
	for _, c := range children {
		if c != nil {
			e.Content = append(e.Content, Node{Element: c})
		}
	}
	return e
}

// AppendText adds character data to the end of e's content and returns e.
func (e *Element) AppendText(text string) *Element {
	if text == "" {
		return e
	}
	if n := len(e.Content); n > 0 && e.Content[n-1].Element == nil {
		e.Content[n-1].Text += text
		return e
	}
	e.Content = append(e.Content, Node{Text: text})
	return e
}

// Child returns e's first child element named local in namespace space, or
// nil if it has none. It is safe to call on a nil Element.
func (e *Element) Child(space, local string) *Element {
	if e == nil {
		return nil
	}
	for _, n := range e.Content {
		if n.Element != nil && n.Element.Name.Local == local && n.Element.Name.Space == space {
			return n.Element
		}
	}
	return nil
}

// Children yields e's child elements in document order.
func (e *Element) Children() iter.Seq[*Element] {
	return func(yield func(*Element) bool) {
		if e == nil {
			return
		}
		for _, n := range e.Content {
			if n.Element != nil && !yield(n.Element) {
				return
			}
		}
	}
}

// NumChildren reports how many child elements e has.
func (e *Element) NumChildren() int {
	if e == nil {
		return 0
	}
	n := 0
	for _, c := range e.Content {
		if c.Element != nil {
			n++
		}
	}
	return n
}

// Text returns e's own character data, concatenated, without that of its
// descendants. It is safe to call on a nil Element.
func (e *Element) Text() string {
	if e == nil {
		return ""
	}
	var only string
	var b *strings.Builder
	for _, n := range e.Content {
		if n.Element != nil || n.Text == "" {
			continue
		}
		switch {
		case b != nil:
			b.WriteString(n.Text)
		case only == "":
			only = n.Text
		default:
			b = new(strings.Builder)
			b.WriteString(only)
			b.WriteString(n.Text)
		}
	}
	if b != nil {
		return b.String()
	}
	return only
}

// Copy returns a deep copy of e.
func (e *Element) Copy() *Element {
	if e == nil {
		return nil
	}
	c := &Element{Name: e.Name}
	if e.Attr != nil {
		c.Attr = append([]xml.Attr(nil), e.Attr...)
	}
	if e.Content != nil {
		c.Content = make([]Node, len(e.Content))
		for i, n := range e.Content {
			c.Content[i] = Node{Element: n.Element.Copy(), Text: n.Text}
		}
	}
	return c
}

// Equal reports whether e and o hold the same names, attributes (in order)
// and content. Adjacent pieces of character data compare as one.
func (e *Element) Equal(o *Element) bool {
	if e == nil || o == nil {
		return e == o
	}
	if e.Name != o.Name || len(e.Attr) != len(o.Attr) {
		return false
	}
	for i := range e.Attr {
		if e.Attr[i] != o.Attr[i] {
			return false
		}
	}
	a, b := mergedContent(e.Content), mergedContent(o.Content)
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Text != b[i].Text || !a[i].Element.Equal(b[i].Element) {
			return false
		}
	}
	return true
}

// mergedContent joins adjacent text nodes and drops empty ones, so that
// content built in pieces compares equal to the same content decoded.
func mergedContent(in []Node) []Node {
	needs := false
	for i, n := range in {
		if n.Element == nil && (n.Text == "" || (i > 0 && in[i-1].Element == nil)) {
			needs = true
			break
		}
	}
	if !needs {
		return in
	}
	out := make([]Node, 0, len(in))
	for _, n := range in {
		if n.Element == nil {
			if n.Text == "" {
				continue
			}
			if k := len(out); k > 0 && out[k-1].Element == nil {
				out[k-1].Text += n.Text
				continue
			}
		}
		out = append(out, n)
	}
	return out
}

// String returns e serialized as XML, for logs and tests.
func (e *Element) String() string {
	if e == nil {
		return ""
	}
	b, err := appendElement(nil, e, "")
	if err != nil {
		return errorComment(err)
	}
	return string(b)
}

// AppendXML appends e's serialization to b, with the package's own
// writer: the same XML as MarshalXML, faster. It fails, leaving b's new
// bytes unusable, when a name in e is not an XML NCName, with an error
// wrapping ErrEncode.
func (e *Element) AppendXML(b []byte) ([]byte, error) {
	b, err := appendElement(b, e, "")
	return b, encodeErr(err)
}

// MarshalElement encodes v with encoding/xml and returns the result as an
// Element. The element's name comes from v's XMLName field or type, as
// xml.Marshal decides.
//
// Values of a type the struct codec supports are built straight into the
// tree, without serialising them (GetAs's godoc lists what it supports);
// any other value goes through xml.Marshal and is parsed back.
func MarshalElement(v any) (*Element, error) {
	if e := encodeFast(v); e != nil {
		return e, nil
	}
	return marshalElementXML(v)
}

// marshalElementXML is MarshalElement through encoding/xml: xml.Marshal,
// then parsed back.
func marshalElementXML(v any) (*Element, error) {
	b, err := xml.Marshal(v)
	if err != nil {
		return nil, wrapErr("iq: marshal element", err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, fmt.Errorf("iq: marshal element: %T encodes to nothing", v)
	}
	e, err := ParseElement(b)
	if err != nil {
		return nil, wrapErr("iq: marshal element", err)
	}
	return e, nil
}

// Decode decodes e into v with encoding/xml, as xml.Unmarshal would decode
// e's serialization; an element that cannot be serialised (a hand-built
// one with an invalid name, say) is an error. The typed calls and
// handlers (GetAs, HandleGet…) decode payloads read from the stream
// straight from the tree instead.
func (e *Element) Decode(v any) error {
	if e == nil {
		return errors.New("iq: decode of a nil element")
	}
	return e.decodeXML(v)
}

// decodeXML is Decode: e serialised, then xml.Unmarshal.
func (e *Element) decodeXML(v any) error {
	b, err := appendElement(nil, e, "")
	if err != nil {
		return err
	}
	if err := xml.Unmarshal(b, v); err != nil {
		return wrapErr(fmt.Sprintf("iq: decode <%s xmlns=%q>", e.Name.Local, e.Name.Space), err)
	}
	return nil
}

// MarshalXML implements xml.Marshaler. The start element passed in is
// ignored: e is written under its own name.
func (e *Element) MarshalXML(enc *xml.Encoder, _ xml.StartElement) error {
	if err := encodeElement(enc, e, ""); err != nil {
		return err
	}
	return enc.Flush()
}

// tokenEncoder is what the token writers (encodeElement,
// encodeStanzaError, IQ.encodeTokens) write to: an *xml.Encoder, for
// MarshalXML, or a tokenList, for IQ.AppendTokens.
type tokenEncoder interface {
	EncodeToken(t xml.Token) error
}

// tokenList collects tokens, each start element with an Attr slice of its
// own: the tree's own slices must not reach a writer that may change them
// (mellium.im/xmpp's session filters attributes in place), and a
// StartElement built here may share its attributes with the tree. The
// copies are carved from one array, each capped at its length, so that a
// writer appending to one cannot reach the next.
type tokenList struct {
	toks  []xml.Token
	attrs []xml.Attr // room for the copies
}

func (l *tokenList) EncodeToken(t xml.Token) error {
	if s, ok := t.(xml.StartElement); ok && len(s.Attr) == 0 {
		s.Attr = nil // not an empty slice of the tree's, with room to append
		t = s
	} else if ok {
		if cap(l.attrs)-len(l.attrs) < len(s.Attr) { // tokenRoom's count fell short
			l.attrs = make([]xml.Attr, 0, max(16, 2*len(s.Attr)))
		}
		n := len(l.attrs)
		l.attrs = append(l.attrs, s.Attr...)
		s.Attr = l.attrs[n:len(l.attrs):len(l.attrs)]
		t = s
	}
	l.toks = append(l.toks, t)
	return nil
}

// tokenRoom returns at least how many tokens encodeElement writes for e,
// and how many attributes their start elements hold in all (with the
// xmlns="" an element may need).
func (e *Element) tokenRoom() (toks, attrs int) {
	toks, attrs = 2, len(e.Attr)+1
	for _, n := range e.Content {
		if n.Element != nil {
			t, a := n.Element.tokenRoom()
			toks, attrs = toks+t, attrs+a
		} else {
			toks++
		}
	}
	return toks, attrs
}

// encodeElement writes e through enc. parentNS is the default namespace in
// scope, so that an element in no namespace below one that has one gets the
// xmlns="" that keeps it out of its parent's.
func encodeElement(enc tokenEncoder, e *Element, parentNS string) error {
	if !isNCName(e.Name.Local) {
		return fmt.Errorf("iq: invalid element name %q", e.Name.Local)
	}
	if err := checkReservedNS("element", e.Name); err != nil {
		return err
	}
	if err := checkNamespace("element", e.Name); err != nil {
		return err
	}
	for _, a := range e.Attr {
		if isNSDecl(a.Name) {
			continue
		}
		if !isNCName(a.Name.Local) {
			return fmt.Errorf("iq: invalid attribute name %q", a.Name.Local)
		}
		if err := checkReservedNS("attribute", a.Name); err != nil {
			return err
		}
		if err := checkNamespace("attribute", a.Name); err != nil {
			return err
		}
	}
	if err := checkUniqueAttrs(e.Attr); err != nil {
		return err
	}
	name, childNS := e.Name, e.Name.Space
	if name.Space == xmlURL {
		// encoding/xml would declare the XML namespace as the default
		// one, which XML Namespaces forbid: write the reserved prefix
		// instead, as a name in no namespace that holds it, and leave the
		// default namespace to the children as it was.
		name, childNS = xml.Name{Local: "xml:" + name.Local}, xmlChildNS(parentNS)
	}
	start := xml.StartElement{Name: name}
	attrs := e.Attr
	leave := e.Name.Space == "" && parentNS != "" // its parent's namespace
	if leave {
		attrs = append([]xml.Attr{{Name: xml.Name{Local: "xmlns"}}}, attrs...)
	}
	start.Attr = encodableAttrs(attrs, leave)
	if err := enc.EncodeToken(start); err != nil {
		return err
	}
	for _, n := range e.Content {
		var err error
		if n.Element != nil {
			err = encodeElement(enc, n.Element, childNS)
		} else if n.Text != "" {
			err = enc.EncodeToken(xml.CharData(n.Text))
		}
		if err != nil {
			return err
		}
	}
	return enc.EncodeToken(xml.EndElement{Name: name})
}

// encodableAttrs returns attrs as encoding/xml's Encoder is to be given
// them. Namespace declarations a user may have put in Attr are dropped:
// the Encoder writes its own, and a second one would be a duplicate
// attribute (keepFirst keeps the xmlns="" this package added itself). The
// prefix xml as a name's Space, which this package's writer takes for the
// XML namespace (see appendAttrs), becomes that namespace, which the
// Encoder writes as xml: (it would declare "xml" as a namespace of its
// own). attrs is copied only when something changes.
func encodableAttrs(attrs []xml.Attr, keepFirst bool) []xml.Attr {
	change := false
	for i, a := range attrs {
		if (isNSDecl(a.Name) && !(keepFirst && i == 0)) || a.Name.Space == "xml" {
			change = true
			break
		}
	}
	if !change {
		return attrs
	}
	out := make([]xml.Attr, 0, len(attrs))
	for i, a := range attrs {
		if isNSDecl(a.Name) && !(keepFirst && i == 0) {
			continue
		}
		if a.Name.Space == "xml" {
			a.Name.Space = xmlURL
		}
		out = append(out, a)
	}
	return out
}

func isNSDecl(n xml.Name) bool {
	return n.Space == "xmlns" || (n.Space == "" && n.Local == "xmlns")
}

// UnmarshalXML implements xml.Unmarshaler. It fails on XML that is not
// well-formed, with encoding/xml's error, and on XML that is not
// namespace-well-formed, with a *xml.SyntaxError: a name that is not an
// NCName, a prefix that nothing declares, or an attribute given twice.
//
// encoding/xml hands over names with their prefixes already replaced, and
// an undeclared prefix p as the namespace "p", so the check for undeclared
// prefixes can only be told by the namespaces it sees: a namespace that
// could be a prefix (no ':', '/', '#' or '?' in it) must be declared
// within the element decoded, or be the Decoder's DefaultSpace. A relative
// namespace name declared outside the element decoded, a form Namespaces
// in XML deprecates, is therefore refused; ParseElement, which reads the
// XML itself, has no such limit.
func (e *Element) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	*e = Element{}
	return decodeElement(decoderSource{d}, start, e)
}

// tokenSource is what decodeElement reads: an encoding/xml Decoder
// (decoderSource), or the token reader of a stack that hands out its
// stanzas as tokens (readerSource, for IQFromTokens).
type tokenSource interface {
	Token() (xml.Token, error)
	// line is the input line for a syntax error; 0 when unknown.
	line() int
	// defaultSpace is the namespace a name in none is read in (see
	// nsScope.declared).
	defaultSpace() string
}

// decoderSource is an *xml.Decoder as a tokenSource.
type decoderSource struct{ d *xml.Decoder }

func (s decoderSource) Token() (xml.Token, error) { return s.d.Token() }
func (s decoderSource) line() int                 { l, _ := s.d.InputPos(); return l }
func (s decoderSource) defaultSpace() string      { return s.d.DefaultSpace }

// readerSource is an xml.TokenReader yielding what an encoding/xml
// Decoder's Token does, as a tokenSource, for the element whose start was
// read already (open holds its name). It checks what a Decoder checks and
// the reader of another stack might not: that each end element closes the
// element open, by the same name, and that the reader does not end before
// the element does. A token that comes with an error is taken and the
// error dropped, as a Decoder over a TokenReader does: the next call asks
// the reader again.
type readerSource struct {
	r    xml.TokenReader
	open []xml.Name
}

func (s *readerSource) Token() (xml.Token, error) {
	t, err := s.r.Token()
	if t == nil && err != nil {
		if err == io.EOF {
			err = &xml.SyntaxError{Msg: "unexpected EOF"}
		}
		return nil, err
	}
	switch tt := t.(type) {
	case xml.StartElement:
		s.open = append(s.open, tt.Name)
	case xml.EndElement:
		if len(s.open) == 0 {
			return nil, &xml.SyntaxError{Msg: fmt.Sprintf("unexpected end element </%s>", tt.Name.Local)}
		}
		if top := s.open[len(s.open)-1]; tt.Name != top {
			return nil, &xml.SyntaxError{Msg: fmt.Sprintf("element <%s xmlns=%q> closed by </%s xmlns=%q>",
				top.Local, top.Space, tt.Name.Local, tt.Name.Space)}
		}
		s.open = s.open[:len(s.open)-1]
	}
	return t, nil
}

func (s *readerSource) line() int            { return 0 }
func (s *readerSource) defaultSpace() string { return "" }

// decodeElement reads the content of start into e, up to and including the
// matching end element. It keeps its own stack rather than recursing, so
// deep nesting costs heap in proportion to the input, not Go stack, and
// its time is linear in the input: character data that comments,
// processing instructions or CDATA sections cut into many tokens is
// gathered in one buffer and becomes one string when the element's text
// ends, rather than being concatenated token by token.
//
// encoding/xml accepts names that are not namespace-well-formed, such as
// ":" or "a:b:c", prefixes nothing declares, and an attribute given twice;
// they are reported as a syntax error, as XML that is not well-formed is
// (see UnmarshalXML for how undeclared prefixes are told).
func decodeElement(d tokenSource, start xml.StartElement, e *Element) error {
	var ns nsScope
	if err := checkStart(d, start, &ns); err != nil {
		return err
	}
	e.Name = start.Name
	e.Attr = stripDecls(start.Attr)
	stack := []*Element{e}
	var text []byte // the open element's character data not yet in Content
	flush := func(top *Element) {
		if len(text) > 0 {
			top.Content = append(top.Content, Node{Text: string(text)})
			text = text[:0]
		}
	}
	for len(stack) > 0 {
		tok, err := d.Token()
		if err != nil {
			return err
		}
		top := stack[len(stack)-1]
		switch t := tok.(type) {
		case xml.StartElement:
			if err := checkStart(d, t, &ns); err != nil {
				return err
			}
			flush(top)
			child := &Element{Name: t.Name, Attr: stripDecls(t.Attr)}
			top.Content = append(top.Content, Node{Element: child})
			stack = append(stack, child)
		case xml.EndElement:
			flush(top)
			ns.pop()
			stack = stack[:len(stack)-1]
		case xml.CharData:
			text = append(text, t...)
		}
	}
	return nil
}

// nsScope holds the namespaces declared within the element being decoded
// through encoding/xml, for the undeclared-prefix check. Most elements
// declare a namespace or two, looked up in added itself; a map counts
// them once there are more than smallScope.
type nsScope struct {
	added []string       // namespaces declared, innermost last
	marks []int          // len(added) when each open element started
	vals  map[string]int // declared namespace → declarations in scope, once added grew past smallScope
}

// smallScope is how many declarations in scope nsScope searches in order
// before it counts them in a map.
const smallScope = 8

func (s *nsScope) push(attrs []xml.Attr) {
	s.marks = append(s.marks, len(s.added))
	for _, a := range attrs {
		if isNSDecl(a.Name) && a.Value != "" {
			s.added = append(s.added, a.Value)
			if s.vals != nil {
				s.vals[a.Value]++
			} else if len(s.added) > smallScope {
				s.vals = make(map[string]int, 2*len(s.added))
				for _, v := range s.added {
					s.vals[v]++
				}
			}
		}
	}
}

func (s *nsScope) pop() {
	if len(s.marks) == 0 {
		return
	}
	m := s.marks[len(s.marks)-1]
	s.marks = s.marks[:len(s.marks)-1]
	if s.vals != nil {
		for _, v := range s.added[m:] {
			if s.vals[v]--; s.vals[v] == 0 {
				delete(s.vals, v)
			}
		}
	}
	s.added = s.added[:m]
}

// inScope reports whether a declaration in scope binds space.
func (s *nsScope) inScope(space string) bool {
	if s.vals != nil {
		return s.vals[space] > 0
	}
	for _, v := range s.added {
		if v == space {
			return true
		}
	}
	return false
}

// declared reports whether a namespace encoding/xml resolved a name to
// could have come from a declaration: one that cannot be a prefix (a
// prefix holds none of ':', '/', '#', '?'), the xml namespace, one
// declared within the element decoded, or the Decoder's DefaultSpace.
// Anything else is a prefix that nothing binds, which encoding/xml passes
// on as the namespace.
func (s *nsScope) declared(d tokenSource, space string) bool {
	return space == "" || space == xmlURL || strings.ContainsAny(space, ":/#?") ||
		s.inScope(space) || space == d.defaultSpace()
}

// checkStart checks a start element for what encoding/xml lets through
// but a namespace-well-formed document cannot hold (RFC 6120 §11.3 makes
// an XMPP entity refuse it): names that are not NCNames, prefixes nothing
// declares (Namespaces in XML, "Prefix Declared"), and an attribute given
// twice (XML's "Unique Att Spec", Namespaces in XML's "Attributes
// Unique"), where encoding/xml keeps both and the last of two type
// attributes would win. It opens the element's scope in ns.
func checkStart(d tokenSource, start xml.StartElement, ns *nsScope) error {
	if err := checkNames(d, start); err != nil {
		return err
	}
	ns.push(start.Attr)
	fail := func(msg string) error {
		return &xml.SyntaxError{Msg: msg, Line: d.line()}
	}
	if !ns.declared(d, start.Name.Space) {
		return fail(xmldec.UndeclaredPrefixMsg(start.Name.Space))
	}
	var seen map[xml.Name]struct{}
	if len(start.Attr) > 16 {
		seen = make(map[xml.Name]struct{}, len(start.Attr))
	}
	for i, a := range start.Attr {
		if a.Name.Space != "xmlns" && !ns.declared(d, a.Name.Space) {
			return fail(xmldec.UndeclaredPrefixMsg(a.Name.Space))
		}
		dup := false
		if seen != nil {
			_, dup = seen[a.Name]
			seen[a.Name] = struct{}{}
		} else {
			for _, o := range start.Attr[:i] {
				if o.Name == a.Name {
					dup = true
					break
				}
			}
		}
		if dup {
			q := a.Name.Local
			if a.Name.Space != "" {
				q = a.Name.Space + ":" + q
			}
			return fail(xmldec.DuplicateAttrMsg(q))
		}
	}
	return nil
}

// stripDecls removes namespace declarations from decoded attributes: the
// decoder has already resolved every name they affect.
func stripDecls(attrs []xml.Attr) []xml.Attr {
	n := 0
	for _, a := range attrs {
		if !isNSDecl(a.Name) {
			n++
		}
	}
	if n == len(attrs) {
		if n == 0 {
			return nil
		}
		return attrs
	}
	if n == 0 {
		return nil
	}
	out := make([]xml.Attr, 0, n)
	for _, a := range attrs {
		if !isNSDecl(a.Name) {
			out = append(out, a)
		}
	}
	return out
}

// checkNames rejects an element or attribute name that is not an NCName.
func checkNames(d tokenSource, start xml.StartElement) error {
	if !isNCName(start.Name.Local) {
		return &xml.SyntaxError{Msg: fmt.Sprintf("element name %q is not namespace-well-formed", start.Name.Local), Line: d.line()}
	}
	for _, a := range start.Attr {
		if isNSDecl(a.Name) {
			continue
		}
		if !isNCName(a.Name.Local) {
			return &xml.SyntaxError{Msg: fmt.Sprintf("attribute name %q is not namespace-well-formed", a.Name.Local), Line: d.line()}
		}
	}
	return nil
}
