package iq

import (
	"encoding/xml"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"unsafe"
)

// Compiled plans: the common shape of a typed payload (a struct of
// attributes, character data, child elements of the basic kinds, lists of
// them and nested structs of the same shape) decoded and encoded through
// field offsets worked out once per type, with no reflection per value.
// A plan is made only for types the tree codec (structcodec.go,
// structenc.go) already handles without falling back, and only when every
// field is of that shape; any other type keeps the tree codec, which stays
// the reference: each step below is the one it takes for the same field,
// and the differential tests and FuzzDecodeStruct hold both to
// encoding/xml.

// leafKind is the kind of a field held as text: an attribute, character
// data or a child element's text.
type leafKind uint8

const (
	lkNone leafKind = iota
	lkString
	lkBool
	lkInt
	lkInt8
	lkInt16
	lkInt32
	lkInt64
	lkUint
	lkUint8
	lkUint16
	lkUint32
	lkUint64
	lkUintptr
	lkFloat32
	lkFloat64
	lkBytes
)

// fieldKind is how a plan field is held in its element.
type fieldKind uint8

const (
	pkLeaf           fieldKind = iota // a child element's text
	pkLeafSlice                       // a child element per item
	pkStruct                          // a nested struct
	pkPtrStruct                       // a pointer to one, allocated on decode
	pkStructSlice                     // a child element per struct
	pkPtrStructSlice                  // a child element per non-nil pointer
	pkCharData                        // character data of the element itself
)

// planField is one field of a plan: where it lives in the struct and the
// name it is written with.
type planField struct {
	off   uintptr
	name  string
	xmlns string
	omit  bool
	kind  fieldKind
	leaf  leafKind
	sub   *structPlan
	slice reflect.Type // the slice type, to grow it
	size  uintptr      // an item's size in a slice
}

// structPlan is a struct type's compiled layout.
type structPlan struct {
	typ reflect.Type
	// The XMLName field, when there is one: its offset, and the name its
	// tag gives (empty when the name is taken from the value).
	hasXN    bool
	xnOff    uintptr
	xnName   string
	xnSpace  string
	typeName string // the name when nothing else gives one
	attrs    []planField
	elems    []planField // element fields, in field order
	content  []planField // element and chardata fields, in field order
	chardata *planField  // the first chardata field, which receives the text
}

var plans sync.Map // reflect.Type (the struct) → *structPlan, nil when not compiled

// planFor returns t's plan, or nil when t is left to the tree codec.
func planFor(t reflect.Type) *structPlan {
	if p, ok := plans.Load(t); ok {
		return p.(*structPlan)
	}
	var sp *structPlan
	if t.Kind() == reflect.Struct && checkDecode(t, map[reflect.Type]bool{}) == "" && checkEncode(t, map[reflect.Type]bool{}) == "" {
		sp = compilePlan(t, map[reflect.Type]*structPlan{})
	}
	p, _ := plans.LoadOrStore(t, sp)
	return p.(*structPlan)
}

// hasCodecMethods reports whether t or *t has a method through which
// encoding/xml would read or write it rather than by its kind.
func hasCodecMethods(t reflect.Type) bool {
	for _, iface := range []reflect.Type{unmarshalerType, marshalerType, textUnmarshalerType,
		textMarshalerType, unmarshalerAttrType, marshalerAttrType} {
		if implements(t, iface) {
			return true
		}
	}
	return false
}

// leafKindOf returns the leaf kind of a plain field type, lkNone for any
// other.
func leafKindOf(t reflect.Type) leafKind {
	if hasCodecMethods(t) {
		return lkNone
	}
	switch t.Kind() {
	case reflect.String:
		return lkString
	case reflect.Bool:
		return lkBool
	case reflect.Int:
		return lkInt
	case reflect.Int8:
		return lkInt8
	case reflect.Int16:
		return lkInt16
	case reflect.Int32:
		return lkInt32
	case reflect.Int64:
		return lkInt64
	case reflect.Uint:
		return lkUint
	case reflect.Uint8:
		return lkUint8
	case reflect.Uint16:
		return lkUint16
	case reflect.Uint32:
		return lkUint32
	case reflect.Uint64:
		return lkUint64
	case reflect.Uintptr:
		return lkUintptr
	case reflect.Float32:
		return lkFloat32
	case reflect.Float64:
		return lkFloat64
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return lkBytes
		}
	}
	return lkNone
}

