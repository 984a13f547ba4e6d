package iq

import (
	"encoding"
	"encoding/xml"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
)

// The typed path's struct codec: see "Struct payloads" in GetAs's
// documentation for what it supports and when it leaves a type to
// encoding/xml. The decoder mirrors encoding/xml's typeinfo.go and
// read.go step by step over the Element tree, the encoder (structenc.go)
// mirrors marshal.go, so that their corners (field order, a>b paths,
// attribute matching, slices growing and shrinking on error, the errors
// themselves) come out the same; differential tests and FuzzDecodeStruct
// hold them to it.

// fieldFlags mirror encoding/xml's tag modes.
type fieldFlags int

const (
	fElement fieldFlags = 1 << iota
	fAttr
	fCDATA
	fCharData
	fInnerXML
	fComment
	fAny

	fOmitEmpty

	fMode = fElement | fAttr | fCDATA | fCharData | fInnerXML | fComment | fAny
)

// xfield is one field of a struct as encoding/xml sees it.
type xfield struct {
	idx     []int
	name    string
	xmlns   string
	flags   fieldFlags
	parents []string
}

// xtype is a struct type's fields as encoding/xml lays them out, or why
// this codec leaves the type to encoding/xml.
type xtype struct {
	xmlname  *xfield
	fields   []xfield
	nattr    int    // attribute fields, for the encoder's first guess
	fallback string // non-empty: the reason the type is left to encoding/xml
}

var (
	xtypes   sync.Map // reflect.Type → *xtype
	decPlans sync.Map // reflect.Type → *decodePlan
	encPlans sync.Map // reflect.Type → *encodePlan

	nameType             = reflect.TypeFor[xml.Name]()
	attrType             = reflect.TypeFor[xml.Attr]()
	unmarshalerType      = reflect.TypeFor[xml.Unmarshaler]()
	marshalerType        = reflect.TypeFor[xml.Marshaler]()
	textUnmarshalerType  = reflect.TypeFor[encoding.TextUnmarshaler]()
	textMarshalerType    = reflect.TypeFor[encoding.TextMarshaler]()
	unmarshalerAttrType  = reflect.TypeFor[xml.UnmarshalerAttr]()
	marshalerAttrType    = reflect.TypeFor[xml.MarshalerAttr]()
	errUnmarshalDepth    = errors.New("exceeded max depth")
	maxStructDecodeDepth = 10000
)

// typeInfo returns t's layout, built once, as encoding/xml's getTypeInfo
// builds it; anything it would reject or resolve by embedding depth marks
// the type as a fallback.
func typeInfo(t reflect.Type) *xtype {
	if ti, ok := xtypes.Load(t); ok {
		return ti.(*xtype)
	}
	ti := buildTypeInfo(t)
	v, _ := xtypes.LoadOrStore(t, ti)
	return v.(*xtype)
}

func buildTypeInfo(typ reflect.Type) *xtype {
	ti := &xtype{}
	if typ.Kind() != reflect.Struct || typ == nameType {
		return ti
	}
	for i := 0; i < typ.NumField(); i++ {
		f := typ.Field(i)
		if (!f.IsExported() && !f.Anonymous) || f.Tag.Get("xml") == "-" {
			continue
		}
		if f.Anonymous {
			t := f.Type
			if t.Kind() == reflect.Pointer {
				if t.Elem().Kind() == reflect.Struct {
					ti.fallback = "embedded struct pointer " + f.Name
					return ti
				}
			}
			if t.Kind() == reflect.Struct {
				inner := typeInfo(t)
				if inner.fallback != "" {
					ti.fallback = inner.fallback
					return ti
				}
				if ti.xmlname == nil && inner.xmlname != nil {
					ti.fallback = "XMLName promoted from embedded " + f.Name
					return ti
				}
				for _, fi := range inner.fields {
					fi.idx = append([]int{i}, fi.idx...)
					if !addField(ti, fi) {
						ti.fallback = "conflicting field " + f.Name
						return ti
					}
				}
				continue
			}
		}
		fi, err := fieldInfo(typ, &f)
		if err != "" {
			ti.fallback = err
			return ti
		}
		if f.Name == "XMLName" {
			ti.xmlname = fi
			continue
		}
		switch fi.flags & fMode {
		case fInnerXML, fComment:
			ti.fallback = "innerxml or comment field " + f.Name
			return ti
		case fAttr, fAttr | fAny:
			if fi.xmlns == "xmlns" || (fi.flags&fAny == 0 && fi.name == "xmlns") {
				ti.fallback = "attribute in the xmlns namespace " + f.Name
				return ti
			}
		}
		if !addField(ti, *fi) {
			ti.fallback = "conflicting field " + f.Name
			return ti
		}
	}
	for i := range ti.fields {
		if ti.fields[i].flags&fAttr != 0 {
			ti.nattr++
		}
	}
	return ti
}

