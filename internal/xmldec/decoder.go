// Package xmldec is a fast XML decoder for XMPP streams. It accepts and
// rejects what encoding/xml's Decoder (in Strict mode, without Entity or
// CharsetReader) accepts and rejects, resolves names as its Token method
// does, and builds each top-level element (stanza) the way package iq's
// decodeElement does on top of encoding/xml: namespace declarations
// dropped from the attributes, adjacent character data merged, comments and
// processing instructions inside the element skipped, and element and
// attribute names that are not NCNames reported as syntax errors.
//
// It is deliberately stricter than encoding/xml in two ways, both of which
// RFC 6120 §11.3 requires of an XMPP stream (XML and Namespaces in XML
// well-formedness): a start tag using a namespace prefix that no
// declaration in scope binds (encoding/xml takes the prefix itself as the
// namespace), and a start tag holding two attributes with the same
// qualified or expanded name (encoding/xml keeps both), are syntax errors.
//
// Errors are *xml.SyntaxError values with encoding/xml's messages (an
// unexpected end of input is reported as the message "unexpected EOF"), the
// reader's own errors, ErrTooBig, or an XML declaration's error wrapping
// ErrUnsupportedVersion or ErrUnsupportedEncoding.
package xmldec

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// ErrTooBig is returned when one top-level item (a stanza, a run of
// character data, a header...) needs more bytes than the Decoder's maximum
// size. Like encoding/xml over a capped reader, the Decoder treats the cap
// as the end of its input: character data cut by the cap is still returned,
// and the next call fails.
var ErrTooBig = errors.New("xmldec: item larger than the maximum size")

// Errors wrapped by the error for an XML declaration the Decoder refuses,
// as encoding/xml does: one naming a version other than 1.0, or an
// encoding other than UTF-8. Their messages are encoding/xml's; they are
// told apart so that a stream can answer each with the stream error RFC
// 6120 names for it.
var (
	ErrUnsupportedVersion  = errors.New("xmldec: XML version other than 1.0")
	ErrUnsupportedEncoding = errors.New("xmldec: encoding other than UTF-8")
)

// declError is the error for a refused XML declaration: encoding/xml's
// message, and the sentinel it stands for.
type declError struct {
	msg  string
	kind error
}

func (e *declError) Error() string { return e.msg }
func (e *declError) Unwrap() error { return e.kind }

// xmlURL is the namespace the reserved xml prefix is bound to.
const xmlURL = "http://www.w3.org/XML/1998/namespace"

// Handler receives the parts of one top-level element, in document order.
// Calls nest: every StartElement is matched by one EndElement. Text is
// called with non-empty, merged character data: never twice in a row.
// The attributes slice belongs to the Handler (its capacity is its
// length), but for those of a top element a TopSizer builds apart, which
// the Decoder reuses for the next tree; it is nil when the element has no
// attributes besides namespace declarations.
//
// The Decoder reads a whole element before it calls the Handler, and then
// only if the element is well-formed: a Handler never sees part of an
// element. All the character data and attribute values of one element tree
// are substrings of one string, and all its attributes share one backing
// array, so that a tree costs a few allocations whatever its size (and a
// part of it that is kept keeps the rest of its tree's strings alive).
type Handler interface {
	StartElement(name xml.Name, attr []xml.Attr)
	Text(s string)
	EndElement()
}

// A Sizer is a Handler that can make room for an element tree before its
// parts arrive. The Decoder calls Grow once before the first start of a
// tree, with how many elements (the top one included), content nodes
// (child elements and runs of character data, over all its elements) and
// attributes (without namespace declarations) the tree holds. Grow returns
// room for the attributes, at least attrs long, which the Decoder fills
// and carves the attributes of each start from, or nil to let the Decoder
// allocate it: so that a small tree can be one allocation.
//
// The Decoder starts each element of a Sizer's tree with StartContent
// rather than StartElement, telling it how many content nodes (child
// elements and runs of character data) the element holds, so that it can
// place them without a stack of its own.
type Sizer interface {
	Handler
	Grow(elements, nodes, attrs int) []xml.Attr
	StartContent(name xml.Name, attr []xml.Attr, content int)
}

// A TopSizer is a Sizer that may build a tree's top element apart from
// the rest, in memory of its own that it reuses, when it knows it will
// not keep that element (a stream reader that reads the top <iq> into an
// IQ, which keeps only the element's children and the values of its
// attributes). The Decoder calls GrowTop rather than Grow, telling it the
// top element's name, and its counts of attributes and content nodes
// beside the tree's. GrowTop returns apart true when it builds the top
// element apart: the attribute room it returns is then for the elements
// below the top only (attrs less topAttrs), and the Decoder carves the
// top element's attributes from an array of its own, which it reuses
// for the next tree.
type TopSizer interface {
	Sizer
	GrowTop(top xml.Name, topAttrs, topContent, elements, nodes, attrs int) (room []xml.Attr, apart bool)
}

// Kind is the kind of a top-level Item.
type Kind uint8

// The kinds of Item.
const (
	KindNone      Kind = iota
	KindStart          // a start tag at depth 0: the stream header
	KindEnd            // the end tag of a depth-0 element: </stream:stream>
	KindElement        // a whole element below depth 0 (a stanza), passed to the Handler
	KindText           // character data (or a CDATA section) between elements
	KindComment        // a comment
	KindProcInst       // a processing instruction
	KindDirective      // a directive such as <!DOCTYPE ...>
)

// String names the kind, for errors and logs.
func (k Kind) String() string {
	switch k {
	case KindStart:
		return "start"
	case KindEnd:
		return "end"
	case KindElement:
		return "element"
	case KindText:
		return "text"
	case KindComment:
		return "comment"
	case KindProcInst:
		return "procinst"
	case KindDirective:
		return "directive"
	}
	return "none"
}

// Item is one top-level item of a stream.
type Item struct {
	Kind Kind
	// Name is the resolved name of a KindStart, KindEnd or KindElement
	// item, and the target of a KindProcInst.
	Name xml.Name
	// Attr holds a KindStart's attributes as encoding/xml's Token returns
	// them: resolved, namespace declarations included (a declaration
	// xmlns:p has Name{Space: "xmlns", Local: "p"}, xmlns has
	// Name{Local: "xmlns"}).
	Attr []xml.Attr
	// Data is the content of a KindText, KindComment, KindProcInst or
	// KindDirective item (the inside of a directive is returned raw). It is
	// only valid until the next call to Next.
	Data []byte
}

