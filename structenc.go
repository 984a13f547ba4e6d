package iq

import (
	"encoding"
	"encoding/xml"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"unicode/utf8"
	"unsafe"
)

// errEncodeFallback makes encodeStruct hand a value to MarshalElement:
// something in it (a name that is not an NCName, a duplicate attribute,
// an error from a TextMarshaler…) is better reported, or refused, by
// encoding/xml itself.
var errEncodeFallback = errors.New("iq: left to encoding/xml")

var bytesType = reflect.TypeFor[[]byte]()

// encodeStruct returns v as an Element, as MarshalElement would (xml.Marshal,
// then parsed back), built straight from v when its type allows it.
func encodeStruct(v any) (*Element, error) {
	if e := encodeFast(v); e != nil {
		return e, nil
	}
	return marshalElementXML(v)
}

// encodeFast returns v as an Element built straight from v (through its
// type's compiled plan when it has one), or nil when v is left to
// encoding/xml.
func encodeFast(v any) *Element {
	return encodeFastWith(v, true)
}

// encodeFastWith is encodeFast; plans false keeps the tree encoder even
// for a type with a plan, for the tests that hold one to the other.
func encodeFastWith(v any, plans bool) *Element {
	if v == nil {
		return nil
	}
	t := reflect.TypeOf(v)
	ep := encodePlanFor(t)
	if ep.fallback != "" {
		return nil
	}
	if ep.sp != nil && plans {
		if p := valuePointer(v); p != nil {
			return ep.sp.encodeTop(p)
		}
	}
	h := &ep.hint
	enc := treeEncoder{hint: [3]int{int(h[0].Load()), int(h[1].Load()), int(h[2].Load())}}
	top := enc.newElement() // a holder, never handed out
	top.Content = enc.nodeSlice(1)
	if err := enc.marshalValue(top, reflect.ValueOf(v), nil, encScope{}); err != nil ||
		len(top.Content) != 1 || top.Content[0].Element == nil {
		return nil
	}
	for i, n := range enc.used {
		if int(h[i].Load()) != n {
			h[i].Store(int32(min(n, 256)))
		}
	}
	return top.Content[0].Element
}

// encHint holds, per type, how many elements, nodes and attributes its
// last value took, so that the next one's first chunks fit.
type encHint [3]atomic.Int32

// encodePlan is how values of a type are encoded, decided once per type.
type encodePlan struct {
	fallback string      // non-empty: why encoding/xml encodes them
	sp       *structPlan // else, when not nil, the compiled plan of the struct (pointed to)
	hint     encHint     // for the tree encoder
	// For GetAs: the type with its pointers taken off, and whether it is
	// a struct with an XMLName field of type xml.Name.
	base  reflect.Type
	named bool
}

// encodePlanFor returns t's encodePlan.
func encodePlanFor(t reflect.Type) *encodePlan {
	if r, ok := encPlans.Load(t); ok {
		return r.(*encodePlan)
	}
	ep := &encodePlan{fallback: checkEncode(t, map[reflect.Type]bool{}), base: t}
	for ep.base.Kind() == reflect.Pointer {
		ep.base = ep.base.Elem()
	}
	_, ep.named = xmlNameField(ep.base)
	// Only a pointer to a struct gets a plan: its address is the pointer
	// itself (reflect's UnsafePointer), where a struct held by value in an
	// interface could only be reached through the interface's layout.
	// Typed calls and handlers pass pointers; a value is encoded as a tree.
	if ep.fallback == "" && t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Struct {
		ep.sp = planFor(t.Elem())
	}
	r, _ := encPlans.LoadOrStore(t, ep)
	return r.(*encodePlan)
}

// valuePointer returns the address of the struct v, a pointer to a struct
// (as encodePlanFor checks), points to: nil for a nil pointer.
func valuePointer(v any) unsafe.Pointer {
	return reflect.ValueOf(v).UnsafePointer()
}