// fieldInfo parses one field's tag as encoding/xml's structFieldInfo does;
// a non-empty string tells why encoding/xml would refuse it.
func fieldInfo(typ reflect.Type, f *reflect.StructField) (*xfield, string) {
	fi := &xfield{idx: f.Index}
	tag := f.Tag.Get("xml")
	if ns, t, ok := strings.Cut(tag, " "); ok {
		fi.xmlns, tag = ns, t
	}
	bad := "invalid tag in field " + f.Name + " of " + typ.String()
	tokens := strings.Split(tag, ",")
	if len(tokens) == 1 {
		fi.flags = fElement
	} else {
		tag = tokens[0]
		for _, flag := range tokens[1:] {
			switch flag {
			case "attr":
				fi.flags |= fAttr
			case "cdata":
				fi.flags |= fCDATA
			case "chardata":
				fi.flags |= fCharData
			case "innerxml":
				fi.flags |= fInnerXML
			case "comment":
				fi.flags |= fComment
			case "any":
				fi.flags |= fAny
			case "omitempty":
				fi.flags |= fOmitEmpty
			}
		}
		switch mode := fi.flags & fMode; mode {
		case 0:
			fi.flags |= fElement
		case fAttr, fCDATA, fCharData, fInnerXML, fComment, fAny, fAny | fAttr:
			if f.Name == "XMLName" || tag != "" && mode != fAttr {
				return nil, bad
			}
		default:
			return nil, bad
		}
		if fi.flags&fMode == fAny {
			fi.flags |= fElement
		}
		if fi.flags&fOmitEmpty != 0 && fi.flags&(fElement|fAttr) == 0 {
			return nil, bad
		}
	}
	if fi.xmlns != "" && tag == "" {
		return nil, bad
	}
	if f.Name == "XMLName" {
		fi.name = tag
		return fi, ""
	}
	if tag == "" {
		if xn := lookupXMLName(f.Type); xn != nil {
			fi.xmlns, fi.name = xn.xmlns, xn.name
		} else {
			fi.name = f.Name
		}
		return fi, ""
	}
	parents := strings.Split(tag, ">")
	if parents[0] == "" {
		parents[0] = f.Name
	}
	if parents[len(parents)-1] == "" {
		return nil, bad
	}
	fi.name = parents[len(parents)-1]
	if len(parents) > 1 {
		if fi.flags&fElement == 0 {
			return nil, bad
		}
		fi.parents = parents[:len(parents)-1]
	}
	if fi.flags&fElement != 0 {
		if xn := lookupXMLName(f.Type); xn != nil && xn.name != fi.name {
			return nil, bad
		}
	}
	return fi, ""
}

// lookupXMLName is encoding/xml's: the XMLName of the struct t points to,
// when its tag names it.
func lookupXMLName(t reflect.Type) *xfield {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Name != "XMLName" {
			continue
		}
		if fi, err := fieldInfo(t, &f); err == "" && fi.name != "" {
			return fi
		}
		break
	}
	return nil
}

