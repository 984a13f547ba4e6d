package iq

import (
	"encoding/xml"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/xmpp-iq/iq/internal/xmldec"
)

// This file is the package's own XML writer. It appends straight to a byte
// slice, without reflection or per-token allocation, and produces what
// encoding/xml would read back to the same Infoset: the encoding/xml Encoder
// path (MarshalXML) is kept for users who embed an IQ or an Element in their
// own structs.

// room returns b with room for n more bytes, its capacity at least
// doubled when it must grow. append alone grows a large slice by about a
// quarter at a time: encoding a stanza of hundreds of kilobytes into a
// small buffer then allocates, and copies, about five times its size;
// doubling, about twice.
func room(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b
	}
	return slices.Grow(b, max(n, cap(b)))
}

// appendElement appends e's serialization to b. defaultNS is the default
// namespace in scope where e is written ("" at the top of a stanza, which
// inherits the stream's).
//
// Names are checked as they are written: a name that is not an XML NCName
// would let text from the network change the document's structure, so it
// fails the whole write.
//
// An element in the XML namespace is written with the reserved xml prefix,
// which is never declared, and leaves the default namespace as it found it
// for its children; one in the xmlns namespace cannot be written at all
// (see checkReservedNS).
func appendElement(b []byte, e *Element, defaultNS string) ([]byte, error) {
	b = room(b, 64) // a start tag, most often
	if !isNCName(e.Name.Local) {
		return b, fmt.Errorf("iq: invalid element name %q", e.Name.Local)
	}
	if err := checkReservedNS("element", e.Name); err != nil {
		return b, err
	}
	inXML := e.Name.Space == xmlURL
	b = append(b, '<')
	if inXML {
		b = append(b, "xml:"...)
	}
	b = append(b, e.Name.Local...)
	childNS := e.Name.Space
	if inXML {
		childNS = xmlChildNS(defaultNS)
	} else if e.Name.Space != defaultNS || defaultNS == noTopNS {
		// A namespace is checked where it is declared; below an element
		// in the XML namespace every child declares its own.
		if err := checkNamespace("element", e.Name); err != nil {
			return b, err
		}
		b = append(b, ` xmlns="`...)
		b = appendEscaped(b, e.Name.Space, true)
		b = append(b, '"')
	}
	var err error
	if len(e.Attr) > 0 { // most payload elements have none: skip the frame
		if b, err = appendAttrs(b, e.Attr); err != nil {
			return b, err
		}
	}
	if len(e.Content) == 0 {
		return append(b, "/>"...), nil
	}
	b = append(b, '>')
	for _, n := range e.Content {
		if n.Element != nil {
			if b, err = appendElement(b, n.Element, childNS); err != nil {
				return b, err
			}
		} else {
			b = appendEscaped(b, n.Text, false)
		}
	}
	b = append(b, "</"...)
	if inXML {
		b = append(b, "xml:"...)
	}
	b = append(b, e.Name.Local...)
	return append(b, '>'), nil
}

// appendAttrs writes attributes, declaring a prefix for each namespace
// other than xml's on the element itself. Namespace declarations found in
// attrs are skipped: names carry their namespaces.
func appendAttrs(b []byte, attrs []xml.Attr) ([]byte, error) {
	if err := checkUniqueAttrs(attrs); err != nil {
		return b, err
	}
	var prefixes []string // namespaces declared here, prefix "a<index>"
	for _, a := range attrs {
		if isNSDecl(a.Name) {
			continue
		}
		if !isNCName(a.Name.Local) {
			return b, fmt.Errorf("iq: invalid attribute name %q", a.Name.Local)
		}
		if err := checkReservedNS("attribute", a.Name); err != nil {
			return b, err
		}
		b = append(b, ' ')
		switch a.Name.Space {
		case "":
		case xmlURL, "xml":
			b = append(b, "xml:"...)
		default:
			i := indexOf(prefixes, a.Name.Space)
			if i < 0 {
				if err := checkNamespace("attribute", a.Name); err != nil {
					return b, err
				}
				i = len(prefixes)
				prefixes = append(prefixes, a.Name.Space)
				b = append(b, "xmlns:a"...)
				b = strconv.AppendInt(b, int64(i), 10)
				b = append(b, `="`...)
				b = appendEscaped(b, a.Name.Space, true)
				b = append(b, `" `...)
			}
			b = append(b, 'a')
			b = strconv.AppendInt(b, int64(i), 10)
			b = append(b, ':')
		}
		b = append(b, a.Name.Local...)
		b = append(b, `="`...)
		b = appendEscaped(b, a.Value, true)
		b = append(b, '"')
	}
	return b, nil
}