// Decoder reads top-level items from an XML stream.
type Decoder struct {
	r    io.Reader
	buf  []byte
	pos  int   // next byte to read
	end  int   // visible end of buf: min(len(buf), lim)
	lim  int   // index in buf past which the current item may not read
	max  int   // maximum size of one item; 0: none
	ioe  error // the reader's error, once it returned one
	why  error // why more last failed
	err  error // sticky error
	base int64 // stream offset of buf[0]
	line int   // line number of buf[0]

	needClose bool  // a self-closing depth-0 start tag still needs its end
	root      bool  // depth-0 start tags are elements (Decode)
	open      []top // open depth-0 elements

	// namespace scope
	defNS    string
	prefixes map[string]string
	undo     []undoRec

	// per-tag scratch
	tag   rawTag
	attrs []rawAttr
	vals  []byte // decoded attribute values
	tmp   []byte // decoded character data of the last text call
	stk   []frame

	anames []uint32              // indices in names of the resolved names of attrs
	simple bool                  // the last name read is an ASCII NCName (see readName)
	seen   map[xml.Name]struct{} // attribute names of a start tag with many
	cache  [512]string

	// The element being read, recorded until it is complete. The record
	// holds no pointers but names (so that the collector does not scan
	// it) and 32-bit counts: an item is at most MaxItemSize bytes.
	sb       []byte      // its character data and attribute values, in order
	evs      []event     // its start tags and runs of character data, in order
	names    []xml.Name  // the distinct names of its elements and attributes, after those of earlier ones (see keepNames)
	longName bool        // names holds one with a part longer than intern keeps
	nslot    [256]uint32 // 1 + index in names of a recent name, by hash
	rslot    [256]uint32 // 1 + index in names of a recent simple name, by hash of its bytes
	rattrs   []recAttr   // its attributes, in order
	nelem    int         // how many start tags in evs
	topAttrs []xml.Attr  // the top element's attributes, for a TopSizer that builds it apart
	depth    int         // how deep it nests
	rem      []uint32    // replay's stack: content nodes left in each open element
}

// noName marks an event that is a run of character data.
const noName = math.MaxUint32

// event is one recorded part of an element: a start tag, whose end is
// implied by its count of content nodes, or a run of character data. The
// values of its attributes and its character data follow each other in sb,
// in document order, so that lengths locate them.
type event struct {
	name  uint32 // the start tag's index in names; noName for character data
	n     uint32 // a start tag's content nodes; the length of character data
	attrs uint32 // a start tag's attributes: the next ones of rattrs
}

// recAttr is a recorded attribute: its name's index in names, the length
// of its value, the next one in sb.
type recAttr struct {
	name, n uint32
}

// MaxItemSize is the ceiling on one top-level item (a stanza, a run of
// character data, a header...) whatever the maximum size a Decoder is
// given, and on the input of Decode: 1 GiB, so that the record of an
// element counts its parts in 32 bits. A bigger item fails with ErrTooBig.
const MaxItemSize = 1 << 30

type top struct {
	raw  string // qualified name as written
	name xml.Name
	mark int // len(undo) before its declarations
}

type frame struct {
	a    int    // qualified name in buf: buf[a:a+qlen]
	qlen uint32 // (an item is at most MaxItemSize bytes)
	mark uint32 // len(undo) before its declarations
	ev   uint32 // index in evs of its start tag
	n    uint32 // content nodes so far
}

type undoRec struct {
	prefix string
	old    string
	had    bool
}

type span struct{ a, b int }

// rawTag is a tag's name as split by encoding/xml's nsname: space is empty
// when the name has no colon, or one at either end.
type rawTag struct {
	q      span // the whole qualified name
	space  span
	local  span
	empty  bool // self-closing
	simple bool // an ASCII NCName without a colon: valid, and its own local name
	plain  bool // a start tag whose name and attribute names are simple, one of which at most is xmlns
	// xmlns is the index in attrs of a plain start tag's one default
	// namespace declaration, -1 when it has none.
	xmlns int
}

type rawAttr struct {
	space, local span
	raw          bool // value is buf[val] rather than vals[val]
	simple       bool // the name is an ASCII NCName (see rawTag)
	val          span
}

// NewDecoder returns a Decoder reading r, which fails with ErrTooBig on a
// top-level item longer than maxSize bytes (maxSize ≤ 0: no limit). Reads
// from r are not buffered beyond what one item needs plus one read.
func NewDecoder(r io.Reader, maxSize int) *Decoder {
	d := &Decoder{r: r, max: maxSize, line: 1}
	if maxSize <= 0 {
		d.max = 0
	}
	d.lim = math.MaxInt
	return d
}

var pool = sync.Pool{New: func() any { return new(Decoder) }}

// Decode decodes the first element of data into h, as xml.Unmarshal of
// data into an iq.Element does: character data, comments, processing
// instructions and directives before it are checked and skipped, anything
// after it is ignored. It returns io.EOF when data holds no element.
func Decode(data []byte, h Handler) error {
	d := pool.Get().(*Decoder)
	d.reset(nil, data)
	d.root = true
	if h != nil && len(data) > 64<<10 {
		d.presize(data)
	}
	var err error
	for {
		var it Item
		it, err = d.Next(h)
		if err != nil || it.Kind == KindElement {
			break
		}
	}
	d.reset(nil, nil)
	pool.Put(d)
	return err
}

func (d *Decoder) reset(r io.Reader, data []byte) {
	d.r = r
	d.buf = data
	d.pos, d.end, d.lim, d.max = 0, len(data), math.MaxInt, 0
	d.ioe, d.why, d.err = nil, nil, nil
	d.base, d.line = 0, 1
	d.needClose, d.root = false, false
	d.open = d.open[:0]
	d.defNS = ""
	clear(d.prefixes)
	d.undo = d.undo[:0]
	if data == nil {
		// Keep small scratch space for the next use, drop big.
		if cap(d.attrs) > 256 || cap(d.stk) > 256 || cap(d.undo) > 256 || cap(d.anames) > 256 {
			d.attrs, d.stk, d.undo, d.anames = nil, nil, nil, nil
		}
		if cap(d.vals) > 4096 || cap(d.tmp) > 4096 {
			d.vals, d.tmp = nil, nil
		}
		d.trimRecord(512, true)
		d.open = d.open[:0]
	}
}

// SetReader makes the Decoder read from r from now on. What it has read
// from its reader so far and not yet decoded stays buffered, and is
// decoded first: a reader that hands over to another (io.MultiReader's
// first part spent, say) can be taken out of the way of every later read.
func (d *Decoder) SetReader(r io.Reader) { d.r = r }

// Reader returns the reader the Decoder reads from.
func (d *Decoder) Reader() io.Reader { return d.r }

// InputOffset returns the stream offset just past the last item returned.
func (d *Decoder) InputOffset() int64 { return d.base + int64(d.pos) }

// Depth reports how many depth-0 elements (stream headers) are open.
func (d *Decoder) Depth() int { return len(d.open) }

// Next returns the next top-level item. A start tag below depth 0 is read
// with its whole element, whose parts go to h (h may be nil to check and
// discard it). At the end of the input it returns io.EOF if no depth-0
// element is open, else a syntax error "unexpected EOF". Any error is
// sticky.
func (d *Decoder) Next(h Handler) (Item, error) {
	if d.err != nil {
		return Item{}, d.err
	}
	d.begin()
	it, err := d.next(h)
	if err != nil {
		d.err = err
		return Item{}, err
	}
	return it, nil
}

// begin starts a new item: it discards consumed input and sets the limit.
func (d *Decoder) begin() {
	if d.r != nil && d.pos > 0 && (d.pos == len(d.buf) || d.pos >= cap(d.buf)/2) {
		d.line += bytes.Count(d.buf[:d.pos], nl)
		d.base += int64(d.pos)
		n := copy(d.buf, d.buf[d.pos:])
		d.buf = d.buf[:n]
		d.pos = 0
	}
	d.lim = d.pos + MaxItemSize
	if d.max > 0 && d.max < MaxItemSize {
		d.lim = d.pos + d.max
	}
	d.end = min(len(d.buf), d.lim)
}