// addField appends fi unless it conflicts with a field already there:
// encoding/xml resolves conflicts by embedding depth or fails, and such
// types are left to it.
func addField(ti *xtype, nf xfield) bool {
Loop:
	for i := range ti.fields {
		of := &ti.fields[i]
		if of.flags&fMode != nf.flags&fMode {
			continue
		}
		if of.xmlns != "" && nf.xmlns != "" && of.xmlns != nf.xmlns {
			continue
		}
		minl := min(len(nf.parents), len(of.parents))
		for p := 0; p < minl; p++ {
			if of.parents[p] != nf.parents[p] {
				continue Loop
			}
		}
		switch {
		case len(of.parents) > len(nf.parents):
			if of.parents[len(nf.parents)] == nf.name {
				return false
			}
		case len(of.parents) < len(nf.parents):
			if nf.parents[len(of.parents)] == of.name {
				return false
			}
		default:
			if nf.name == of.name && nf.xmlns == of.xmlns {
				return false
			}
		}
	}
	ti.fields = append(ti.fields, nf)
	return true
}

// implements reports whether t or *t implements iface.
func implements(t, iface reflect.Type) bool {
	return t.Implements(iface) || (t.Kind() != reflect.Pointer && reflect.PointerTo(t).Implements(iface))
}

// decodePlan is how values of a pointer type are decoded, decided once
// per type.
type decodePlan struct {
	fallback string      // non-empty: why encoding/xml decodes them
	sp       *structPlan // else, when not nil, the compiled plan of the struct pointed to
}

// decodePlanFor returns t's decodePlan.
func decodePlanFor(t reflect.Type) *decodePlan {
	if r, ok := decPlans.Load(t); ok {
		return r.(*decodePlan)
	}
	dp := &decodePlan{}
	if t.Kind() != reflect.Pointer {
		dp.fallback = "not a pointer"
	} else {
		dp.fallback = checkDecode(t.Elem(), map[reflect.Type]bool{})
	}
	if dp.fallback == "" && t.Elem().Kind() == reflect.Struct {
		dp.sp = planFor(t.Elem())
	}
	r, _ := decPlans.LoadOrStore(t, dp)
	return r.(*decodePlan)
}

// decodeFallback returns why v's type (a pointer) must be decoded with
// encoding/xml, or "" when this codec decodes it.
func decodeFallback(t reflect.Type) string {
	return decodePlanFor(t).fallback
}

// checkDecode walks the types that unmarshal can reach from an element
// position.
func checkDecode(t reflect.Type, seen map[reflect.Type]bool) string {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
		if t.Kind() == reflect.Pointer {
			return "pointer to pointer " + t.String()
		}
	}
	if seen[t] {
		return ""
	}
	seen[t] = true
	switch {
	case t.Kind() == reflect.Interface:
		return "interface " + t.String()
	case implements(t, unmarshalerType):
		return t.String() + " implements xml.Unmarshaler"
	case implements(t, textUnmarshalerType):
		return ""
	}
	switch t.Kind() {
	case reflect.Slice:
		if t.Elem().Kind() != reflect.Uint8 {
			return checkDecode(t.Elem(), seen)
		}
	case reflect.Struct:
		if t == nameType {
			return ""
		}
		ti := typeInfo(t)
		if ti.fallback != "" {
			return ti.fallback
		}
		for i := range ti.fields {
			fi := &ti.fields[i]
			ft := t.FieldByIndex(fi.idx).Type
			switch fi.flags & fMode {
			case fElement, fElement | fAny:
				if r := checkDecode(ft, seen); r != "" {
					return r
				}
			default: // attr, chardata
				if r := checkLeaf(ft); r != "" {
					return r
				}
			}
		}
	}
	return ""
}

// checkLeaf refuses the attribute and chardata field types whose handling
// by encoding/xml panics or depends on reflection corners.
func checkLeaf(t reflect.Type) string {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
		if t.Kind() == reflect.Pointer {
			return "pointer to pointer " + t.String()
		}
	}
	if t.Kind() == reflect.Interface {
		return "interface " + t.String()
	}
	if t.Kind() == reflect.Slice && t.Elem().Kind() != reflect.Uint8 {
		return checkLeaf(t.Elem())
	}
	return ""
}