func checkEncode(t reflect.Type, seen map[reflect.Type]bool) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if seen[t] {
		return ""
	}
	seen[t] = true
	switch {
	case t.Kind() == reflect.Interface:
		return "interface " + t.String()
	case implements(t, marshalerType):
		return t.String() + " implements xml.Marshaler"
	case implements(t, textMarshalerType):
		return ""
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() != reflect.Uint8 {
			return checkEncode(t.Elem(), seen)
		}
		return ""
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.String:
		return ""
	case reflect.Struct:
		ti := typeInfo(t)
		if ti.fallback != "" {
			return ti.fallback
		}
		for i := range ti.fields {
			fi := &ti.fields[i]
			ft := t.FieldByIndex(fi.idx).Type
			switch fi.flags & fMode {
			case fElement, fElement | fAny:
				if r := checkEncode(ft, seen); r != "" {
					return r
				}
			case fAttr, fAttr | fAny:
				if r := checkEncodeAttr(ft); r != "" {
					return r
				}
			case fCharData:
				if ft.Kind() == reflect.Interface {
					return "interface chardata " + fi.name
				}
			default:
				return "cdata field"
			}
		}
		return ""
	}
	return "unsupported kind " + t.String()
}

func checkEncodeAttr(t reflect.Type) string {
	if implements(t, marshalerAttrType) || implements(t, textMarshalerType) {
		return ""
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return ""
		}
		return checkEncodeAttr(t.Elem())
	case reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return ""
		}
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.String:
		return ""
	case reflect.Struct:
		if t == attrType {
			return ""
		}
	}
	return "attribute of type " + t.String()
}

// encScope is what an element being built inherits: the default
// namespace in scope and the namespace its parent was written with.
type encScope struct {
	ns       string
	tagSpace string
	inTag    bool
}

// treeEncoder is encoding/xml's marshalValue, building Elements as the
// printed XML would parse. It carves elements, content and attributes
// from shared chunks, a few allocations per payload rather than a few per
// element; every slice it hands out has no spare capacity, so appending
// to one never reaches a neighbour's.
type treeEncoder struct {
	els   []Element
	nodes []Node
	attrs []xml.Attr
	hint  [3]int // first chunk sizes: elements, nodes, attributes
	used  [3]int // what this value took
	grown [3]int // chunks allocated of each
}

// chunk is the size of the next chunk of kind k (0 elements, 1 nodes,
// 2 attributes) for n items at least: the hint first, then doubling from
// base, up to 64.
func (enc *treeEncoder) chunk(k, base, n int) int {
	size := enc.hint[k]
	if enc.grown[k] > 0 || size == 0 {
		size = min(base<<enc.grown[k], 64)
	}
	enc.grown[k]++
	return max(size, n)
}

func (enc *treeEncoder) newElement() *Element {
	if len(enc.els) == 0 {
		enc.els = make([]Element, enc.chunk(0, 4, 1))
	}
	enc.used[0]++
	e := &enc.els[0]
	enc.els = enc.els[1:]
	return e
}

// nodeSlice returns an empty slice with room for n nodes.
func (enc *treeEncoder) nodeSlice(n int) []Node {
	if n > len(enc.nodes) {
		enc.nodes = make([]Node, enc.chunk(1, 8, n))
	}
	enc.used[1] += n
	s := enc.nodes[:0:n]
	enc.nodes = enc.nodes[n:]
	return s
}

// attrSlice returns an empty slice with room for n attributes.
func (enc *treeEncoder) attrSlice(n int) []xml.Attr {
	if n > len(enc.attrs) {
		enc.attrs = make([]xml.Attr, enc.chunk(2, 4, n))
	}
	enc.used[2] += n
	s := enc.attrs[:0:n]
	enc.attrs = enc.attrs[n:]
	return s
}

// appendText adds s to e's content as encoding/xml's escaping leaves it.
func (enc *treeEncoder) appendText(e *Element, s string) {
	s = safeText(s)
	if s == "" {
		return
	}
	if e.Content == nil {
		e.Content = append(enc.nodeSlice(1), Node{Text: s})
		return
	}
	e.AppendText(s)
}