// compilePlan builds t's plan, or returns nil when a field is not of the
// shape plans handle. seen holds the plans being built, for recursive
// types.
func compilePlan(t reflect.Type, seen map[reflect.Type]*structPlan) *structPlan {
	if sp, ok := seen[t]; ok {
		return sp
	}
	if t.Kind() != reflect.Struct || t == nameType || t == attrType || hasCodecMethods(t) {
		return nil
	}
	ti := typeInfo(t)
	if ti.fallback != "" {
		return nil
	}
	sp := &structPlan{typ: t}
	seen[t] = sp
	if xn := ti.xmlname; xn != nil {
		f := t.FieldByIndex(xn.idx)
		if f.Type != nameType || len(xn.idx) != 1 {
			return nil
		}
		if xn.name != "" && (!isNCName(xn.name) || !plainSpace(xn.xmlns)) {
			return nil
		}
		sp.hasXN, sp.xnOff, sp.xnName, sp.xnSpace = true, f.Offset, xn.name, xn.xmlns
	}
	sp.typeName = t.Name()
	if i := strings.IndexByte(sp.typeName, '['); i >= 0 {
		sp.typeName = sp.typeName[:i]
	}
	for i := range ti.fields {
		fi := &ti.fields[i]
		if len(fi.parents) > 0 {
			return nil
		}
		var off uintptr
		ft := t
		for _, j := range fi.idx {
			sf := ft.Field(j)
			off += sf.Offset
			ft = sf.Type
		}
		pf := planField{off: off, name: fi.name, xmlns: fi.xmlns, omit: fi.flags&fOmitEmpty != 0}
		switch fi.flags & fMode {
		case fAttr:
			if pf.leaf = leafKindOf(ft); pf.leaf == lkNone {
				return nil
			}
			if !isNCName(pf.name) || pf.xmlns == "" && pf.name == "xmlns" || pf.xmlns != xmlURL && !plainSpace(pf.xmlns) {
				return nil
			}
			for _, o := range sp.attrs {
				if o.name == pf.name && o.xmlns == pf.xmlns {
					return nil
				}
			}
			sp.attrs = append(sp.attrs, pf)
		case fCharData:
			if pf.leaf = leafKindOf(ft); pf.leaf == lkNone || pf.leaf == lkBytes {
				return nil
			}
			pf.kind = pkCharData
			sp.content = append(sp.content, pf)
			if sp.chardata == nil {
				cd := pf
				sp.chardata = &cd
			}
		case fElement:
			if !isNCName(pf.name) || !plainSpace(pf.xmlns) {
				return nil
			}
			if !compileElement(&pf, ft, seen) {
				return nil
			}
			sp.elems = append(sp.elems, pf)
			sp.content = append(sp.content, pf)
		default:
			return nil
		}
	}
	return sp
}

