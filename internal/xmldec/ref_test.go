package xmldec

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing/iotest"
)

// This file holds the reference the decoder is compared with: encoding/xml
// driven the way package iq and stream/conn.go drive it.

// refElement decodes like iq.Element's UnmarshalXML (iq.decodeElement).
type refElement struct{ e Element }

func (r *refElement) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	return refDecodeElement(d, start, &r.e)
}

func refDecodeElement(d *xml.Decoder, start xml.StartElement, e *Element) error {
	if err := refCheckNames(d, start); err != nil {
		return err
	}
	e.Name = start.Name
	e.Attr = refStripDecls(start.Attr)
	stack := []*Element{e}
	for len(stack) > 0 {
		tok, err := d.Token()
		if err != nil {
			return err
		}
		top := stack[len(stack)-1]
		switch t := tok.(type) {
		case xml.StartElement:
			if err := refCheckNames(d, t); err != nil {
				return err
			}
			child := &Element{Name: t.Name, Attr: refStripDecls(t.Attr)}
			top.Content = append(top.Content, Node{Element: child})
			stack = append(stack, child)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(t) == 0 {
				continue
			}
			if n := len(top.Content); n > 0 && top.Content[n-1].Element == nil {
				top.Content[n-1].Text += string(t)
			} else {
				top.Content = append(top.Content, Node{Text: string(t)})
			}
		}
	}
	return nil
}

func refStripDecls(attrs []xml.Attr) []xml.Attr {
	var out []xml.Attr
	for _, a := range attrs {
		if !isNSDecl(a.Name) {
			out = append(out, a)
		}
	}
	return out
}

func refCheckNames(d *xml.Decoder, start xml.StartElement) error {
	if !refIsNCName(start.Name.Local) {
		line, _ := d.InputPos()
		return &xml.SyntaxError{Msg: fmt.Sprintf("element name %q is not namespace-well-formed", start.Name.Local), Line: line}
	}
	for _, a := range start.Attr {
		if isNSDecl(a.Name) {
			continue
		}
		if !refIsNCName(a.Name.Local) {
			line, _ := d.InputPos()
			return &xml.SyntaxError{Msg: fmt.Sprintf("attribute name %q is not namespace-well-formed", a.Name.Local), Line: line}
		}
	}
	return nil
}

// refIsNCName asks encoding/xml itself whether s is an NCName: a name
// without a colon, which is accepted exactly when it is accepted as the
// target of a processing instruction.
// ASCII names, by far the most common, are checked by hand, so that the
// reference stays a fair baseline for the benchmarks.
func refIsNCName(s string) bool {
	if s == "" || strings.Contains(s, ":") {
		return false
	}
	ascii := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		letter := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_'
		if c >= 0x80 {
			ascii = false
			break
		}
		if !letter && (i == 0 || !('0' <= c && c <= '9' || c == '.' || c == '-')) {
			return false
		}
	}
	if ascii {
		return true
	}
	_, err := xml.NewDecoder(strings.NewReader("<?" + s + "?>")).RawToken()
	return err == nil
}

// item is one top-level item, as both sides report it.
type item struct {
	Kind Kind
	Name xml.Name
	Attr []xml.Attr
	Data string
	El   *Element
}

func (it item) String() string {
	if it.El != nil {
		return fmt.Sprintf("%v %v", it.Kind, dump(it.El))
	}
	return fmt.Sprintf("%v %v %v %q", it.Kind, it.Name, it.Attr, it.Data)
}

func dump(e *Element) string {
	var b strings.Builder
	var f func(e *Element)
	f = func(e *Element) {
		fmt.Fprintf(&b, "<{%s}%s", e.Name.Space, e.Name.Local)
		for _, a := range e.Attr {
			fmt.Fprintf(&b, " {%s}%s=%q", a.Name.Space, a.Name.Local, a.Value)
		}
		b.WriteString(">")
		for _, n := range e.Content {
			if n.Element != nil {
				f(n.Element)
			} else {
				fmt.Fprintf(&b, "%q", n.Text)
			}
		}
		b.WriteString("</>")
	}
	f(e)
	return b.String()
}

// refLimit is stream's limitReader.
type refLimit struct {
	r     io.Reader
	n     int64
	limit int64
}

func (l *refLimit) Read(p []byte) (int, error) {
	room := l.limit - l.n
	if room <= 0 {
		return 0, ErrTooBig
	}
	if int64(len(p)) > room {
		p = p[:room]
	}
	n, err := l.r.Read(p)
	l.n += int64(n)
	return n, err
}

// refStream reads in as stream/conn.go does: Token at the top, depth-1
// elements with DecodeElement, the limit moved past each item. ends holds
// the input offset past each item and, after them, where the error came.
func refStream(in []byte, max int) (items []item, ends []int64, err error) {
	lim := int64(max)
	if max <= 0 {
		lim = 1 << 62
	}
	lr := &refLimit{r: bytes.NewReader(in), limit: lim}
	dec := xml.NewDecoder(lr)
	mark := func() { lr.limit = dec.InputOffset() + lim }
	depth := 0
	defer func() { ends = append(ends, dec.InputOffset()) }()
	for {
		tok, err := dec.Token()
		if err != nil {
			return items, ends, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				depth++
				items = append(items, item{Kind: KindStart, Name: t.Name, Attr: append([]xml.Attr{}, t.Attr...)})
				break
			}
			var el refElement
			if err := dec.DecodeElement(&el, &t); err != nil {
				return items, ends, err
			}
			items = append(items, item{Kind: KindElement, Name: t.Name, El: &el.e})
		case xml.EndElement:
			depth--
			items = append(items, item{Kind: KindEnd, Name: t.Name})
		case xml.CharData:
			items = append(items, item{Kind: KindText, Data: string(t)})
		case xml.Comment:
			items = append(items, item{Kind: KindComment, Data: string(t)})
		case xml.ProcInst:
			items = append(items, item{Kind: KindProcInst, Name: xml.Name{Local: t.Target}, Data: string(t.Inst)})
		case xml.Directive:
			items = append(items, item{Kind: KindDirective})
		}
		ends = append(ends, dec.InputOffset())
		mark()
	}
}