func (enc *treeEncoder) marshalValue(parent *Element, val reflect.Value, fi *xfield, sc encScope) error {
	if !val.IsValid() {
		return nil
	}
	if fi != nil && fi.flags&fOmitEmpty != 0 && isEmptyValue(val) {
		return nil
	}
	for val.Kind() == reflect.Interface || val.Kind() == reflect.Pointer {
		if val.IsNil() {
			return nil
		}
		val = val.Elem()
	}
	typ := val.Type()
	if tm, pt := textMarshaler(val); tm != nil {
		var name xml.Name
		if fi != nil && fi.name != "" {
			name = xml.Name{Space: fi.xmlns, Local: fi.name}
		} else if pt.Name() != "" {
			name.Local = pt.Name()
		} else {
			name.Local = pt.Elem().Name()
		}
		text, err := tm.MarshalText()
		if err != nil {
			return errEncodeFallback
		}
		el, _, err := enc.newChild(parent, name, nil, false, sc)
		if err != nil {
			return err
		}
		enc.appendText(el, string(text))
		return nil
	}
	kind := val.Kind()
	if (kind == reflect.Slice || kind == reflect.Array) && typ.Elem().Kind() != reflect.Uint8 {
		for i, n := 0, val.Len(); i < n; i++ {
			if err := enc.marshalValue(parent, val.Index(i), fi, sc); err != nil {
				return err
			}
		}
		return nil
	}
	ti := typeInfo(typ)
	var name xml.Name
	if xn := ti.xmlname; xn != nil {
		if xn.name != "" {
			name = xml.Name{Space: xn.xmlns, Local: xn.name}
		} else if fv := val.FieldByIndex(xn.idx); fv.Type() == nameType && fv.Field(1).String() != "" {
			name = xml.Name{Space: fv.Field(0).String(), Local: fv.Field(1).String()}
		}
	}
	if name.Local == "" && fi != nil {
		name = xml.Name{Space: fi.xmlns, Local: fi.name}
	}
	if name.Local == "" {
		n := typ.Name()
		if i := strings.IndexByte(n, '['); i >= 0 {
			n = n[:i]
		}
		if n == "" {
			return errEncodeFallback
		}
		name.Local = n
	}
	var attrs []xml.Attr
	if ti.nattr > 0 {
		attrs = enc.attrSlice(ti.nattr)
	}
	for i := range ti.fields {
		f := &ti.fields[i]
		if f.flags&fAttr == 0 {
			continue
		}
		fv := val.FieldByIndex(f.idx)
		if f.flags&fOmitEmpty != 0 && isEmptyValue(fv) {
			continue
		}
		var err error
		if attrs, err = marshalAttr(attrs, xml.Name{Space: f.xmlns, Local: f.name}, fv); err != nil {
			return err
		}
	}
	override := ti.xmlname != nil && name.Space == "" && ti.xmlname.xmlns == "" && ti.xmlname.name == "" &&
		sc.inTag && sc.tagSpace != ""
	if len(attrs) == 0 {
		attrs = nil
	} else {
		attrs = attrs[:len(attrs):len(attrs)]
	}
	el, inner, err := enc.newChild(parent, name, attrs, override, sc)
	if err != nil {
		return err
	}
	if kind == reflect.Struct {
		if n := contentEstimate(ti, val); n > 0 {
			el.Content = enc.nodeSlice(n)
		}
		if err := enc.marshalStruct(el, ti, val, inner); err != nil {
			return err
		}
		if len(el.Content) == 0 {
			el.Content = nil
		} else {
			el.Content = el.Content[:len(el.Content):len(el.Content)]
		}
		return nil
	}
	s, err := simpleText(val)
	if err != nil {
		return err
	}
	enc.appendText(el, s)
	return nil
}