// decodeStruct decodes e into v (a non-nil pointer) as xml.Unmarshal
// would decode e's serialization, from the tree when v's type allows it
// (through its compiled plan when it has one) and through encoding/xml
// otherwise.
func decodeStruct(e *Element, v any) error {
	return decodeWith(e, v, true)
}

// decodeWith is decodeStruct; plans false keeps the tree codec even for
// a type with a plan, for the tests that hold one to the other.
func decodeWith(e *Element, v any, plans bool) error {
	if e == nil {
		return e.Decode(v) // its error for a nil element
	}
	dp := decodePlanFor(reflect.TypeOf(v))
	if dp.fallback != "" {
		return e.decodeXML(v)
	}
	val := reflect.ValueOf(v)
	if val.IsNil() {
		return e.decodeXML(v)
	}
	var err error
	if dp.sp != nil && plans {
		err = dp.sp.decode(val.UnsafePointer(), e, 1)
	} else {
		var d treeDecoder
		err = d.unmarshal(val.Elem(), e)
	}
	if err != nil {
		return decodeError(e, err)
	}
	return nil
}

// decodeError is the error of a payload e that does not decode.
func decodeError(e *Element, err error) error {
	return wrapErr(fmt.Sprintf("iq: decode <%s xmlns=%q>", e.Name.Local, e.Name.Space), err)
}

// treeDecoder is encoding/xml's unmarshal, reading an Element tree rather
// than tokens.
type treeDecoder struct {
	depth int
}

func (d *treeDecoder) unmarshal(val reflect.Value, e *Element) error {
	d.depth++
	defer func() { d.depth-- }()
	if d.depth > maxStructDecodeDepth {
		return errUnmarshalDepth
	}
	if val.Kind() == reflect.Pointer {
		if val.IsNil() {
			val.Set(reflect.New(val.Type().Elem()))
		}
		val = val.Elem()
	}
	if tu := textUnmarshaler(val); tu != nil {
		return tu.UnmarshalText(ownText(e))
	}

	var (
		saveData, saveAny, sv reflect.Value
		ti                    *xtype
	)
	switch val.Kind() {
	default:
		return errors.New("unknown type " + val.Type().String())
	case reflect.Interface:
		return nil
	case reflect.Slice:
		if val.Type().Elem().Kind() == reflect.Uint8 {
			saveData = val
			break
		}
		n := val.Len()
		growOne(val)
		val.SetLen(n + 1)
		if err := d.unmarshal(val.Index(n), e); err != nil {
			val.SetLen(n)
			return err
		}
		return nil
	case reflect.Bool, reflect.Float32, reflect.Float64, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr, reflect.String:
		saveData = val
	case reflect.Struct:
		typ := val.Type()
		if typ == nameType {
			setName(val, e.Name)
			break
		}
		sv = val
		ti = typeInfo(typ)
		if xn := ti.xmlname; xn != nil {
			if err := checkXMLName(xn.name, xn.xmlns, e.Name); err != nil {
				return err
			}
			if fv := sv.FieldByIndex(xn.idx); fv.Type() == nameType {
				setName(fv, e.Name)
			}
		}
		for _, a := range e.Attr {
			handled := false
			anyField := -1
			for i := range ti.fields {
				fi := &ti.fields[i]
				switch fi.flags & fMode {
				case fAttr:
					if a.Name.Local == fi.name && (fi.xmlns == "" || fi.xmlns == a.Name.Space) {
						if err := unmarshalAttr(sv.FieldByIndex(fi.idx), a); err != nil {
							return err
						}
						handled = true
					}
				case fAny | fAttr:
					if anyField == -1 {
						anyField = i
					}
				}
			}
			if !handled && anyField >= 0 {
				if err := unmarshalAttr(sv.FieldByIndex(ti.fields[anyField].idx), a); err != nil {
					return err
				}
			}
		}
		for i := range ti.fields {
			fi := &ti.fields[i]
			switch fi.flags & fMode {
			case fCDATA, fCharData:
				if !saveData.IsValid() {
					saveData = sv.FieldByIndex(fi.idx)
				}
			case fAny, fAny | fElement:
				if !saveAny.IsValid() {
					saveAny = sv.FieldByIndex(fi.idx)
				}
			}
		}
	}

	var text textAcc
	for _, n := range e.Content {
		if c := n.Element; c != nil {
			if !sv.IsValid() {
				continue
			}
			consumed, err := d.unmarshalPath(ti, sv, nil, c)
			if err != nil {
				return err
			}
			if !consumed && saveAny.IsValid() {
				if err := d.unmarshal(saveAny, c); err != nil {
					return err
				}
			}
		} else if saveData.IsValid() {
			text.add(n.Text)
		}
	}
	if !saveData.IsValid() {
		return nil
	}
	if tu := textUnmarshaler(saveData); tu != nil {
		return tu.UnmarshalText(text.bytes())
	}
	return copyValue(saveData, text.str())
}