var nl, lt, eq = []byte{'\n'}, []byte{'<'}, []byte{'='}

// isSpace marks XML's white space.
var isSpace = [256]bool{' ': true, '\r': true, '\n': true, '\t': true}

// more makes at least one more byte visible, or records in d.why why it
// cannot: io.EOF, ErrTooBig or the reader's error.
func (d *Decoder) more() bool {
	if d.end >= d.lim || d.ioe == ErrTooBig {
		// Like a capped reader under encoding/xml, hitting the cap ends
		// the input for good, even if what was read so far is returned.
		d.why = ErrTooBig
		d.ioe = ErrTooBig
		return false
	}
	if d.end < len(d.buf) {
		d.end = min(len(d.buf), d.lim)
		return true
	}
	if d.ioe != nil || d.r == nil {
		d.why = d.ioe
		if d.why == nil {
			d.why = io.EOF
		}
		return false
	}
	if len(d.buf) == cap(d.buf) {
		n := max(2*cap(d.buf), 4096)
		nb := make([]byte, len(d.buf), n)
		copy(nb, d.buf)
		d.buf = nb
	}
	for range 100 {
		n, err := d.r.Read(d.buf[len(d.buf):cap(d.buf)])
		d.buf = d.buf[:len(d.buf)+n]
		if err != nil {
			d.ioe = err
		}
		if n > 0 {
			d.end = min(len(d.buf), d.lim)
			return true
		}
		if err != nil {
			d.why = err
			return false
		}
	}
	d.ioe = io.ErrNoProgress
	d.why = d.ioe
	return false
}

func (d *Decoder) getc() (byte, bool) {
	if d.pos < d.end || d.more() {
		c := d.buf[d.pos]
		d.pos++
		return c, true
	}
	return 0, false
}

// eofErr is the error for input that ends where more is required.
func (d *Decoder) eofErr() error {
	if d.why == io.EOF {
		return d.syntaxError("unexpected EOF")
	}
	return d.why
}

func (d *Decoder) syntaxError(msg string) error {
	p := min(d.pos, len(d.buf))
	return &xml.SyntaxError{Msg: msg, Line: d.line + bytes.Count(d.buf[:p], nl)}
}

func (d *Decoder) space() {
	for {
		for d.pos < d.end {
			switch d.buf[d.pos] {
			case ' ', '\r', '\n', '\t':
				d.pos++
			default:
				return
			}
		}
		if !d.more() {
			return
		}
	}
}

func (d *Decoder) next(h Handler) (Item, error) {
	if d.needClose {
		d.needClose = false
		return d.closeTop(), nil
	}
	c, ok := d.getc()
	if !ok {
		if d.why == io.EOF && len(d.open) > 0 {
			return Item{}, d.syntaxError("unexpected EOF")
		}
		return Item{}, d.why
	}
	if c != '<' {
		d.pos--
		raw, s, err := d.text(-1, false)
		if err != nil {
			return Item{}, err
		}
		return Item{Kind: KindText, Data: d.textData(raw, s)}, nil
	}
	if c, ok = d.getc(); !ok {
		return Item{}, d.eofErr()
	}
	switch c {
	case '/':
		if err := d.endTag(); err != nil {
			return Item{}, err
		}
		if len(d.open) == 0 {
			return Item{}, d.syntaxError("unexpected end element </" + string(d.bytes(d.tag.local)) + ">")
		}
		t := &d.open[len(d.open)-1]
		if err := d.matchEnd(t.raw, d.tag.q); err != nil {
			return Item{}, err
		}
		return d.closeTop(), nil
	case '?':
		target, data, err := d.procInst()
		if err != nil {
			return Item{}, err
		}
		return Item{Kind: KindProcInst, Name: xml.Name{Local: target}, Data: data}, nil
	case '!':
		k, raw, s, err := d.bang()
		if err != nil {
			return Item{}, err
		}
		if k == KindText {
			return Item{Kind: KindText, Data: d.textData(raw, s)}, nil
		}
		return Item{Kind: k, Data: d.buf[s.a:s.b]}, nil
	}
	d.pos--
	if err := d.startTag(); err != nil {
		return Item{}, err
	}
	if len(d.open) == 0 && !d.root {
		return d.openTop()
	}
	name, err := d.element(h)
	if err != nil {
		return Item{}, err
	}
	return Item{Kind: KindElement, Name: name}, nil
}

func (d *Decoder) textData(raw bool, s span) []byte {
	if raw {
		return d.buf[s.a:s.b]
	}
	return d.tmp[s.a:s.b]
}

func (d *Decoder) bytes(s span) []byte { return d.buf[s.a:s.b] }

// openTop opens a depth-0 element from d.tag and d.attrs.
func (d *Decoder) openTop() (Item, error) {
	mark := len(d.undo)
	d.trimNames()
	d.declare()
	ni, err := d.elemName()
	if err != nil {
		d.restore(mark)
		return Item{}, err
	}
	name := d.names[ni]
	if err := d.resolveAttrs(); err != nil {
		d.restore(mark)
		return Item{}, err
	}
	attr := make([]xml.Attr, len(d.attrs))
	for i := range d.attrs {
		attr[i] = xml.Attr{Name: d.names[d.anames[i]], Value: d.attrValue(&d.attrs[i])}
	}
	d.open = append(d.open, top{raw: string(d.bytes(d.tag.q)), name: name, mark: mark})
	d.needClose = d.tag.empty
	return Item{Kind: KindStart, Name: name, Attr: attr}, nil
}

func (d *Decoder) closeTop() Item {
	t := d.open[len(d.open)-1]
	d.open = d.open[:len(d.open)-1]
	d.restore(t.mark)
	return Item{Kind: KindEnd, Name: t.name}
}

// matchEnd checks an end tag's qualified name against its start's, with
// encoding/xml's messages.
func (d *Decoder) matchEnd(start string, end span) error {
	e := d.bytes(end)
	if string(e) == start {
		return nil
	}
	sp, sl := splitName(start)
	ep, el := splitName(string(e))
	if sl != el {
		return d.syntaxError("element <" + sl + "> closed by </" + el + ">")
	}
	if ep == "" {
		ep = `""`
	}
	return d.syntaxError("element <" + sl + "> in space " + sp + " closed by </" + el + "> in space " + ep)
}

func splitName(s string) (space, local string) {
	if space, local, ok := strings.Cut(s, ":"); ok && space != "" && local != "" {
		return space, local
	}
	return "", s
}

// declare applies the namespace declarations of d.attrs, as Token does.
func (d *Decoder) declare() {
	for i := range d.attrs {
		a := &d.attrs[i]
		sp := d.bytes(a.space)
		if string(sp) == "xmlns" {
			p := d.intern(d.bytes(a.local))
			v := d.internValue(a)
			if d.prefixes == nil {
				d.prefixes = make(map[string]string)
			}
			old, had := d.prefixes[p]
			d.undo = appendOne(d.undo, undoRec{p, old, had})
			d.prefixes[p] = v
		} else if len(sp) == 0 && string(d.bytes(a.local)) == "xmlns" {
			d.undo = appendOne(d.undo, undoRec{"", d.defNS, true})
			d.defNS = d.internValue(a)
		}
	}
}