func (enc *treeEncoder) marshalStruct(el *Element, ti *xtype, val reflect.Value, sc encScope) error {
	// stack holds the a>b parents open, as encoding/xml's parentStack.
	var names []string
	stack := []*Element{el}
	scopes := []encScope{sc}
	trim := func(parents []string) {
		split := 0
		for ; split < len(parents) && split < len(names); split++ {
			if parents[split] != names[split] {
				break
			}
		}
		names = names[:split]
		stack = stack[:split+1]
		scopes = scopes[:split+1]
	}
	for i := range ti.fields {
		f := &ti.fields[i]
		if f.flags&fAttr != 0 {
			continue
		}
		vf := val.FieldByIndex(f.idx)
		switch f.flags & fMode {
		case fCharData:
			trim(f.parents)
			top := stack[len(stack)-1]
			if tm, _ := textMarshaler(vf); tm != nil {
				data, err := tm.MarshalText()
				if err != nil {
					return errEncodeFallback
				}
				enc.appendText(top, string(data))
				continue
			}
			vf = indirect(vf)
			switch vf.Kind() {
			case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
				reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
				reflect.Float32, reflect.Float64, reflect.Bool, reflect.String:
				s, err := simpleText(vf)
				if err != nil {
					return err
				}
				enc.appendText(top, s)
			case reflect.Slice:
				if vf.Type() == bytesType {
					enc.appendText(top, string(vf.Bytes()))
				}
			}
			continue
		case fElement, fElement | fAny:
			trim(f.parents)
			if len(f.parents) > len(names) {
				if vf.Kind() != reflect.Pointer && vf.Kind() != reflect.Interface || !vf.IsNil() {
					for _, p := range f.parents[len(names):] {
						s := scopes[len(scopes)-1]
						c, inner, err := enc.newChild(stack[len(stack)-1], xml.Name{Local: p}, nil, false, s)
						if err != nil {
							return err
						}
						names = append(names, p)
						stack = append(stack, c)
						scopes = append(scopes, inner)
					}
				}
			}
		}
		if err := enc.marshalValue(stack[len(stack)-1], vf, f, scopes[len(scopes)-1]); err != nil {
			return err
		}
	}
	return nil
}

// newChild appends to parent the element that writing name with attrs
// would give once parsed, and returns it with the scope of its children.
// Anything that would not parse back, or not as encoding/xml wrote it,
// falls back.
func (enc *treeEncoder) newChild(parent *Element, name xml.Name, attrs []xml.Attr, override bool, sc encScope) (*Element, encScope, error) {
	if !isNCName(name.Local) || !plainSpace(name.Space) {
		return nil, sc, errEncodeFallback
	}
	ns := sc.ns
	switch {
	case name.Space != "":
		ns = name.Space
	case override:
		ns = ""
	}
	for i, a := range attrs {
		if a.Name.Space == "" && a.Name.Local == "xmlns" || !isNCName(a.Name.Local) ||
			(a.Name.Space != xmlURL && !plainSpace(a.Name.Space)) {
			return nil, sc, errEncodeFallback
		}
		for _, o := range attrs[:i] {
			if o.Name == a.Name {
				return nil, sc, errEncodeFallback
			}
		}
	}
	el := enc.newElement()
	*el = Element{Name: xml.Name{Space: ns, Local: name.Local}, Attr: attrs}
	parent.Content = append(parent.Content, Node{Element: el})
	return el, encScope{ns: ns, tagSpace: name.Space, inTag: true}, nil
}

// contentEstimate is how many nodes a struct's content will likely hold:
// one per field that is not an attribute, the length of slices.
func contentEstimate(ti *xtype, val reflect.Value) int {
	n := 0
	for i := range ti.fields {
		f := &ti.fields[i]
		if f.flags&fAttr != 0 {
			continue
		}
		if len(f.parents) > 0 {
			n++
			continue
		}
		fv := val.FieldByIndex(f.idx)
		if k := fv.Kind(); (k == reflect.Slice || k == reflect.Array) && fv.Type().Elem().Kind() != reflect.Uint8 {
			n += fv.Len()
		} else {
			n++
		}
	}
	return n
}

// plainSpace reports whether a namespace name is written and read back
// as it is: empty, or absolute (holding a ':'), and not reserved.
func plainSpace(s string) bool {
	return s == "" || (strings.IndexByte(s, ':') > 0 && s != xmlURL && s != xmlnsURL && s != "xmlns" && utf8.ValidString(s) && safeText(s) == s)
}

