package iq

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"unsafe"

	"github.com/xmpp-iq/iq/internal/errs"
)

// Errors of typed requests and handlers.
var (
	// ErrNoXMLName is wrapped by the error GetAs and SetAs return when the
	// request is not a struct with an XMLName field giving it a namespace
	// and a local name, and by the error a typed handler fails with (sent
	// as internal-server-error) when its response encodes in no namespace.
	ErrNoXMLName = errors.New("iq: type has no XMLName with a namespace and a local name")

	// ErrDecode is wrapped by the error GetAs and SetAs return when the
	// result's payload does not decode into the response type.
	ErrDecode = errors.New("iq: payload does not decode")
)

// GetAs sends a get whose payload is req, encoded by encoding/xml's rules,
// to the address to, and decodes the result's payload into a Resp:
//
//	ver, err := iq.GetAs[version.Query](ctx, caller, "example.com", version.Query{})
//
// req is a struct, or a pointer to one, whose XMLName field names the
// payload with a namespace and a local name (in its tag, or in its value
// when the tag has none), or an *Element sent as it is; anything else
// fails with an error wrapping ErrNoXMLName, before anything is sent. Resp
// must be a struct (or a pointer to one), Element, or a type whose pointer
// implements xml.Unmarshaler; any other (an int, a string…) fails with an
// error wrapping ErrInvalid, before anything is sent too.
//
// An empty result decodes as the zero Resp, with a nil error: a Resp whose
// zero value is meaningful and a caller that must tell an empty result
// from an empty payload should use Caller.Get. A payload that does not
// decode into a Resp (one whose XMLName tag names another element, say)
// fails with an error wrapping ErrDecode. Resp may be Element, to get the
// payload as it is. Every other error is Caller.Request's: a
// *StanzaError for an error reply, ErrTimeout, ErrClosed…
//
// A response read with tree reuse (an Endpoint made WithTreeReuse) is
// released (IQ.Release) once its payload is decoded, or has failed to
// decode, unless Resp is Element: the value returned holds none of the
// tree's memory, only strings, which stay valid. A CallHook must then keep
// nothing of the response past its done call (see WithTreeReuse).
//
// # Struct payloads
//
// GetAs, SetAs, HandleGet and HandleSet decode payloads straight from the
// parsed element into structs, and encode structs straight into elements,
// without writing XML and reading it back. They follow encoding/xml's
// rules for the same struct tags: a payload decodes, values and errors
// alike, as xml.Unmarshal decodes the element's serialization, and a
// struct encodes as xml.Marshal writes it, read back. Supported: XMLName
// (tag or value), element fields with names, namespaces and a>b paths,
// attr (with namespaces), chardata, cdata (decoding), any, any,attr,
// omitempty, "-", embedded structs, pointers, slices, the basic kinds,
// []byte, xml.Name, xml.Attr, encoding.TextMarshaler and TextUnmarshaler,
// xml.MarshalerAttr and UnmarshalerAttr.
//
// The most common shape, a struct whose fields are all attributes,
// character data or child elements of the basic kinds (strings, numbers,
// bools, []byte, named types of these without methods), lists of them,
// and nested structs of the same shape by value, pointer or slice, with
// no a>b paths, is compiled once per type into a plan of field offsets:
// decoding it then allocates only what the value itself holds (list
// backing arrays, pointed-to structs, []byte copies), and encoding it
// takes one allocation for the whole tree. Other supported types are
// decoded and encoded by reflection, with the same results.
//
// A type that uses anything else goes, as a whole (decided once per type),
// through encoding/xml as before, at its cost (the payload serialized
// and parsed again: 101 allocations rather than 5 to decode a small
// struct, 38 rather than 22 to encode it): a type implementing
// xml.Unmarshaler or xml.Marshaler (Element among them), innerxml and
// comment fields, cdata fields when encoding, interface-typed fields,
// pointers to pointers, embedded struct pointers, an XMLName promoted
// from an embedded struct, an attribute named xmlns or in the xmlns
// namespace, and tags that encoding/xml rejects or that conflict (it then
// reports them). Encoding also goes through encoding/xml, for that value,
// when a name it would write is not an XML NCName or not an absolute
// namespace name, when an attribute comes twice, or when a
// TextMarshaler or MarshalerAttr fails, so that its error is the one
// reported.
//
// One deliberate difference: namespace declarations are not attributes.
// An `,any,attr` field receives the element's attributes without the
// xmlns and xmlns:prefix declarations xml.Unmarshal would add, which
// depend only on how the element happened to be written.
//
// GetAs is safe for concurrent use, as the Caller is. It panics if ctx or
// c is nil.
func GetAs[Resp any](ctx context.Context, c *Caller, to string, req any) (Resp, error) {
	return requestAs[Resp](ctx, c, TypeGet, "GetAs", to, req)
}

// SetAs is GetAs for a set.
func SetAs[Resp any](ctx context.Context, c *Caller, to string, req any) (Resp, error) {
	return requestAs[Resp](ctx, c, TypeSet, "SetAs", to, req)
}