// setName sets v, an xml.Name, to n without boxing it.
func setName(v reflect.Value, n xml.Name) {
	v.Field(0).SetString(n.Space)
	v.Field(1).SetString(n.Local)
}

// growOne makes room for one more element in slice v, as encoding/xml's
// Grow(1) does, but starting at four so that short lists take one
// allocation. Only the capacity differs from what xml.Unmarshal leaves.
func growOne(v reflect.Value) {
	if n := v.Len(); n == v.Cap() {
		v.Grow(max(n, 4))
	}
}

// unmarshalPath is encoding/xml's: it finds the field, possibly below
// a>b parents, that child element e goes to.
func (d *treeDecoder) unmarshalPath(ti *xtype, sv reflect.Value, parents []string, e *Element) (bool, error) {
	recurse := false
Loop:
	for i := range ti.fields {
		fi := &ti.fields[i]
		if fi.flags&fElement == 0 || len(fi.parents) < len(parents) || fi.xmlns != "" && fi.xmlns != e.Name.Space {
			continue
		}
		for j := range parents {
			if parents[j] != fi.parents[j] {
				continue Loop
			}
		}
		if len(fi.parents) == len(parents) && fi.name == e.Name.Local {
			return true, d.unmarshal(sv.FieldByIndex(fi.idx), e)
		}
		if len(fi.parents) > len(parents) && fi.parents[len(parents)] == e.Name.Local {
			recurse = true
			parents = fi.parents[:len(parents)+1]
			break
		}
	}
	if !recurse {
		return false, nil
	}
	for _, n := range e.Content {
		if n.Element == nil {
			continue
		}
		if _, err := d.unmarshalPath(ti, sv, parents, n.Element); err != nil {
			return true, err
		}
	}
	return true, nil
}

// textAcc gathers character data without copying when it comes in one
// piece.
type textAcc struct {
	s string
	b []byte
	n int
}

func (t *textAcc) add(s string) {
	t.n++
	switch t.n {
	case 1:
		t.s = s
	case 2:
		t.b = append(append(make([]byte, 0, len(t.s)+len(s)), t.s...), s...)
	default:
		t.b = append(t.b, s...)
	}
}

func (t *textAcc) str() string {
	if t.n > 1 {
		return string(t.b)
	}
	return t.s
}

// bytes returns the text as encoding/xml hands it to UnmarshalText: nil
// when there was none.
func (t *textAcc) bytes() []byte {
	switch t.n {
	case 0:
		return nil
	case 1:
		return []byte(t.s)
	}
	return t.b
}

// ownText is e's character data, without its descendants', nil when it
// has none.
func ownText(e *Element) []byte {
	var t textAcc
	for _, n := range e.Content {
		if n.Element == nil {
			t.add(n.Text)
		}
	}
	return t.bytes()
}