func marshalAttr(attrs []xml.Attr, name xml.Name, val reflect.Value) ([]xml.Attr, error) {
	if val.Type().Implements(marshalerAttrType) && val.CanInterface() {
		return appendMarshaledAttr(attrs, val.Interface().(xml.MarshalerAttr), name)
	}
	if val.CanAddr() && reflect.PointerTo(val.Type()).Implements(marshalerAttrType) {
		return appendMarshaledAttr(attrs, val.Addr().Interface().(xml.MarshalerAttr), name)
	}
	if tm, _ := textMarshaler(val); tm != nil {
		text, err := tm.MarshalText()
		if err != nil {
			return attrs, errEncodeFallback
		}
		return append(attrs, xml.Attr{Name: name, Value: safeText(string(text))}), nil
	}
	switch val.Kind() {
	case reflect.Pointer, reflect.Interface:
		if val.IsNil() {
			return attrs, nil
		}
		val = val.Elem()
	}
	if val.Kind() == reflect.Slice && val.Type().Elem().Kind() != reflect.Uint8 {
		for i, n := 0, val.Len(); i < n; i++ {
			var err error
			if attrs, err = marshalAttr(attrs, name, val.Index(i)); err != nil {
				return attrs, err
			}
		}
		return attrs, nil
	}
	if val.Type() == attrType {
		a := val.Interface().(xml.Attr)
		if a.Name.Local == "" {
			return attrs, nil
		}
		a.Value = safeText(a.Value)
		return append(attrs, a), nil
	}
	s, err := simpleText(val)
	if err != nil {
		return attrs, err
	}
	return append(attrs, xml.Attr{Name: name, Value: safeText(s)}), nil
}

func appendMarshaledAttr(attrs []xml.Attr, m xml.MarshalerAttr, name xml.Name) ([]xml.Attr, error) {
	a, err := m.MarshalXMLAttr(name)
	if err != nil {
		return attrs, errEncodeFallback
	}
	if a.Name.Local == "" {
		return attrs, nil
	}
	a.Value = safeText(a.Value)
	return append(attrs, a), nil
}

// simpleText is encoding/xml's marshalSimple.
func simpleText(val reflect.Value) (string, error) {
	switch val.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(val.Int(), 10), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return strconv.FormatUint(val.Uint(), 10), nil
	case reflect.Float32, reflect.Float64:
		return strconv.FormatFloat(val.Float(), 'g', -1, val.Type().Bits()), nil
	case reflect.String:
		return val.String(), nil
	case reflect.Bool:
		return strconv.FormatBool(val.Bool()), nil
	case reflect.Array:
		if val.Type().Elem().Kind() == reflect.Uint8 {
			b := make([]byte, val.Len())
			reflect.Copy(reflect.ValueOf(b), val)
			return string(b), nil
		}
	case reflect.Slice:
		if val.Type().Elem().Kind() == reflect.Uint8 {
			return string(val.Bytes()), nil
		}
	}
	return "", errEncodeFallback
}

// textMarshaler returns val (or its address) as an encoding.TextMarshaler,
// as encoding/xml looks for one, with the type it was found on.
func textMarshaler(val reflect.Value) (encoding.TextMarshaler, reflect.Type) {
	t := val.Type()
	if t.Implements(textMarshalerType) && val.CanInterface() {
		if t.Kind() == reflect.Pointer && val.IsNil() {
			return nil, nil
		}
		return val.Interface().(encoding.TextMarshaler), t
	}
	if val.CanAddr() && reflect.PointerTo(t).Implements(textMarshalerType) {
		if pv := val.Addr(); pv.CanInterface() {
			return pv.Interface().(encoding.TextMarshaler), pv.Type()
		}
	}
	return nil, nil
}

func indirect(v reflect.Value) reflect.Value {
	for v.Kind() == reflect.Interface || v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return v
		}
		v = v.Elem()
	}
	return v
}

// isEmptyValue is encoding/xml's test for omitempty.
func isEmptyValue(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() == 0
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Interface, reflect.Pointer:
		return v.IsZero()
	}
	return false
}

// safeText is what encoding/xml's escaping leaves of s once read back:
// each byte of invalid UTF-8 and each character XML cannot hold becomes
// U+FFFD.
func safeText(s string) string {
	i := 0
	for ; i < len(s); i++ { // ASCII that XML allows, the usual case, byte by byte
		if c := s[i]; (c < 0x20 || c >= utf8.RuneSelf) && c != '\t' && c != '\n' && c != '\r' {
			break
		}
	}
	for i < len(s) {
		r, w := utf8.DecodeRuneInString(s[i:])
		if !xmlChar(r) || (r == utf8.RuneError && w == 1) {
			return replaceBad(s)
		}
		i += w
	}
	return s
}

func replaceBad(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, w := utf8.DecodeRuneInString(s[i:])
		if !xmlChar(r) || (r == utf8.RuneError && w == 1) {
			b.WriteRune('\uFFFD')
		} else {
			b.WriteString(s[i : i+w])
		}
		i += w
	}
	return b.String()
}

func xmlChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D || r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF
}