// checkUniqueAttrs fails when two of attrs, namespace declarations aside,
// have one expanded name (the prefix xml as a Space being the XML
// namespace, as the writers take it): a tree built by hand may hold them,
// and written they would make the start tag not well-formed (XML's
// "Unique Att Spec", Namespaces in XML's "Attributes Unique"), which ends
// the stream at the peer. Up to smallAttrs attributes it compares each
// pair, local names first, which most often differ at once; beyond, it
// uses a map.
func checkUniqueAttrs(attrs []xml.Attr) error {
	if len(attrs) < 2 {
		return nil
	}
	if len(attrs) > smallAttrs {
		return checkUniqueAttrsMap(attrs)
	}
	for i := 1; i < len(attrs); i++ {
		a := &attrs[i].Name
		for j := range i {
			// Two declarations of one prefix are not written: no clash.
			if o := &attrs[j].Name; o.Local == a.Local && sameAttrSpace(o.Space, a.Space) && !isNSDecl(*a) {
				return duplicateAttr(*a)
			}
		}
	}
	return nil
}

func checkUniqueAttrsMap(attrs []xml.Attr) error {
	seen := make(map[xml.Name]struct{}, len(attrs))
	for _, a := range attrs {
		if isNSDecl(a.Name) {
			continue
		}
		n := a.Name
		if n.Space == "xml" {
			n.Space = xmlURL
		}
		if _, dup := seen[n]; dup {
			return duplicateAttr(a.Name)
		}
		seen[n] = struct{}{}
	}
	return nil
}

// sameAttrSpace reports whether two attribute namespaces are one as the
// writers take them: the prefix xml stands for the XML namespace.
func sameAttrSpace(a, b string) bool {
	return a == b || (a == "xml" || a == xmlURL) && (b == "xml" || b == xmlURL)
}

func duplicateAttr(n xml.Name) error {
	return fmt.Errorf("iq: attribute {%s}%s given twice", n.Space, n.Local)
}

// smallAttrs is how many attributes checkUniqueAttrs compares pair by
// pair before it uses a map.
const smallAttrs = 16

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

// appendEscaped appends s escaped for character data or, when attr is set,
// for a double-quoted attribute value. Characters XML 1.0 does not allow
// become U+FFFD, as encoding/xml does; carriage returns, and in attributes
// tabs and newlines, are written as character references so that they
// survive the parser's normalisation.
//
// Runs of bytes that stand for themselves are appended whole. They are
// looked at eight bytes at a time at the start and after every 16 plain
// bytes in a row (so that text dense with markup or non-ASCII characters
// does not pay for words that fail), otherwise byte by byte through a
// table; only a byte that needs a reference, or that starts a multi-byte
// character (checked to be an XML Char), takes the slow path.
func appendEscaped(b []byte, s string, attr bool) []byte {
	b = room(b, len(s))
	mask := escText
	if attr {
		mask = escAttr
	}
	last := 0
	for i := 0; i < len(s); {
		for i+8 <= len(s) && !wordNeedsLook(load64(s, i)) {
			i += 8
		}
		run := 0 // plain bytes in a row: after enough, words again
	bytes:
		for i < len(s) {
			c := s[i]
			if escClass[c]&mask != 0 {
				i++
				if run++; run == 16 {
					break bytes
				}
				continue
			}
			run = 0
			if c >= utf8.RuneSelf {
				r, w := utf8.DecodeRuneInString(s[i:])
				if (r != utf8.RuneError || w != 1) && isXMLChar(r) {
					i += w // a valid character stands for itself
					continue
				}
				b = append(b, s[last:i]...)
				b = append(b, "\uFFFD"...)
				i += w
				last = i
				continue
			}
			b = append(b, s[last:i]...)
			// Each reference appended as constant bytes: stores, where a
			// string of variable length costs a call to memmove.
			switch c {
			case '&':
				b = append(b, '&', 'a', 'm', 'p', ';')
			case '<':
				b = append(b, '&', 'l', 't', ';')
			case '>':
				b = append(b, '&', 'g', 't', ';')
			case '"':
				b = append(b, '&', 'q', 'u', 'o', 't', ';') // only in an attribute: the table passes it in text
			case '\r':
				b = append(b, '&', '#', 'x', 'D', ';')
			case '\n':
				b = append(b, '&', '#', 'x', 'A', ';') // only in an attribute
			case '\t':
				b = append(b, '&', '#', 'x', '9', ';') // only in an attribute
			default: // another control character: not allowed in XML
				b = append(b, "\uFFFD"...)
			}
			i++
			last = i
		}
	}
	return append(b, s[last:]...)
}

// escClass tells, for each byte, whether it stands for itself in
// character data (escText) and in a double-quoted attribute value
// (escAttr). Bytes of multi-byte characters are in neither: their
// characters are checked one by one.
var escClass = func() (t [256]uint8) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = escText | escAttr
	}
	t['&'], t['<'], t['>'] = 0, 0, 0
	t['"'] = escText
	t['\n'], t['\t'] = escText, escText
	return t
}()

const (
	escText uint8 = 1 << iota
	escAttr
)