// compileElement fills in how an element field of type ft is held.
func compileElement(pf *planField, ft reflect.Type, seen map[reflect.Type]*structPlan) bool {
	if pf.leaf = leafKindOf(ft); pf.leaf != lkNone {
		pf.kind = pkLeaf
		return true
	}
	switch ft.Kind() {
	case reflect.Struct:
		pf.kind, pf.sub = pkStruct, compilePlan(ft, seen)
		return pf.sub != nil
	case reflect.Pointer:
		if hasCodecMethods(ft) {
			return false
		}
		pf.kind, pf.sub = pkPtrStruct, compilePlan(ft.Elem(), seen)
		return pf.sub != nil
	case reflect.Slice:
		if hasCodecMethods(ft) {
			return false
		}
		et := ft.Elem()
		pf.slice, pf.size = ft, et.Size()
		if pf.leaf = leafKindOf(et); pf.leaf != lkNone {
			pf.kind = pkLeafSlice
			return pf.leaf != lkBytes
		}
		if et.Kind() == reflect.Pointer {
			if hasCodecMethods(et) {
				return false
			}
			pf.kind, pf.sub = pkPtrStructSlice, compilePlan(et.Elem(), seen)
			return pf.sub != nil
		}
		pf.kind, pf.sub = pkStructSlice, compilePlan(et, seen)
		return pf.sub != nil
	}
	return false
}

// sliceHeader is a slice's layout, to reach its items by offset.
type sliceHeader struct {
	data unsafe.Pointer
	len  int
	cap  int
}

// decode is treeDecoder.unmarshal for a struct with a plan, at p.
func (sp *structPlan) decode(p unsafe.Pointer, e *Element, depth int) error {
	if depth > maxStructDecodeDepth {
		return errUnmarshalDepth
	}
	if sp.hasXN {
		if err := checkXMLName(sp.xnName, sp.xnSpace, e.Name); err != nil {
			return err
		}
		*(*xml.Name)(unsafe.Add(p, sp.xnOff)) = e.Name
	}
	if len(sp.attrs) > 0 {
		for _, a := range e.Attr {
			for i := range sp.attrs {
				f := &sp.attrs[i]
				if a.Name.Local == f.name && (f.xmlns == "" || f.xmlns == a.Name.Space) {
					if err := setLeaf(unsafe.Add(p, f.off), f.leaf, a.Value); err != nil {
						return err
					}
				}
			}
		}
	}
	var text textAcc
	for _, n := range e.Content {
		if c := n.Element; c != nil {
			for i := range sp.elems {
				f := &sp.elems[i]
				if f.name == c.Name.Local && (f.xmlns == "" || f.xmlns == c.Name.Space) {
					if err := f.decode(p, c, depth); err != nil {
						return err
					}
					break
				}
			}
		} else if sp.chardata != nil {
			text.add(n.Text)
		}
	}
	if sp.chardata != nil {
		return setLeaf(unsafe.Add(p, sp.chardata.off), sp.chardata.leaf, text.str())
	}
	return nil
}

// decode decodes child element c into field f of the struct at p, at the
// depth treeDecoder would reach it: one more for the field, another for
// an item of a slice.
func (f *planField) decode(p unsafe.Pointer, c *Element, depth int) error {
	fp := unsafe.Add(p, f.off)
	switch f.kind {
	case pkLeaf:
		if depth+1 > maxStructDecodeDepth {
			return errUnmarshalDepth
		}
		return setLeaf(fp, f.leaf, elementText(c))
	case pkStruct:
		return f.sub.decode(fp, c, depth+1)
	case pkPtrStruct:
		if depth+1 > maxStructDecodeDepth {
			return errUnmarshalDepth
		}
		q := (*unsafe.Pointer)(fp)
		if *q == nil {
			*q = reflect.New(f.sub.typ).UnsafePointer()
		}
		return f.sub.decode(*q, c, depth+1)
	}
	// A slice: one more item, dropped again if it does not decode.
	if depth+1 > maxStructDecodeDepth {
		return errUnmarshalDepth
	}
	h := (*sliceHeader)(fp)
	n := h.len
	if n == h.cap {
		growOne(reflect.NewAt(f.slice, fp).Elem())
	}
	h.len = n + 1
	item := unsafe.Add(h.data, uintptr(n)*f.size)
	var err error
	switch {
	case depth+2 > maxStructDecodeDepth && f.kind != pkStructSlice:
		err = errUnmarshalDepth
	case f.kind == pkLeafSlice:
		err = setLeaf(item, f.leaf, elementText(c))
	case f.kind == pkPtrStructSlice:
		q := (*unsafe.Pointer)(item)
		if *q == nil {
			*q = reflect.New(f.sub.typ).UnsafePointer()
		}
		err = f.sub.decode(*q, c, depth+2)
	default:
		err = f.sub.decode(item, c, depth+2)
	}
	if err != nil {
		h.len = n
	}
	return err
}