// ourStream reads in with the Decoder.
func ourStream(in []byte, max int, oneByte bool) ([]item, error) {
	var r io.Reader = bytes.NewReader(in)
	if oneByte {
		r = iotest.OneByteReader(r)
	}
	d := NewDecoder(r, max)
	var items []item
	for {
		var t Tree
		it, err := d.Next(&t)
		if err != nil {
			return items, err
		}
		x := item{Kind: it.Kind, Name: it.Name, Attr: it.Attr}
		switch it.Kind {
		case KindElement:
			x.El = t.Root
		case KindDirective:
		default:
			x.Data = string(it.Data)
		}
		if it.Kind == KindStart && x.Attr == nil {
			x.Attr = []xml.Attr{}
		}
		items = append(items, x)
	}
}

// refDecode is xml.Unmarshal into an iq.Element. end is the input offset
// where it stopped.
func refDecode(in []byte) (_ *Element, end int64, _ error) {
	var el refElement
	dec := xml.NewDecoder(bytes.NewReader(in))
	err := dec.Decode(&el)
	return &el.e, dec.InputOffset(), err
}

// nsViolation is the oracle for where the Decoder is deliberately
// stricter than encoding/xml, worked out independently of the Decoder: it
// reads in with encoding/xml's RawToken (names as written), keeps its own
// namespace scope, and returns the input offset just past the first start
// tag that uses a prefix nothing binds (xmlns on an element name
// included, a prefix declared empty counted as unbound) or that holds two
// attributes with one expanded name, with the message the Decoder gives
// for it. It returns -1 when there is none before RawToken's first error.
func nsViolation(in []byte) (int64, string) {
	dec := xml.NewDecoder(bytes.NewReader(in))
	scopes := []map[string]string{{}}
	lookup := func(p string) (string, bool) {
		if p == "xml" {
			return xmlURL, true
		}
		for i := len(scopes) - 1; i >= 0; i-- {
			if v, ok := scopes[i][p]; ok {
				return v, v != ""
			}
		}
		return "", false
	}
	for {
		tok, err := dec.RawToken()
		if err != nil {
			return -1, ""
		}
		switch t := tok.(type) {
		case xml.StartElement:
			sc := map[string]string{}
			for _, a := range t.Attr {
				if a.Name.Space == "xmlns" {
					sc[a.Name.Local] = a.Value
				}
			}
			scopes = append(scopes, sc)
			if p := t.Name.Space; p != "" {
				if _, ok := lookup(p); !ok || p == "xmlns" {
					return dec.InputOffset(), UndeclaredPrefixMsg(p)
				}
			}
			var seen []xml.Name
			for _, a := range t.Attr {
				n := a.Name
				if n.Space != "" && n.Space != "xmlns" {
					v, ok := lookup(n.Space)
					if !ok {
						return dec.InputOffset(), UndeclaredPrefixMsg(n.Space)
					}
					n.Space = v
				}
				for _, o := range seen {
					if o == n {
						q := a.Name.Local
						if a.Name.Space != "" {
							q = a.Name.Space + ":" + q
						}
						return dec.InputOffset(), DuplicateAttrMsg(q)
					}
				}
				seen = append(seen, n)
			}
		case xml.EndElement:
			if len(scopes) > 1 {
				scopes = scopes[:len(scopes)-1]
			}
		}
	}
}

// strict applies the oracle to a reference result: when the reference got
// past the first namespace violation (ends holds where each item ended,
// then where the reference stopped), the Decoder must fail there, after
// the items that ended before it, with the violation's syntax error,
// unless the reference failed on the same tag's names.
func strict(in []byte, items []item, ends []int64, err error) ([]item, error) {
	v, msg := nsViolation(in)
	if v < 0 {
		return items, err
	}
	for k, e := range ends {
		if e >= v {
			// The Decoder checks local names before namespaces, as the
			// reference's checkNames fails right after the start tag.
			var syn *xml.SyntaxError
			if k == len(items) && e == v && errors.As(err, &syn) && strings.HasSuffix(syn.Msg, "is not namespace-well-formed") {
				return items, err
			}
			return items[:min(k, len(items))], &xml.SyntaxError{Msg: msg}
		}
	}
	return items, err
}

// errClass names an error for comparison: the message of a syntax error,
// not its line.
func errClass(err error) string {
	var syn *xml.SyntaxError
	switch {
	case err == nil:
		return "ok"
	case err == io.EOF:
		return "EOF"
	case errors.Is(err, ErrTooBig):
		return "too big"
	case errors.As(err, &syn):
		return "syntax: " + syn.Msg
	}
	return "other: " + err.Error()
}