func (d *Decoder) restore(mark int) {
	for i := len(d.undo) - 1; i >= mark; i-- {
		u := d.undo[i]
		switch {
		case u.prefix == "":
			d.defNS = u.old
		case u.had:
			d.prefixes[u.prefix] = u.old
		default:
			delete(d.prefixes, u.prefix)
		}
	}
	d.undo = d.undo[:mark]
}

// elemName resolves d.tag's name as Token's translate does, except that a
// prefix nothing binds is an error (see resolve), and returns its index in
// d.names. The reserved prefix xmlns is never bound to an element name
// (Namespaces in XML 1.0 §3, "Reserved Prefixes and Namespace Names"), so
// it is refused the same way.
func (d *Decoder) elemName() (uint32, error) {
	if d.tag.simple {
		local := d.bytes(d.tag.local)
		if string(local) == "xmlns" {
			return d.simpleIndex(local, "", 0), nil
		}
		return d.simpleIndex(local, d.defNS, 1), nil
	}
	local := d.intern(d.bytes(d.tag.local))
	sp := d.bytes(d.tag.space)
	if len(sp) == 0 {
		if local == "xmlns" {
			return d.nameIndex(xml.Name{Local: local}), nil
		}
		return d.nameIndex(xml.Name{Space: d.defNS, Local: local}), nil
	}
	space, err := d.resolve(sp)
	if err != nil {
		return 0, err
	}
	return d.nameIndex(xml.Name{Space: space, Local: local}), nil
}

// attrIndex resolves an attribute's name as attrName does and returns its
// index in d.names.
func (d *Decoder) attrIndex(a *rawAttr) (uint32, error) {
	if a.simple {
		return d.simpleIndex(d.bytes(a.local), "", 0), nil
	}
	n, err := d.attrName(a)
	if err != nil {
		return 0, err
	}
	return d.nameIndex(n), nil
}

// simpleIndex returns the index in d.names of the name {space, b}, b being
// a simple name (see readName) as read. It looks for it by b's bytes
// first, among recent simple names of its kind (1: an element's, 0: an
// attribute's), so that most names are found without being hashed whole,
// interned or copied; an entry left from an earlier element is only ever
// taken for an equal name.
func (d *Decoder) simpleIndex(b []byte, space string, kind uint) uint32 {
	h := uint(len(b))*0x9e37 + uint(b[0])*31 + uint(b[len(b)-1])*0x3b + kind*0x2f1
	slot := &d.rslot[(h^h>>8)%uint(len(d.rslot))]
	if i := int(*slot) - 1; i >= 0 && i < len(d.names) {
		if n := &d.names[i]; n.Local == string(b) && n.Space == space {
			return uint32(i)
		}
	}
	i := d.nameIndex(xml.Name{Space: space, Local: d.intern(b)})
	*slot = i + 1
	return i
}

// attrName resolves an attribute's name as Token's translate does, except
// that a prefix nothing binds is an error. A namespace declaration xmlns:p
// is named {xmlns p}, xmlns {"" xmlns}.
func (d *Decoder) attrName(a *rawAttr) (xml.Name, error) {
	local := d.intern(d.bytes(a.local))
	sp := d.bytes(a.space)
	switch {
	case len(sp) == 0:
		return xml.Name{Local: local}, nil
	case string(sp) == "xmlns":
		return xml.Name{Space: "xmlns", Local: local}, nil
	}
	space, err := d.resolve(sp)
	return xml.Name{Space: space, Local: local}, err
}

// resolve returns the namespace a prefix stands for. Where encoding/xml
// takes a prefix that no declaration in scope binds as the namespace
// itself, this is a syntax error: such XML is not namespace-well-formed
// (Namespaces in XML 1.0, "Prefix Declared"), which an XMPP stream must
// refuse (RFC 6120 §11.3), and taking "p" as a namespace would route a
// stanza by a name its sender never declared. A prefix declared empty
// (xmlns:p="", which Namespaces in XML 1.0 forbids) is unbound too.
func (d *Decoder) resolve(prefix []byte) (string, error) {
	if string(prefix) == "xml" {
		return xmlURL, nil
	}
	if string(prefix) != "xmlns" {
		if v := d.prefixes[string(prefix)]; v != "" {
			return v, nil
		}
	}
	return "", d.syntaxError(UndeclaredPrefixMsg(string(prefix)))
}

// UndeclaredPrefixMsg is the message of the syntax error for a prefix
// that no declaration in scope binds, shared with package iq's decoder on
// top of encoding/xml.
func UndeclaredPrefixMsg(prefix string) string {
	return "undeclared namespace prefix " + strconv.Quote(prefix)
}

// DuplicateAttrMsg is the message of the syntax error for a start tag
// holding an attribute twice, named as written.
func DuplicateAttrMsg(qname string) string {
	return "duplicate attribute " + strconv.Quote(qname)
}

// smallAttrs is how many attributes a start tag may hold before the
// duplicate check uses a map rather than comparing every pair.
const smallAttrs = 16

// resolveAttrs resolves the names of d.attrs into d.anames, in order, and
// fails on an undeclared prefix or on an attribute given twice: the same
// qualified name twice breaks XML's "Unique Att Spec", two qualified names
// for one expanded name Namespaces in XML's "Attributes Unique". Both make
// the tag not well-formed (RFC 6120 §11.3), and encoding/xml keeps both,
// so that the last of two type attributes would win. The check costs time
// in proportion to the number of attributes.
func (d *Decoder) resolveAttrs() error {
	d.anames = d.anames[:0]
	big := len(d.attrs) > smallAttrs
	if big {
		if d.seen == nil {
			d.seen = make(map[xml.Name]struct{}, len(d.attrs))
		}
		defer func() {
			if len(d.seen) > 1024 {
				d.seen = nil // clearing a big map costs its size every time
			} else {
				clear(d.seen)
			}
		}()
	}
	for i := range d.attrs {
		a := &d.attrs[i]
		ai, err := d.attrIndex(a)
		if err != nil {
			return err
		}
		an := d.names[ai]
		dup := false
		if big {
			_, dup = d.seen[an]
			d.seen[an] = struct{}{}
		} else {
			for _, o := range d.anames {
				if o == ai || d.names[o] == an {
					dup = true
					break
				}
			}
		}
		if dup {
			q := string(d.bytes(a.local))
			if a.space.a != a.space.b {
				q = string(d.bytes(a.space)) + ":" + q
			}
			return d.syntaxError(DuplicateAttrMsg(q))
		}
		push(&d.anames, ai)
	}
	return nil
}

// valueBytes returns the decoded value of a, where the tag's scan left
// it: in the input when it needed no decoding, else in d.vals.
func (d *Decoder) valueBytes(a *rawAttr) []byte {
	if a.raw {
		return d.buf[a.val.a:a.val.b]
	}
	return d.vals[a.val.a:a.val.b]
}

func (d *Decoder) attrValue(a *rawAttr) string { return string(d.valueBytes(a)) }

func (d *Decoder) internValue(a *rawAttr) string { return d.intern(d.valueBytes(a)) }