func requestAs[Resp any](ctx context.Context, c *Caller, t Type, fn, to string, req any) (Resp, error) {
	if c == nil {
		panic("iq: " + fn + ": nil Caller")
	}
	mustContext(fn, ctx)
	var out Resp
	if err := checkResponseType(reflect.TypeFor[Resp]()); err != nil {
		return out, err
	}
	payload, err := encodeRequest(req)
	if err != nil {
		return out, err
	}
	resp, err := c.doIQ(ctx, t, to, payload)
	if err != nil || resp.Payload == nil {
		return out, err
	}
	res := resp.Payload
	if reflect.TypeFor[Resp]() == reflect.TypeFor[Element]() {
		// Not any(&out).(*Element), which would move out to the heap.
		// The tree is the caller's now: it is not released.
		*(*Element)(unsafe.Pointer(&out)) = *res
		return out, nil
	}
	// Whatever Resp is decoded into holds no part of the tree, only its
	// strings, which outlive it: with tree reuse, the tree goes back for
	// a later stanza once decoded (see WithTreeReuse). Without, resp is
	// left as it is, for a CallHook may have kept it.
	defer releaseOwnTree(resp)
	if dp := decodePlanFor(reflect.TypeFor[*Resp]()); dp.sp != nil {
		// Decoded in place: out, passed to nothing else, stays on the
		// stack.
		if err := dp.sp.decode(unsafe.Pointer(&out), res, 1); err != nil {
			var zero Resp
			return zero, responseDecodeError[Resp](decodeError(res, err))
		}
		return out, nil
	}
	p := new(Resp)
	if err := decodeStruct(res, p); err != nil {
		return out, responseDecodeError[Resp](err)
	}
	return *p, nil
}

// releaseOwnTree releases iq when it holds a tree that Release gives
// back, read with tree reuse, and leaves it alone otherwise.
func releaseOwnTree(iq *IQ) {
	if iq.ownsTree() {
		iq.Release()
	}
}

// responseDecodeError is GetAs's error for a result whose payload does
// not decode into a Resp.
func responseDecodeError[Resp any](err error) error {
	// Decode's own "iq: decode" would repeat what ErrDecode says.
	why := strings.TrimPrefix(errs.Trim(err, "iq: "), "decode ")
	return errs.New(fmt.Sprintf("%v into %v: %s", ErrDecode, reflect.TypeFor[Resp](), why), ErrDecode, err)
}

// checkResponseType refuses, before the request is sent, a Resp that no
// payload could decode into as an element: one that is neither Element, a
// struct, nor a type whose pointer implements xml.Unmarshaler (an int, a
// string, a map…), or a pointer to none of these.
func checkResponseType(t reflect.Type) error {
	for t.Kind() == reflect.Pointer {
		if t.Implements(reflect.TypeFor[xml.Unmarshaler]()) {
			return nil
		}
		t = t.Elem()
	}
	if t.Kind() == reflect.Struct || reflect.PointerTo(t).Implements(reflect.TypeFor[xml.Unmarshaler]()) {
		return nil
	}
	return invalidf("response type %v: want a struct, Element or an xml.Unmarshaler, to decode an element into", t)
}

// encodeRequest turns GetAs's req into a payload.
func encodeRequest(req any) (*Element, error) {
	switch r := req.(type) {
	case nil:
		return nil, fmt.Errorf("%w: nil request", ErrNoXMLName)
	case *Element:
		if r == nil {
			return nil, fmt.Errorf("%w: nil request", ErrNoXMLName)
		}
		return r, nil
	}
	rt := reflect.TypeOf(req)
	ep := encodePlanFor(rt)
	t := ep.base
	if !ep.named {
		return nil, fmt.Errorf("%w: %v", ErrNoXMLName, t)
	}
	if rt.Kind() == reflect.Pointer && reflect.ValueOf(req).IsNil() {
		return nil, fmt.Errorf("%w: nil %T", ErrNoXMLName, req)
	}
	e, err := encodeStruct(req)
	if err != nil {
		return nil, err
	}
	if e.Name.Space == "" {
		return nil, fmt.Errorf("%w: %v encodes as <%s/> in no namespace", ErrNoXMLName, t, e.Name.Local)
	}
	return e, nil
}

// xmlNameField returns the XMLName field of struct type t, if it has one
// of type xml.Name.
func xmlNameField(t reflect.Type) (reflect.StructField, bool) {
	if t.Kind() != reflect.Struct {
		return reflect.StructField{}, false
	}
	f, ok := t.FieldByName("XMLName")
	if !ok || f.Type != reflect.TypeFor[xml.Name]() {
		return reflect.StructField{}, false
	}
	return f, true
}

// tagName returns the name an XMLName field's tag gives, as encoding/xml
// reads it: "namespace local" or "local", before any comma.
func tagName(f reflect.StructField) xml.Name {
	tag := f.Tag.Get("xml")
	if i := strings.IndexByte(tag, ','); i >= 0 {
		tag = tag[:i]
	}
	var n xml.Name
	if i := strings.LastIndexByte(tag, ' '); i >= 0 {
		n.Space, tag = strings.TrimSpace(tag[:i]), tag[i+1:]
	}
	n.Local = tag
	return n
}