// elementText is e's own character data, as treeDecoder gathers it for a
// field of a basic kind.
func elementText(e *Element) string {
	var t textAcc
	for _, n := range e.Content {
		if n.Element == nil {
			t.add(n.Text)
		}
	}
	return t.str()
}

// setLeaf is copyValue for a leaf at p.
func setLeaf(p unsafe.Pointer, k leafKind, src string) error {
	switch k {
	case lkString:
		*(*string)(p) = src
		return nil
	case lkBytes:
		if len(src) == 0 {
			*(*[]byte)(p) = []byte{}
		} else {
			*(*[]byte)(p) = []byte(src)
		}
		return nil
	case lkBool:
		if len(src) == 0 {
			*(*bool)(p) = false
			return nil
		}
		b, err := strconv.ParseBool(strings.TrimSpace(src))
		if err != nil {
			return err
		}
		*(*bool)(p) = b
		return nil
	case lkFloat32, lkFloat64:
		bits := 64
		if k == lkFloat32 {
			bits = 32
		}
		var f float64
		if len(src) != 0 {
			var err error
			if f, err = strconv.ParseFloat(strings.TrimSpace(src), bits); err != nil {
				return err
			}
		}
		if k == lkFloat32 {
			*(*float32)(p) = float32(f)
		} else {
			*(*float64)(p) = f
		}
		return nil
	case lkInt, lkInt8, lkInt16, lkInt32, lkInt64:
		var i int64
		if len(src) != 0 {
			var err error
			if i, err = parseInt(src, leafBits(k)); err != nil {
				return err
			}
		}
		switch k {
		case lkInt:
			*(*int)(p) = int(i)
		case lkInt8:
			*(*int8)(p) = int8(i)
		case lkInt16:
			*(*int16)(p) = int16(i)
		case lkInt32:
			*(*int32)(p) = int32(i)
		default:
			*(*int64)(p) = i
		}
		return nil
	}
	var u uint64
	if len(src) != 0 {
		var err error
		if u, err = strconv.ParseUint(strings.TrimSpace(src), 10, leafBits(k)); err != nil {
			return err
		}
	}
	switch k {
	case lkUint:
		*(*uint)(p) = uint(u)
	case lkUint8:
		*(*uint8)(p) = uint8(u)
	case lkUint16:
		*(*uint16)(p) = uint16(u)
	case lkUint32:
		*(*uint32)(p) = uint32(u)
	case lkUint64:
		*(*uint64)(p) = u
	default:
		*(*uintptr)(p) = uintptr(u)
	}
	return nil
}

// parseInt is strconv.ParseInt(strings.TrimSpace(s), 10, bits), with a
// shortcut for plain digits too few to overflow bits.
func parseInt(s string, bits int) (int64, error) {
	if n := len(s); n > 0 && n <= safeDigits(bits) {
		var v int64
		for i := 0; i < n; i++ {
			c := s[i] - '0'
			if c > 9 {
				return strconv.ParseInt(strings.TrimSpace(s), 10, bits)
			}
			v = v*10 + int64(c)
		}
		return v, nil
	}
	return strconv.ParseInt(strings.TrimSpace(s), 10, bits)
}

// safeDigits is how many decimal digits always fit a signed integer of
// bits.
func safeDigits(bits int) int {
	switch bits {
	case 8:
		return 2
	case 16:
		return 4
	case 32:
		return 9
	}
	return 18
}