// textUnmarshaler returns val (or its address) as an
// encoding.TextUnmarshaler, as encoding/xml looks for one.
func textUnmarshaler(val reflect.Value) encoding.TextUnmarshaler {
	t := val.Type()
	if t.Implements(textUnmarshalerType) && val.CanInterface() {
		return val.Interface().(encoding.TextUnmarshaler)
	}
	if val.CanAddr() && reflect.PointerTo(t).Implements(textUnmarshalerType) {
		if pv := val.Addr(); pv.CanInterface() {
			return pv.Interface().(encoding.TextUnmarshaler)
		}
	}
	return nil
}

// unmarshalAttr is encoding/xml's.
func unmarshalAttr(val reflect.Value, a xml.Attr) error {
	if val.Kind() == reflect.Pointer {
		if val.IsNil() {
			val.Set(reflect.New(val.Type().Elem()))
		}
		val = val.Elem()
	}
	t := val.Type()
	if t.Implements(unmarshalerAttrType) && val.CanInterface() {
		return val.Interface().(xml.UnmarshalerAttr).UnmarshalXMLAttr(a)
	}
	if val.CanAddr() && reflect.PointerTo(t).Implements(unmarshalerAttrType) {
		if pv := val.Addr(); pv.CanInterface() {
			return pv.Interface().(xml.UnmarshalerAttr).UnmarshalXMLAttr(a)
		}
	}
	if tu := textUnmarshaler(val); tu != nil {
		return tu.UnmarshalText([]byte(a.Value))
	}
	if val.Kind() == reflect.Slice && t.Elem().Kind() != reflect.Uint8 {
		n := val.Len()
		val.Grow(1)
		val.SetLen(n + 1)
		if err := unmarshalAttr(val.Index(n), a); err != nil {
			val.SetLen(n)
			return err
		}
		return nil
	}
	if t == attrType {
		val.Set(reflect.ValueOf(a))
		return nil
	}
	return copyValue(val, a.Value)
}

// copyValue is encoding/xml's, from a string.
func copyValue(dst reflect.Value, src string) error {
	dst0 := dst
	if dst.Kind() == reflect.Pointer {
		if dst.IsNil() {
			dst.Set(reflect.New(dst.Type().Elem()))
		}
		dst = dst.Elem()
	}
	switch dst.Kind() {
	case reflect.Invalid:
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if len(src) == 0 {
			dst.SetInt(0)
			return nil
		}
		i, err := strconv.ParseInt(strings.TrimSpace(src), 10, dst.Type().Bits())
		if err != nil {
			return err
		}
		dst.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if len(src) == 0 {
			dst.SetUint(0)
			return nil
		}
		u, err := strconv.ParseUint(strings.TrimSpace(src), 10, dst.Type().Bits())
		if err != nil {
			return err
		}
		dst.SetUint(u)
	case reflect.Float32, reflect.Float64:
		if len(src) == 0 {
			dst.SetFloat(0)
			return nil
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(src), dst.Type().Bits())
		if err != nil {
			return err
		}
		dst.SetFloat(f)
	case reflect.Bool:
		if len(src) == 0 {
			dst.SetBool(false)
			return nil
		}
		b, err := strconv.ParseBool(strings.TrimSpace(src))
		if err != nil {
			return err
		}
		dst.SetBool(b)
	case reflect.String:
		dst.SetString(src)
	case reflect.Slice:
		if len(src) == 0 {
			dst.SetBytes([]byte{}) // non-nil, as encoding/xml flags presence
			return nil
		}
		dst.SetBytes([]byte(src))
	default:
		return errors.New("cannot unmarshal into " + dst0.Type().String())
	}
	return nil
}

// checkXMLName refuses an element whose name is not the one a struct's
// XMLName tag asks for (local, and space when not empty), with
// encoding/xml's messages.
func checkXMLName(local, space string, got xml.Name) error {
	if local != "" && local != got.Local {
		return xml.UnmarshalError("expected element type <" + local + "> but have <" + got.Local + ">")
	}
	if space != "" && space != got.Space {
		msg := "expected element <" + local + "> in name space " + space + " but have "
		if got.Space == "" {
			msg += "no name space"
		} else {
			msg += got.Space
		}
		return xml.UnmarshalError(msg)
	}
	return nil
}