// load64 returns the eight bytes of s from i as a little-endian word (the
// compiler makes it one load).
func load64(s string, i int) uint64 {
	s = s[i : i+8] // one bounds check, where s[i+k] takes eight
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// wordNeedsLook reports whether any byte of x may need escaping: one that
// is not ASCII, below 0x20, or one of & < > ". It never misses one. For a
// word of ASCII bytes, a byte v makes v-0x20 (v below 0x20), or v^c-1 (v
// equal to c), set its top bit, and no byte of another value does unless
// a borrow from such a byte below it reaches it: a false alarm only where
// there is a true one. A non-ASCII byte sets its own top bit.
func wordNeedsLook(x uint64) bool {
	return (x|(x-0x20*lsb)|((x^'&'*lsb)-lsb)|((x^'<'*lsb)-lsb)|((x^'>'*lsb)-lsb)|((x^'"'*lsb)-lsb))&msb != 0
}

// isXMLChar reports whether r is in XML 1.0's Char production.
func isXMLChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		(r >= 0x20 && r <= 0xD7FF) ||
		(r >= 0xE000 && r <= 0xFFFD) ||
		(r >= 0x10000 && r <= 0x10FFFF)
}

// noTopNS is the default namespace in scope below an element in the XML
// namespace at the top of a stanza: the stream's, which the writer does not
// know. It equals no namespace an element can be written in (a NUL cannot
// be written), so each child declares its own, xmlns="" included: the
// exception that lets an element in no namespace take the stream's is for
// the top element alone.
const noTopNS = "\x00"

// xmlChildNS returns the default namespace the children of an element in
// the XML namespace are written in, given the one in scope at the element:
// the element is written with the xml prefix and changes nothing.
func xmlChildNS(defaultNS string) string {
	if defaultNS == "" {
		return noTopNS
	}
	return defaultNS
}

// xmlnsURL is the namespace the reserved xmlns prefix is bound to: the
// namespace of namespace declarations.
const xmlnsURL = "http://www.w3.org/2000/xmlns/"

// checkReservedNS refuses, with an error wrapping ErrInvalid, an element or
// attribute in the xmlns namespace. Namespaces in XML 1.0 (§3) allow no
// element there, let no prefix but xmlns be bound to it and no default
// namespace be it, and make every attribute written with the xmlns prefix a
// declaration, which an Element never holds in Attr (declarations are
// implied by the names): such a name has no faithful serialization. An
// element named with the xmlns prefix, which encoding/xml reads as the
// namespace "xmlns", is refused likewise; an attribute so named is a
// declaration and is skipped, as it always was.
func checkReservedNS(kind string, n xml.Name) error {
	if n.Space == xmlnsURL || kind == "element" && n.Space == "xmlns" {
		return invalidf("%s %q in the xmlns namespace cannot be written", kind, n.Local)
	}
	if kind == "element" && n.Local == "xmlns" && n.Space != "" && n.Space != xmlURL {
		// <xmlns xmlns="…"/> reads back in no namespace: XML parsers,
		// encoding/xml and this package's among them, take an element
		// named xmlns to be in none.
		return invalidf("element xmlns in namespace %q cannot be written", n.Space)
	}
	return nil
}

// checkNamespace fails for a name whose namespace holds a character XML
// cannot carry (a NUL, say, in a tree built by hand): written, it would be
// replaced as text is, and name another namespace. The writers call it
// where they declare a namespace.
func checkNamespace(kind string, n xml.Name) error {
	s := n.Space
	i := 0
	// Eight bytes at a time while all are printable ASCII, which any
	// namespace a program uses is: a byte below 0x20 sets its top bit in
	// x-0x20 (and a borrow only ever spreads from one), one above 0x7F
	// in x.
	for i+8 <= len(s) {
		if x := load64(s, i); (x|(x-0x20*lsb))&msb != 0 {
			break
		}
		i += 8
	}
	for i < len(s) {
		if c := s[i]; c >= 0x20 && c < utf8.RuneSelf {
			i++
			continue
		}
		r, w := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && w == 1) || !isXMLChar(r) {
			return invalidf("%s %q: namespace %q holds a character XML cannot carry", kind, n.Local, s)
		}
		i += w
	}
	return nil
}

// isNCName reports whether s is a name without a colon, as XML Namespaces
// define NCName; the rule is shared with the package's decoder, so that
// whatever it accepts can be written back.
func isNCName(s string) bool { return xmldec.IsNCName(s) }

// errorComment renders a write failure for String: as an XML comment that
// no text in err can end early or make malformed.
func errorComment(err error) string {
	msg := err.Error()
	for strings.Contains(msg, "--") {
		msg = strings.ReplaceAll(msg, "--", "- -")
	}
	if strings.HasSuffix(msg, "-") {
		msg += " "
	}
	return "<!-- " + msg + " -->"
}