// intern returns b as a string, shared with an earlier equal one when
// it is still in a small cache: two-way set associative, indexed by a hash
// of all of b's bytes, so that the few names a stream repeats stay in it
// however they collide.
func (d *Decoder) intern(b []byte) string {
	n := len(b)
	if n == 0 {
		return ""
	}
	if n > 96 {
		return string(b)
	}
	h := uint32(2166136261)
	for _, c := range b {
		h = (h ^ uint32(c)) * 16777619
	}
	i := uint(h) % uint(len(d.cache)) &^ 1
	if s := d.cache[i]; s == string(b) {
		return s
	}
	if s := d.cache[i+1]; s == string(b) {
		d.cache[i], d.cache[i+1] = s, d.cache[i]
		return s
	}
	s := string(b)
	d.cache[i], d.cache[i+1] = s, d.cache[i]
	return s
}

// stanzaAttrs resolves the attributes of a start tag below the stream,
// drops namespace declarations, checks the names as iq's checkNames does
// (see checkStart), and, when rec is set, records them and the start tag.
func (d *Decoder) stanzaAttrs(name uint32, rec bool) error {
	if d.tag.plain && len(d.attrs) <= smallAttrs {
		return d.plainAttrs(name, rec)
	}
	if err := d.resolveAttrs(); err != nil {
		return err
	}
	if !rec {
		return nil
	}
	a := len(d.rattrs)
	for i := range d.attrs {
		an := d.anames[i]
		if isNSDecl(d.names[an]) {
			continue
		}
		v := d.valueBytes(&d.attrs[i])
		pushBytes(&d.sb, v)
		push(&d.rattrs, recAttr{an, uint32(len(v))})
	}
	push(&d.evs, event{name: name, attrs: uint32(len(d.rattrs) - a)})
	d.nelem++
	return nil
}

// plainAttrs is stanzaAttrs for a plain start tag (see rawTag) of at most
// smallAttrs attributes: their names are in no namespace, and two are the
// same name when their bytes are equal. The default namespace declaration
// among them, if any (d.tag.xmlns), is not an attribute of the element.
func (d *Decoder) plainAttrs(name uint32, rec bool) error {
	d.anames = d.anames[:0]
	an := d.anames
	for i := range d.attrs {
		if i == d.tag.xmlns {
			continue
		}
		local := d.bytes(d.attrs[i].local)
		ai := d.simpleIndex(local, "", 0)
		for _, o := range an {
			if o == ai || d.names[o].Local == string(local) {
				return d.syntaxError(DuplicateAttrMsg(string(local)))
			}
		}
		push(&d.anames, ai)
		an = d.anames
	}
	if !rec {
		return nil
	}
	j := 0
	for i := range d.attrs {
		if i == d.tag.xmlns {
			continue
		}
		v := d.valueBytes(&d.attrs[i])
		pushBytes(&d.sb, v)
		push(&d.rattrs, recAttr{an[j], uint32(len(v))})
		j++
	}
	push(&d.evs, event{name: name, attrs: uint32(len(an))})
	d.nelem++
	return nil
}

// nameIndex returns n's index in d.names, adding it unless a recent equal
// name is found: a stanza repeats few names, and one that repeats many
// costs an entry per name at worst.
func (d *Decoder) nameIndex(n xml.Name) uint32 {
	h := uint(len(n.Local))*0x9e37 + uint(len(n.Space))*0x85eb
	if len(n.Local) > 0 {
		h += uint(n.Local[0])*31 + uint(n.Local[len(n.Local)-1])*0x3b
	}
	if len(n.Space) > 0 {
		h += uint(n.Space[len(n.Space)-1]) * 0xc2b
	}
	slot := &d.nslot[(h^h>>8)%uint(len(d.nslot))]
	if i := int(*slot) - 1; i >= 0 && i < len(d.names) && d.names[i] == n {
		return uint32(i)
	}
	if len(n.Local) > 96 || len(n.Space) > 96 {
		d.longName = true
	}
	d.names = appendOne(d.names, n)
	*slot = uint32(len(d.names))
	return uint32(len(d.names) - 1)
}

// appendOne appends v to s, doubling s's capacity when it is full: the
// record of a big element grows in a few steps, where append's growth
// by a quarter would copy it many times.
func appendOne[T any](s []T, v T) []T {
	if len(s) == cap(s) {
		s = slices.Grow(s, max(len(s), 16))
	}
	return append(s, v)
}

// push appends v to *s, doubling its capacity when it is full, as
// appendOne does. It is small enough to be inlined (a call to a function
// that is not would put it over the inliner's budget), and an append to
// *s of the slice it holds stores only the length unless it grows, so
// that the fields of a Decoder that grow with every tag cost neither a
// call nor a write barrier while the collector runs.
func push[T any](s *[]T, v T) {
	if len(*s) == cap(*s) {
		*s = slices.Grow(*s, max(len(*s), 16))
	}
	*s = append(*s, v)
}

// slot appends an element to *s as push does and returns it, for the
// caller to set every field of: where push copies a struct built on the
// stack field by field, the copy's wide loads wait for those narrow
// stores to retire.
func slot[T any](s *[]T) *T {
	if len(*s) == cap(*s) {
		*s = slices.Grow(*s, max(len(*s), 16))
	}
	*s = (*s)[:len(*s)+1]
	return &(*s)[len(*s)-1]
}

// pushBytes appends b to *s as push does, at least doubling its capacity
// when it grows.
func pushBytes(s *[]byte, b []byte) {
	if cap(*s)-len(*s) < len(b) {
		*s = slices.Grow(*s, max(len(*s), len(b), 256))
	}
	*s = append(*s, b...)
}

// presize makes room in the record for the element in data, so that a big
// element read at once grows its record rarely rather than from nothing:
// an event per '<' (a start tag, or the run of character data before a
// tag), an attribute per '=', and half of data in character data and
// attribute values. Counting takes a fast pass over data; the room is
// capped at an event per 8 bytes and an attribute per 16, so that it costs
// at most about 2.5 times len(data) bytes, whatever data holds.
func (d *Decoder) presize(data []byte) {
	n := len(data)
	if c := min(bytes.Count(data, lt)+1, n/8); cap(d.evs) < c {
		d.evs = make([]event, 0, c)
	}
	if c := min(bytes.Count(data, eq)+1, n/16); cap(d.rattrs) < c {
		d.rattrs = make([]recAttr, 0, c)
	}
	if c := n / 2; cap(d.sb) < c {
		d.sb = make([]byte, 0, c)
	}
}

// trimRecord empties the record of the element just read. A buffer that
// grew past n items is dropped when that element used less than a quarter
// of it (always, if all is set), so that one big element does not keep its
// memory for the rest of a stream, while a stream of big elements reuses
// it.
//
// The stacks and per-tag scratch go the same way, judged by the depth and
// the attributes of the element just read.
func (d *Decoder) trimRecord(n int, all bool) {
	big := func(l, c, n int) bool { return c > n && (all || l < c/4) }
	if big(d.depth, cap(d.stk), n) {
		d.stk = nil
	}
	if big(d.depth, cap(d.rem), n) {
		d.rem = nil
	}
	if big(len(d.rattrs), cap(d.attrs), n) {
		d.attrs, d.anames = nil, nil
	}
	if big(len(d.sb), cap(d.vals), 32*n) {
		d.vals = nil
	}
	if big(len(d.evs), cap(d.evs), 4*n) {
		d.evs = nil
	}
	if big(len(d.rattrs), cap(d.rattrs), n) {
		d.rattrs = nil
	}
	if big(len(d.sb), cap(d.sb), 32*n) {
		d.sb = nil
	}
	d.trimNames()
	d.sb, d.evs, d.rattrs = d.sb[:0], d.evs[:0], d.rattrs[:0]
	d.nelem, d.depth = 0, 0
}