// HandleGet registers h on c for get requests whose payload is a Req. The
// route is the namespace and local name of Req's XMLName tag, such as
// `xml:"jabber:iq:version query"`; the payload is decoded into a fresh Req
// by encoding/xml's rules, straight from the parsed element (see "Struct
// payloads" at GetAs for the tags supported and when encoding/xml is used
// instead), and a payload that does not decode is answered
// modify/bad-request without calling h. What h returns is encoded as the
// result's payload: a nil *Resp makes an empty result, and an error is
// sent as a Handler's is (a *StanzaError as it is, anything else as
// internal-server-error). The request itself is available to h through
// RequestFromContext.
//
// Resp must be a struct with an XMLName field giving it a namespace (its
// tag or, set at run time, its value) or a type whose pointer implements
// xml.Marshaler, such as Element. mw, if any, wrap this handler alone,
// inside the Callee's own middleware (Use), the first outermost; the
// route options (OrderedBySender, Ordered, MaxQueued) go there too:
//
//	iq.HandleSet(c, rosterPush, iq.Allow(iq.OwnAccount(me)), iq.OrderedBySender())
//
// HandleGet panics, as Callee.Handle does, when Req is not a struct whose
// XMLName tag has a namespace and a local name, when Resp is neither of
// the above, when c or h is nil, or when the route is already taken: these
// are programming errors. It is safe for concurrent use, as Callee.Handle is.
func HandleGet[Req, Resp any](c *Callee, h func(ctx context.Context, req *Req) (*Resp, error), mw ...func(Handler) Handler) {
	handleTyped(c, TypeGet, "HandleGet", h, mw)
}

// HandleSet is HandleGet for set requests.
func HandleSet[Req, Resp any](c *Callee, h func(ctx context.Context, req *Req) (*Resp, error), mw ...func(Handler) Handler) {
	handleTyped(c, TypeSet, "HandleSet", h, mw)
}

func handleTyped[Req, Resp any](c *Callee, t Type, fn string, h func(context.Context, *Req) (*Resp, error), mw []func(Handler) Handler) {
	if c == nil {
		panic("iq: " + fn + ": nil Callee")
	}
	if h == nil {
		panic("iq: " + fn + ": nil handler")
	}
	reqT := reflect.TypeFor[Req]()
	f, ok := xmlNameField(reqT)
	name := tagName(f)
	if !ok || name.Space == "" || name.Local == "" {
		panic(fmt.Sprintf("iq: %s: request type %v must be a struct with an XMLName field tagged `xml:\"namespace local\"`", fn, reqT))
	}
	respT := reflect.TypeFor[Resp]()
	if _, ok := xmlNameField(respT); !ok && !reflect.PointerTo(respT).Implements(reflect.TypeFor[xml.Marshaler]()) {
		panic(fmt.Sprintf("iq: %s: response type %v must be a struct with an XMLName field, or implement xml.Marshaler", fn, respT))
	}
	c.register(fn, t, name.Space, name.Local, typedHandler[Req, Resp]{h: h, name: name, req: decodePlanFor(reflect.TypeFor[*Req]())}, mw)
}

type typedHandler[Req, Resp any] struct {
	h    func(context.Context, *Req) (*Resp, error)
	name xml.Name
	req  *decodePlan // Req's, looked up once
}

// HandleIQ decodes the payload into a Req, answering bad-request when it
// does not decode, and encodes what the typed handler returns.
func (th typedHandler[Req, Resp]) HandleIQ(ctx context.Context, req *IQ) (*Element, error) {
	r := new(Req)
	var err error
	if th.req.sp != nil && req.Payload != nil {
		err = th.req.sp.decode(unsafe.Pointer(r), req.Payload, 1)
	} else {
		err = decodeStruct(req.Payload, r)
	}
	if err != nil {
		return nil, NewError(Modify, BadRequest, fmt.Sprintf("malformed <%s xmlns='%s'/>", th.name.Local, th.name.Space))
	}
	resp, err := th.h(context.WithValue(ctx, requestKey{}, req), r)
	if err != nil || resp == nil {
		return nil, err
	}
	if e, ok := any(resp).(*Element); ok {
		return e, nil
	}
	e, err := encodeStruct(resp)
	if err != nil {
		return nil, err
	}
	if e.Name.Space == "" {
		return nil, fmt.Errorf("%w: response %T encodes as <%s/> in no namespace", ErrNoXMLName, resp, e.Name.Local)
	}
	return e, nil
}

type requestKey struct{}

// RequestFromContext returns the IQ being answered by a handler registered
// with HandleGet or HandleSet, from the context that handler is given: its
// sender, id and the rest. It returns nil for any other context. The IQ
// must not be modified.
func RequestFromContext(ctx context.Context) *IQ {
	req, _ := ctx.Value(requestKey{}).(*IQ)
	return req
}