// leafBits is the size of an integer kind, as reflect's Bits gives it.
func leafBits(k leafKind) int {
	switch k {
	case lkInt8, lkUint8:
		return 8
	case lkInt16, lkUint16:
		return 16
	case lkInt32, lkUint32:
		return 32
	case lkInt64, lkUint64:
		return 64
	}
	return strconv.IntSize
}

// leafText is simpleText for a leaf at p.
func leafText(p unsafe.Pointer, k leafKind) string {
	switch k {
	case lkString:
		return *(*string)(p)
	case lkBytes:
		return string(*(*[]byte)(p))
	case lkBool:
		return strconv.FormatBool(*(*bool)(p))
	case lkInt:
		return strconv.Itoa(*(*int)(p))
	case lkInt8:
		return strconv.FormatInt(int64(*(*int8)(p)), 10)
	case lkInt16:
		return strconv.FormatInt(int64(*(*int16)(p)), 10)
	case lkInt32:
		return strconv.FormatInt(int64(*(*int32)(p)), 10)
	case lkInt64:
		return strconv.FormatInt(*(*int64)(p), 10)
	case lkUint:
		return strconv.FormatUint(uint64(*(*uint)(p)), 10)
	case lkUint8:
		return strconv.FormatUint(uint64(*(*uint8)(p)), 10)
	case lkUint16:
		return strconv.FormatUint(uint64(*(*uint16)(p)), 10)
	case lkUint32:
		return strconv.FormatUint(uint64(*(*uint32)(p)), 10)
	case lkUint64:
		return strconv.FormatUint(*(*uint64)(p), 10)
	case lkUintptr:
		return strconv.FormatUint(uint64(*(*uintptr)(p)), 10)
	case lkFloat32:
		return strconv.FormatFloat(float64(*(*float32)(p)), 'g', -1, 32)
	case lkFloat64:
		return strconv.FormatFloat(*(*float64)(p), 'g', -1, 64)
	}
	return ""
}

// leafEmpty is isEmptyValue for a leaf at p.
func leafEmpty(p unsafe.Pointer, k leafKind) bool {
	switch k {
	case lkString:
		return len(*(*string)(p)) == 0
	case lkBytes:
		return len(*(*[]byte)(p)) == 0
	case lkBool:
		return !*(*bool)(p)
	case lkInt8, lkUint8:
		return *(*uint8)(p) == 0
	case lkInt16, lkUint16:
		return *(*uint16)(p) == 0
	case lkInt32, lkUint32:
		return *(*uint32)(p) == 0
	case lkInt64, lkUint64:
		return *(*uint64)(p) == 0
	case lkInt, lkUint:
		return *(*uint)(p) == 0
	case lkUintptr:
		return *(*uintptr)(p) == 0
	case lkFloat32:
		return *(*float32)(p) == 0 // -0 too, as reflect's IsZero says
	case lkFloat64:
		return *(*float64)(p) == 0
	}
	return false
}

// planEncoder carves a plan's elements, nodes and attributes from chunks
// sized by a first count, as treeEncoder does from its hints.
type planEncoder struct {
	els   []Element
	nodes []Node
	attrs []xml.Attr
}

func (pe *planEncoder) newElement() *Element {
	if len(pe.els) == 0 {
		pe.els = make([]Element, 4)
	}
	e := &pe.els[0]
	pe.els = pe.els[1:]
	return e
}

func (pe *planEncoder) nodeSlice(n int) []Node {
	if n > len(pe.nodes) {
		pe.nodes = make([]Node, max(n, 8))
	}
	s := pe.nodes[:0:n]
	pe.nodes = pe.nodes[n:]
	return s
}

func (pe *planEncoder) attrSlice(n int) []xml.Attr {
	if n > len(pe.attrs) {
		pe.attrs = make([]xml.Attr, max(n, 4))
	}
	s := pe.attrs[:0:n]
	pe.attrs = pe.attrs[n:]
	return s
}