// keepNames is how many names d.names keeps from one element to the next
// (and in the pool), so that the names a stream repeats are found by their
// bytes (simpleIndex) without being interned again: at most 256 names of
// at most 96 bytes each (intern's limit), as many as its cache keeps alive.
const keepNames = 256

// trimNames forgets the names of the elements read so far once they are
// more than keepNames, or one of them is long.
func (d *Decoder) trimNames() {
	if len(d.names) > keepNames || d.longName {
		clear(d.names)
		d.names = d.names[:0]
		if cap(d.names) > 4*keepNames {
			d.names = nil
		}
		d.longName = false
	}
}

// replay hands the recorded element to h: its character data and
// attribute values as substrings of one string, its attributes carved
// from one array. A Sizer learns each element's count of content nodes
// from StartContent; the ends of elements are implied by those counts.
func (d *Decoder) replay(h Handler) {
	all := string(d.sb)
	var attrs []xml.Attr
	s, sizer := h.(Sizer)
	names, rattrs := d.names, d.rattrs
	// base is how many recorded attributes are not carved from attrs: the
	// top element's, when the handler builds it apart.
	base, apart := 0, false
	if ts, ok := h.(TopSizer); ok {
		top := d.evs[0]
		attrs, apart = ts.GrowTop(names[top.name], int(top.attrs), int(top.n), d.nelem, len(d.evs)-1, len(d.rattrs))
		if apart {
			base = int(top.attrs)
		}
	} else if sizer {
		attrs = s.Grow(d.nelem, len(d.evs)-1, len(d.rattrs))
	}
	if len(attrs) < len(d.rattrs)-base {
		attrs = make([]xml.Attr, len(d.rattrs)-base)
	}
	off, ai := 0, 0
	rem := d.rem[:0]
	for j, e := range d.evs {
		if e.name == noName {
			h.Text(all[off : off+int(e.n)])
			off += int(e.n)
		} else {
			var at []xml.Attr
			if e.attrs > 0 {
				end := ai + int(e.attrs)
				if j == 0 && apart {
					if cap(d.topAttrs) < end {
						d.topAttrs = make([]xml.Attr, end)
					}
					at = d.topAttrs[:end:end]
				} else {
					at = attrs[ai-base : end-base : end-base]
				}
				for i, ra := range rattrs[ai:end] {
					// Field by field: a pointer at a time, where copying
					// a whole xml.Attr costs a bulk write barrier while
					// the collector runs.
					a, n := &at[i], &names[ra.name]
					a.Name.Space = n.Space
					a.Name.Local = n.Local
					a.Value = all[off : off+int(ra.n)]
					off += int(ra.n)
				}
				ai = end
			}
			if sizer {
				s.StartContent(names[e.name], at, int(e.n))
			} else {
				h.StartElement(names[e.name], at)
			}
			if e.n > 0 {
				rem = appendOne(rem, e.n)
				continue
			}
			h.EndElement()
		}
		// A content node is complete: close the elements it completes.
		for len(rem) > 0 {
			top := len(rem) - 1
			if rem[top]--; rem[top] > 0 {
				break
			}
			rem = rem[:top]
			h.EndElement()
		}
	}
	d.rem = rem
	if cap(d.topAttrs) > 64 {
		d.topAttrs = nil // a hostile top element's many attributes: not kept for the next
	}
}

// checkStart checks the local names of the start tag in d.tag and d.attrs
// as iq's checkNames does: the element's first, then each attribute's
// other than namespace declarations. It runs before names are resolved,
// so that a tag breaking both rules fails as encoding/xml and checkNames
// make it fail.
func (d *Decoder) checkStart() error {
	if local := d.bytes(d.tag.local); !d.tag.simple && !IsNCName(string(local)) {
		return d.syntaxError(fmt.Sprintf("element name %q is not namespace-well-formed", local))
	}
	for i := range d.attrs {
		a := &d.attrs[i]
		if a.simple {
			continue // an NCName, or xmlns
		}
		sp, local := d.bytes(a.space), d.bytes(a.local)
		if string(sp) == "xmlns" || (len(sp) == 0 && string(local) == "xmlns") {
			continue
		}
		if !IsNCName(string(local)) {
			return d.syntaxError(fmt.Sprintf("attribute name %q is not namespace-well-formed", local))
		}
	}
	return nil
}

func isNSDecl(n xml.Name) bool {
	return n.Space == "xmlns" || (n.Space == "" && n.Local == "xmlns")
}

// element reads an element whose start tag is in d.tag and d.attrs, to its
// end tag, and passes its parts to h once it is complete (h may be nil to
// check and discard it). It returns the element's name.
func (d *Decoder) element(h Handler) (xml.Name, error) {
	rec := h != nil
	d.sb, d.evs, d.rattrs = d.sb[:0], d.evs[:0], d.rattrs[:0]
	d.nelem, d.depth = 0, 0
	stk := d.stk[:0]
	var rootName xml.Name
	tstart := -1 // where the open run of character data starts in sb
	flush := func() {
		if tstart >= 0 && tstart < len(d.sb) {
			push(&d.evs, event{name: noName, n: uint32(len(d.sb) - tstart)})
			stk[len(stk)-1].n++
		}
		tstart = -1
	}
	for {
		// d.tag and d.attrs hold a start tag.
		mark := len(d.undo)
		if !d.tag.plain {
			d.declare()
			if err := d.checkStart(); err != nil {
				d.restore(mark)
				return xml.Name{}, err
			}
		} else if i := d.tag.xmlns; i >= 0 {
			d.undo = appendOne(d.undo, undoRec{"", d.defNS, true})
			d.defNS = d.internValue(&d.attrs[i])
		}
		name, err := d.elemName()
		if err != nil {
			d.restore(mark)
			return xml.Name{}, err
		}
		if err := d.stanzaAttrs(name, rec); err != nil {
			d.restore(mark)
			return xml.Name{}, err
		}
		if len(stk) == 0 {
			rootName = d.names[name]
		} else if rec {
			stk[len(stk)-1].n++
		}
		if d.tag.empty {
			d.restore(mark)
			if len(stk) == 0 {
				d.stk = stk
				return rootName, d.done(h)
			}
		} else {
			f := slot(&stk)
			f.a, f.qlen, f.mark, f.ev, f.n = d.tag.q.a, uint32(d.tag.q.b-d.tag.q.a), uint32(mark), uint32(len(d.evs)-1), 0
			d.depth = max(d.depth, len(stk))
		}

		// Read content up to the next start tag.
		for {
			var c byte
			if p := d.pos; p+1 < d.end && d.buf[p] == '<' {
				c = d.buf[p+1]
				d.pos = p + 2
			} else {
				if p < d.end && d.buf[p] != '<' {
					// Fast path: character data of plain bytes up to a
					// '<' in the buffer, which text would return raw.
					i, buf := p, d.buf[:d.end]
					for i < len(buf) && dataClass[buf[i]] == cPlain {
						i++
					}
					if i < len(buf) && buf[i] == '<' {
						d.pos = i
						if rec {
							tstart = d.addText(true, span{p, i}, tstart)
						}
						continue
					}
				}
				var ok bool
				if c, ok = d.getc(); !ok {
					d.stk = stk
					return xml.Name{}, d.eofErr()
				}
				if c != '<' {
					d.pos--
					raw, s, err := d.text(-1, false)
					if err != nil {
						d.stk = stk
						return xml.Name{}, err
					}
					if rec {
						tstart = d.addText(raw, s, tstart)
					}
					continue
				}
				if c, ok = d.getc(); !ok {
					d.stk = stk
					return xml.Name{}, d.eofErr()
				}
			}
			var err error
			switch c {
			case '/':
				f := stk[len(stk)-1]
				if p, n := d.pos, int(f.qlen); p+n < d.end && d.buf[p+n] == '>' && bytes.Equal(d.buf[p:p+n], d.buf[f.a:f.a+n]) {
					// Fast path: the open element's name as its start
					// tag wrote it, then >, in the buffer: the name was
					// checked there, and the end tag matches it.
					d.pos = p + n + 1
				} else {
					if err = d.endTag(); err != nil {
						break
					}
					if q := d.tag.q; !bytes.Equal(d.buf[f.a:f.a+int(f.qlen)], d.buf[q.a:q.b]) {
						if err = d.matchEnd(string(d.buf[f.a:f.a+int(f.qlen)]), q); err != nil {
							break
						}
					}
				}
				if rec {
					flush()
					d.evs[f.ev].n = stk[len(stk)-1].n
				}
				stk = stk[:len(stk)-1]
				d.restore(int(f.mark))
				if len(stk) == 0 {
					d.stk = stk
					return rootName, d.done(h)
				}
				continue
			case '?':
				_, _, err = d.procInst()
				if err == nil {
					continue
				}
			case '!':
				var k Kind
				var raw bool
				var s span
				k, raw, s, err = d.bang()
				if err == nil {
					if k == KindText && rec {
						tstart = d.addText(raw, s, tstart)
					}
					continue
				}
			default:
				d.pos--
				if err = d.startTag(); err == nil && rec {
					flush()
				}
			}
			if err != nil {
				d.stk = stk
				return xml.Name{}, err
			}
			break
		}
	}
}