// count adds up what encoding the struct at p takes at most: elements,
// nodes and attributes.
func (sp *structPlan) count(p unsafe.Pointer, c *[3]int) {
	c[0]++
	c[2] += len(sp.attrs)
	for i := range sp.content {
		f := &sp.content[i]
		fp := unsafe.Add(p, f.off)
		switch f.kind {
		case pkCharData:
			c[1]++
		case pkLeaf:
			c[0]++
			c[1] += 2
		case pkLeafSlice:
			n := (*sliceHeader)(fp).len
			c[0] += n
			c[1] += 2 * n
		case pkStruct:
			c[1]++
			f.sub.count(fp, c)
		case pkPtrStruct:
			if q := *(*unsafe.Pointer)(fp); q != nil {
				c[1]++
				f.sub.count(q, c)
			}
		case pkStructSlice:
			h := (*sliceHeader)(fp)
			c[1] += h.len
			for j := 0; j < h.len; j++ {
				f.sub.count(unsafe.Add(h.data, uintptr(j)*f.size), c)
			}
		case pkPtrStructSlice:
			h := (*sliceHeader)(fp)
			for j := 0; j < h.len; j++ {
				if q := *(*unsafe.Pointer)(unsafe.Add(h.data, uintptr(j)*f.size)); q != nil {
					c[1]++
					f.sub.count(q, c)
				}
			}
		}
	}
}

// encodeTop returns the struct at p as an Element, or nil when it is left
// to encoding/xml (a name given at run time that cannot be written).
func (sp *structPlan) encodeTop(p unsafe.Pointer) *Element {
	var c [3]int
	sp.count(p, &c)
	var pe planEncoder
	if size, ok := blockSize(c); ok {
		pe.els, pe.nodes, pe.attrs, _ = treeBlockFor(size, false).alloc()
	} else {
		pe.els = make([]Element, c[0])
		pe.nodes = make([]Node, c[1])
		pe.attrs = make([]xml.Attr, c[2])
	}
	e, ok := sp.encode(&pe, nil, p, nil, encScope{})
	if !ok {
		return nil
	}
	return e
}

// encode is treeEncoder.marshalValue for a struct with a plan, at p; fi
// is the field it is written for, nil at the top. It appends the element
// to parent, when not nil, and returns it; false means the value is left
// to encoding/xml.
func (sp *structPlan) encode(pe *planEncoder, parent *Element, p unsafe.Pointer, fi *planField, sc encScope) (*Element, bool) {
	var name xml.Name
	checked := true
	if sp.xnName != "" {
		name = xml.Name{Space: sp.xnSpace, Local: sp.xnName}
	} else if sp.hasXN {
		if n := *(*xml.Name)(unsafe.Add(p, sp.xnOff)); n.Local != "" {
			name, checked = n, false
		}
	}
	if name.Local == "" && fi != nil {
		name = xml.Name{Space: fi.xmlns, Local: fi.name}
	}
	if name.Local == "" {
		if sp.typeName == "" {
			return nil, false
		}
		name.Local, checked = sp.typeName, false
	}
	if !checked && (!isNCName(name.Local) || !plainSpace(name.Space)) {
		return nil, false
	}
	var attrs []xml.Attr
	if len(sp.attrs) > 0 {
		attrs = pe.attrSlice(len(sp.attrs))
		for i := range sp.attrs {
			f := &sp.attrs[i]
			fp := unsafe.Add(p, f.off)
			if f.omit && leafEmpty(fp, f.leaf) {
				continue
			}
			attrs = append(attrs, xml.Attr{Name: xml.Name{Space: f.xmlns, Local: f.name}, Value: safeText(leafText(fp, f.leaf))})
		}
		if len(attrs) == 0 {
			attrs = nil
		}
	}
	ns := sc.ns
	switch {
	case name.Space != "":
		ns = name.Space
	case sp.hasXN && sp.xnName == "" && sc.inTag && sc.tagSpace != "":
		ns = ""
	}
	el := pe.newElement()
	*el = Element{Name: xml.Name{Space: ns, Local: name.Local}, Attr: attrs}
	if parent != nil {
		parent.Content = append(parent.Content, Node{Element: el})
	}
	inner := encScope{ns: ns, tagSpace: name.Space, inTag: true}
	if n := sp.contentLen(p); n > 0 {
		el.Content = pe.nodeSlice(n)
	}
	for i := range sp.content {
		f := &sp.content[i]
		fp := unsafe.Add(p, f.off)
		switch f.kind {
		case pkCharData:
			appendMerged(el, safeText(leafText(fp, f.leaf)))
		case pkLeaf:
			if f.omit && leafEmpty(fp, f.leaf) {
				continue
			}
			pe.leafElement(el, f, fp, inner)
		case pkLeafSlice:
			h := (*sliceHeader)(fp)
			for j := 0; j < h.len; j++ {
				item := unsafe.Add(h.data, uintptr(j)*f.size)
				if f.omit && leafEmpty(item, f.leaf) {
					continue
				}
				pe.leafElement(el, f, item, inner)
			}
		case pkStruct:
			if _, ok := f.sub.encode(pe, el, fp, f, inner); !ok {
				return nil, false
			}
		case pkPtrStruct:
			if q := *(*unsafe.Pointer)(fp); q != nil {
				if _, ok := f.sub.encode(pe, el, q, f, inner); !ok {
					return nil, false
				}
			}
		case pkStructSlice:
			h := (*sliceHeader)(fp)
			for j := 0; j < h.len; j++ {
				if _, ok := f.sub.encode(pe, el, unsafe.Add(h.data, uintptr(j)*f.size), f, inner); !ok {
					return nil, false
				}
			}
		case pkPtrStructSlice:
			h := (*sliceHeader)(fp)
			for j := 0; j < h.len; j++ {
				if q := *(*unsafe.Pointer)(unsafe.Add(h.data, uintptr(j)*f.size)); q != nil {
					if _, ok := f.sub.encode(pe, el, q, f, inner); !ok {
						return nil, false
					}
				}
			}
		}
	}
	if len(el.Content) == 0 {
		el.Content = nil
	} else {
		el.Content = el.Content[:len(el.Content):len(el.Content)]
	}
	return el, true
}

// contentLen is how many nodes the struct at p holds at most.
func (sp *structPlan) contentLen(p unsafe.Pointer) int {
	n := 0
	for i := range sp.content {
		f := &sp.content[i]
		fp := unsafe.Add(p, f.off)
		switch f.kind {
		case pkLeafSlice, pkStructSlice:
			n += (*sliceHeader)(fp).len
		case pkPtrStructSlice:
			h := (*sliceHeader)(fp)
			for j := 0; j < h.len; j++ {
				if *(*unsafe.Pointer)(unsafe.Add(h.data, uintptr(j)*f.size)) != nil {
					n++
				}
			}
		case pkPtrStruct:
			if *(*unsafe.Pointer)(fp) != nil {
				n++
			}
		default:
			n++
		}
	}
	return n
}

// leafElement appends to parent the child element holding the leaf at p.
func (pe *planEncoder) leafElement(parent *Element, f *planField, p unsafe.Pointer, sc encScope) {
	ns := sc.ns
	if f.xmlns != "" {
		ns = f.xmlns
	}
	el := pe.newElement()
	*el = Element{Name: xml.Name{Space: ns, Local: f.name}}
	if s := safeText(leafText(p, f.leaf)); s != "" {
		el.Content = append(pe.nodeSlice(1), Node{Text: s})
	}
	parent.Content = append(parent.Content, Node{Element: el})
}

// appendMerged is treeEncoder.appendText on content already allocated.
func appendMerged(e *Element, s string) {
	if s == "" {
		return
	}
	if n := len(e.Content); n > 0 && e.Content[n-1].Element == nil {
		e.Content[n-1].Text += s
		return
	}
	e.Content = append(e.Content, Node{Text: s})
}