// done hands a complete recorded element to h, then trims the record.
func (d *Decoder) done(h Handler) error {
	if h != nil {
		d.replay(h)
	}
	d.trimRecord(512, false)
	return nil
}

// addText appends the result of text to the open run of character data,
// which starts at tstart in sb (-1: none yet), and returns where it starts.
func (d *Decoder) addText(raw bool, s span, tstart int) int {
	if s.a == s.b {
		return tstart
	}
	if tstart < 0 {
		tstart = len(d.sb)
	}
	if raw {
		pushBytes(&d.sb, d.buf[s.a:s.b])
	} else {
		pushBytes(&d.sb, d.tmp[s.a:s.b])
	}
	return tstart
}

// nameFlag classes bytes for readName: 1 for the bytes a name is read
// from, plus 2 for those among them that keep it from being a simple name
// (a colon, a non-ASCII byte).
var nameFlag = func() (t [256]uint8) {
	for c := range t {
		if nameByte[c] {
			t[c] = 1
			if c == ':' || c >= utf8.RuneSelf {
				t[c] |= 2
			}
		}
	}
	return t
}()

// readName reads the bytes encoding/xml's readName reads: ASCII name
// bytes and any non-ASCII byte. It returns an empty span, without error,
// when the first byte is not one of them. In the same pass it sets
// d.simple when the name is an ASCII NCName without a colon, which is a
// valid name and its own local name: most names are, and need no more
// checks.
func (d *Decoder) readName() (span, error) {
	a := d.pos
	if a >= d.end && !d.more() {
		return span{}, d.eofErr()
	}
	c := d.buf[a]
	if !nameByte[c] {
		return span{a, a}, nil
	}
	d.pos = a + 1
	spec := nameFlag[c] | ^nameClass[c]&classStart<<1 // a byte that cannot start an NCName counts as special
	for {
		for d.pos < d.end {
			f := nameFlag[d.buf[d.pos]]
			if f == 0 {
				d.simple = spec&2 == 0
				return span{a, d.pos}, nil
			}
			spec |= f
			d.pos++
		}
		if !d.more() {
			return span{}, d.eofErr()
		}
	}
}

// simpleName returns the end of the simple name (see readName) at d.pos,
// when it ends in the buffer, else -1: the fast path of nsname, which
// leaves any other name to readName.
func (d *Decoder) simpleName() int {
	buf, p := d.buf[:d.end], d.pos
	if p >= len(buf) || nameClass[buf[p]]&classStart == 0 {
		return -1
	}
	q := p + 1
	for q < len(buf) && nameFlag[buf[q]] == 1 {
		q++
	}
	if q >= len(buf) || nameFlag[buf[q]] != 0 {
		return -1
	}
	return q
}

// name reads a name and checks it as encoding/xml's name does. ok is false
// without error when there is no name.
func (d *Decoder) name() (span, bool, error) {
	s, err := d.readName()
	if err != nil {
		return s, false, err
	}
	if s.a == s.b {
		return s, false, nil
	}
	if !d.simple && !isName(d.bytes(s)) {
		return s, false, d.syntaxError("invalid XML name: " + string(d.bytes(s)))
	}
	return s, true, nil
}

// nsname reads a qualified name into t as encoding/xml's nsname does.
func (d *Decoder) nsname(t *rawTag) (bool, error) {
	if q := d.simpleName(); q >= 0 {
		s := span{d.pos, q}
		d.pos = q
		t.q, t.simple, t.space, t.local = s, true, span{s.a, s.a}, s
		return true, nil
	}
	s, ok, err := d.name()
	if !ok {
		return false, err
	}
	t.q, t.simple = s, d.simple
	if d.simple {
		t.space, t.local = span{s.a, s.a}, s
		return true, nil
	}
	b := d.bytes(s)
	i := bytes.IndexByte(b, ':')
	switch {
	case i < 0:
		t.space, t.local = span{s.a, s.a}, s
	case bytes.IndexByte(b[i+1:], ':') >= 0:
		return false, nil
	case i == 0 || i == len(b)-1:
		t.space, t.local = span{s.a, s.a}, s
	default:
		t.space, t.local = span{s.a, s.a + i}, span{s.a + i + 1, s.b}
	}
	return true, nil
}

// endTag reads an end tag after "</" into d.tag.
func (d *Decoder) endTag() error {
	ok, err := d.nsname(&d.tag)
	if !ok {
		if err == nil {
			err = d.syntaxError("expected element name after </")
		}
		return err
	}
	if d.pos < d.end && d.buf[d.pos] == '>' {
		d.pos++
		return nil
	}
	d.space()
	c, ok := d.getc()
	if !ok {
		return d.eofErr()
	}
	if c != '>' {
		return d.syntaxError("invalid characters between </" + string(d.bytes(d.tag.local)) + " and >")
	}
	return nil
}

// startTag reads a start tag after "<" into d.tag and d.attrs.
func (d *Decoder) startTag() error {
	d.attrs = d.attrs[:0]
	d.vals = d.vals[:0]
	d.tag.empty = false
	ok, err := d.nsname(&d.tag)
	if !ok {
		if err == nil {
			err = d.syntaxError("expected element name after <")
		}
		return err
	}
	// plain: the tag's name and its attributes' are simple names, one of
	// which at most is xmlns (d.tag.xmlns), so that there is at most a
	// default namespace to declare, and no name to check.
	plain := d.tag.simple
	d.tag.xmlns = -1
	for {
		// Fast path: the end of the tag, when it is in the buffer.
		p := d.pos
		for p < d.end && isSpace[d.buf[p]] {
			p++
		}
		d.pos = p
		if p+1 < d.end {
			switch d.buf[p] {
			case '>':
				d.pos = p + 1
				d.tag.plain = plain
				return nil
			case '/':
				if d.buf[p+1] == '>' {
					d.pos = p + 2
					d.tag.empty = true
					d.tag.plain = plain
					return nil
				}
			}
		}
		var c byte
		if p < d.end {
			// Fast path: the loop above skipped the space before the
			// next byte, which is in the buffer.
			c, d.pos = d.buf[p], p+1
		} else {
			d.space()
			var ok bool
			if c, ok = d.getc(); !ok {
				return d.eofErr()
			}
		}
		if c == '/' {
			if c, ok = d.getc(); !ok {
				return d.eofErr()
			}
			if c != '>' {
				return d.syntaxError("expected /> in element")
			}
			d.tag.empty = true
			d.tag.plain = plain
			return nil
		}
		if c == '>' {
			d.tag.plain = plain
			return nil
		}
		d.pos--
		var n rawTag
		if ok, err := d.nsname(&n); !ok {
			if err == nil {
				err = d.syntaxError("expected attribute name in element")
			}
			return err
		}
		if !n.simple {
			plain = false
		} else if string(d.bytes(n.local)) == "xmlns" {
			if d.tag.xmlns >= 0 {
				plain = false // given twice: the general path says so
			}
			d.tag.xmlns = len(d.attrs)
		}
		// Fast path: =' or =" right after the name.
		if p := d.pos; p+1 < d.end && d.buf[p] == '=' && (d.buf[p+1] == '\'' || d.buf[p+1] == '"') {
			c = d.buf[p+1]
			d.pos = p + 2
		} else {
			d.space()
			if c, ok = d.getc(); !ok {
				return d.eofErr()
			}
			if c != '=' {
				return d.syntaxError("attribute name without = in element")
			}
			d.space()
			if c, ok = d.getc(); !ok {
				return d.eofErr()
			}
			if c != '"' && c != '\'' {
				return d.syntaxError("unquoted or missing attribute value in element")
			}
		}
		// Fast path: a value of plain bytes, closed in the buffer.
		var raw bool
		var s span
		i, buf := d.pos, d.buf[:d.end]
		for i < len(buf) && valueClass[buf[i]] == cPlain {
			i++
		}
		if i < len(buf) && buf[i] == c {
			raw, s = true, span{d.pos, i}
			d.pos = i + 1
		} else if raw, s, err = d.text(int(c), false); err != nil {
			return err
		}
		if !raw {
			a := len(d.vals)
			pushBytes(&d.vals, d.tmp[s.a:s.b])
			s = span{a, len(d.vals)}
		}
		a := slot(&d.attrs)
		a.space, a.local, a.raw, a.simple, a.val = n.space, n.local, raw, n.simple, s
	}
}

// procInst reads a processing instruction after "<?".
func (d *Decoder) procInst() (string, []byte, error) {
	s, ok, err := d.name()
	if !ok {
		if err == nil {
			err = d.syntaxError("expected target name after <?")
		}
		return "", nil, err
	}
	d.space()
	a := d.pos
	var b0 byte
	for {
		c, ok := d.getc()
		if !ok {
			return "", nil, d.eofErr()
		}
		if b0 == '?' && c == '>' {
			break
		}
		b0 = c
	}
	data := d.buf[a : d.pos-2]
	if string(d.bytes(s)) == "xml" {
		content := string(data)
		if ver := procInstParam("version", content); ver != "" && ver != "1.0" {
			return "", nil, &declError{fmt.Sprintf("xml: unsupported version %q; only version 1.0 is supported", ver), ErrUnsupportedVersion}
		}
		if enc := procInstParam("encoding", content); enc != "" && !strings.EqualFold(enc, "utf-8") {
			return "", nil, &declError{fmt.Sprintf("xml: encoding %q declared but Decoder.CharsetReader is nil", enc), ErrUnsupportedEncoding}
		}
	}
	return d.intern(d.bytes(s)), data, nil
}

// procInstParam finds param's value in a processing instruction's content
// the way encoding/xml does: the first occurrence of param= directly
// followed by a quote, up to the next such quote.
func procInstParam(param, s string) string {
	key := param + "="
	for i := 0; i < len(s); {
		k := strings.Index(s[i:], key)
		if k < 0 || i+k+len(key) >= len(s) {
			return ""
		}
		q := s[i+k+len(key)]
		i += k + len(key) + 1
		if q == '\'' || q == '"' {
			j := strings.IndexByte(s[i:], q)
			if j < 0 {
				return ""
			}
			return s[i : i+j]
		}
	}
	return ""
}

// bang reads what follows "<!": a comment, a CDATA section (returned as
// KindText with the text's location) or a directive.
func (d *Decoder) bang() (Kind, bool, span, error) {
	c, ok := d.getc()
	if !ok {
		return 0, false, span{}, d.eofErr()
	}
	switch c {
	case '-':
		if c, ok = d.getc(); !ok {
			return 0, false, span{}, d.eofErr()
		}
		if c != '-' {
			return 0, false, span{}, d.syntaxError("invalid sequence <!- not part of <!--")
		}
		a := d.pos
		var b0, b1 byte
		for {
			if c, ok = d.getc(); !ok {
				return 0, false, span{}, d.eofErr()
			}
			if b0 == '-' && b1 == '-' {
				if c != '>' {
					return 0, false, span{}, d.syntaxError(`invalid sequence "--" not allowed in comments`)
				}
				return KindComment, true, span{a, d.pos - 3}, nil
			}
			b0, b1 = b1, c
		}
	case '[':
		for i := range 6 {
			if c, ok = d.getc(); !ok {
				return 0, false, span{}, d.eofErr()
			}
			if c != "CDATA["[i] {
				return 0, false, span{}, d.syntaxError("invalid <![ sequence")
			}
		}
		raw, s, err := d.text(-1, true)
		return KindText, raw, s, err
	}
	// A directive. The byte after <! is taken as is; then quotes, nested
	// <...> and <!--...--> are followed to find the closing >.
	a := d.pos - 1
	var inquote byte
	depth := 0
	for {
		if c, ok = d.getc(); !ok {
			return 0, false, span{}, d.eofErr()
		}
		if inquote == 0 && c == '>' && depth == 0 {
			break
		}
	handle:
		switch {
		case c == inquote:
			inquote = 0
		case inquote != 0:
		case c == '\'' || c == '"':
			inquote = c
		case c == '>':
			depth--
		case c == '<':
			const s = "!--"
			for i := 0; i < len(s); i++ {
				if c, ok = d.getc(); !ok {
					return 0, false, span{}, d.eofErr()
				}
				if c != s[i] {
					depth++
					goto handle
				}
			}
			var b0, b1 byte
			for {
				if c, ok = d.getc(); !ok {
					return 0, false, span{}, d.eofErr()
				}
				if b0 == '-' && b1 == '-' && c == '>' {
					break
				}
				b0, b1 = b1, c
			}
		}
	}
	return KindDirective, true, span{a, d.pos - 1}, nil
}
