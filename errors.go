package iq

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"strings"

	"github.com/xmpp-iq/iq/internal/errs"
)

// NSStanzas is the namespace of stanza error conditions and their text
// (RFC 6120 §8.3.2).
const NSStanzas = "urn:ietf:params:xml:ns:xmpp-stanzas"

// ErrorType says how the sender of an error thinks the requester can
// recover (RFC 6120 §8.3.2).
type ErrorType string

// The error types of RFC 6120 §8.3.2.
const (
	Auth     ErrorType = "auth"     // retry after providing credentials
	Cancel   ErrorType = "cancel"   // do not retry: the error cannot be remedied
	Continue ErrorType = "continue" // proceed: the condition was only a warning
	Modify   ErrorType = "modify"   // retry after changing the data sent
	Wait     ErrorType = "wait"     // retry after waiting: the error is temporary
)

// Condition is a defined stanza error condition (RFC 6120 §8.3.3).
type Condition string

// The 22 defined conditions of RFC 6120 §8.3.3.
const (
	BadRequest            Condition = "bad-request"
	Conflict              Condition = "conflict"
	FeatureNotImplemented Condition = "feature-not-implemented"
	Forbidden             Condition = "forbidden"
	Gone                  Condition = "gone"
	InternalServerError   Condition = "internal-server-error"
	ItemNotFound          Condition = "item-not-found"
	JIDMalformed          Condition = "jid-malformed"
	NotAcceptable         Condition = "not-acceptable"
	NotAllowed            Condition = "not-allowed"
	NotAuthorized         Condition = "not-authorized"
	PolicyViolation       Condition = "policy-violation"
	RecipientUnavailable  Condition = "recipient-unavailable"
	Redirect              Condition = "redirect"
	RegistrationRequired  Condition = "registration-required"
	RemoteServerNotFound  Condition = "remote-server-not-found"
	RemoteServerTimeout   Condition = "remote-server-timeout"
	ResourceConstraint    Condition = "resource-constraint"
	ServiceUnavailable    Condition = "service-unavailable"
	SubscriptionRequired  Condition = "subscription-required"
	UndefinedCondition    Condition = "undefined-condition"
	UnexpectedRequest     Condition = "unexpected-request"
)

var knownConditions = map[Condition]bool{
	BadRequest: true, Conflict: true, FeatureNotImplemented: true, Forbidden: true,
	Gone: true, InternalServerError: true, ItemNotFound: true, JIDMalformed: true,
	NotAcceptable: true, NotAllowed: true, NotAuthorized: true, PolicyViolation: true,
	RecipientUnavailable: true, Redirect: true, RegistrationRequired: true,
	RemoteServerNotFound: true, RemoteServerTimeout: true, ResourceConstraint: true,
	ServiceUnavailable: true, SubscriptionRequired: true, UndefinedCondition: true,
	UnexpectedRequest: true,
}

// Valid reports whether c is one of the 22 conditions of RFC 6120 §8.3.3.
func (c Condition) Valid() bool { return knownConditions[c] }

// Valid reports whether t is one of the five error types of RFC 6120 §8.3.2.
func (t ErrorType) Valid() bool {
	switch t {
	case Auth, Cancel, Continue, Modify, Wait:
		return true
	}
	return false
}

// StanzaError is the <error/> child of an IQ of type error (RFC 6120 §8.3).
// It is what Caller.Request returns for an error reply, and what a Handler
// returns to send one.
//
// A StanzaError is a plain value; sharing one between goroutines is safe as
// long as none modifies it.
type StanzaError struct {
	Type      ErrorType
	Condition Condition
	// Text is the optional human-readable description, in language Lang.
	Text, Lang string
	// By is the entity that generated the error, when it says so.
	By string
	// App is the optional application-specific condition, an element in a
	// namespace of its own.
	App *Element
	// Target is the character data of the condition element: the new
	// address that gone and redirect may carry.
	Target string
}

// NewError returns a stanza error of type t with condition cond and,
// unless text is empty, a human-readable text.
func NewError(t ErrorType, cond Condition, text string) *StanzaError {
	return &StanzaError{Type: t, Condition: cond, Text: text}
}

// Error implements error.
func (e *StanzaError) Error() string {
	var b strings.Builder
	b.WriteString("iq: stanza error ")
	b.WriteString(string(e.Type))
	b.WriteByte('/')
	b.WriteString(string(e.Condition))
	if e.App != nil {
		b.WriteString(" <")
		b.WriteString(e.App.Name.Local)
		b.WriteString(" xmlns='")
		b.WriteString(e.App.Name.Space)
		b.WriteString("'/>")
	}
	if e.Text != "" {
		b.WriteString(": ")
		b.WriteString(e.Text)
	}
	return b.String()
}

// Is reports whether target is a *StanzaError with the same condition and,
// when target sets one, the same type; so that
//
//	errors.Is(err, &iq.StanzaError{Condition: iq.ItemNotFound})
//
// tests for a condition whatever the text.
func (e *StanzaError) Is(target error) bool {
	t, ok := target.(*StanzaError)
	if !ok || t == nil {
		return false
	}
	return t.Condition == e.Condition && (t.Type == "" || t.Type == e.Type)
}

// MarshalXML implements xml.Marshaler: it writes <error/> in the enclosing
// stanza's namespace (whatever start says), with the condition and text in
// urn:ietf:params:xml:ns:xmpp-stanzas, then the application element.
func (e *StanzaError) MarshalXML(enc *xml.Encoder, _ xml.StartElement) error {
	if err := encodeStanzaError(enc, e); err != nil {
		return err
	}
	return enc.Flush()
}

func encodeStanzaError(enc tokenEncoder, e *StanzaError) error {
	start := xml.StartElement{Name: xml.Name{Local: "error"}}
	start.Attr = append(start.Attr, xml.Attr{Name: xml.Name{Local: "type"}, Value: string(e.errType())})
	if e.By != "" {
		start.Attr = append(start.Attr, xml.Attr{Name: xml.Name{Local: "by"}, Value: e.By})
	}
	cond := xml.Name{Space: NSStanzas, Local: string(e.condition())}
	toks := []xml.Token{start, xml.StartElement{Name: cond}}
	if e.Target != "" {
		toks = append(toks, xml.CharData(e.Target))
	}
	toks = append(toks, xml.EndElement{Name: cond})
	if e.Text != "" {
		text := xml.StartElement{Name: xml.Name{Space: NSStanzas, Local: "text"}}
		if e.Lang != "" {
			text.Attr = []xml.Attr{{Name: xml.Name{Space: xmlURL, Local: "lang"}, Value: e.Lang}}
		}
		toks = append(toks, text, xml.CharData(e.Text), text.End())
	}
	for _, t := range toks {
		if err := enc.EncodeToken(t); err != nil {
			return err
		}
	}
	if e.App != nil {
		if err := encodeElement(enc, e.App, ""); err != nil {
			return err
		}
	}
	return enc.EncodeToken(start.End())
}

// errType is the type written on the wire: a missing type is written as
// cancel, since RFC 6120 requires one.
func (e *StanzaError) errType() ErrorType {
	if e.Type == "" {
		return Cancel
	}
	return e.Type
}

// condition is the condition written on the wire: RFC 6120 requires one
// of the defined conditions, so anything else is written as
// undefined-condition.
func (e *StanzaError) condition() Condition {
	if !e.Condition.Valid() {
		return UndefinedCondition
	}
	return e.Condition
}

// UnmarshalXML implements xml.Unmarshaler. A missing or unknown type is
// read as cancel. It reads children by namespace,
// not position: the first element in urn:ietf:params:xml:ns:xmpp-stanzas
// other than <text/> is the condition (an unknown one is read as
// undefined-condition), the first <text/> there is the text, and the first
// element in any other namespace is the application-specific condition. It
// fails only on XML that is not namespace-well-formed, as
// Element.UnmarshalXML does.
func (e *StanzaError) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	var el Element
	if err := decodeElement(decoderSource{d}, start, &el); err != nil {
		return err
	}
	*e = *stanzaErrorFrom(&el)
	return nil
}

// stanzaErrorFrom reads a decoded <error/> element.
func stanzaErrorFrom(el *Element) *StanzaError {
	e := &StanzaError{
		Type: ErrorType(el.AttrValue("type")),
		By:   el.AttrValue("by"),
	}
	var haveText bool
	for c := range el.Children() {
		switch {
		case c.Name.Space == NSStanzas && c.Name.Local == "text":
			if !haveText {
				haveText = true
				e.Text = c.Text()
				for _, a := range c.Attr {
					if a.Name.Space == xmlURL && a.Name.Local == "lang" {
						e.Lang = a.Value
					}
				}
			}
		case c.Name.Space == NSStanzas:
			if e.Condition == "" {
				e.Condition = Condition(c.Name.Local)
				if !e.Condition.Valid() {
					e.Condition = UndefinedCondition
				}
				e.Target = c.Text()
			}
		default:
			if e.App == nil {
				e.App = c
			}
		}
	}
	if e.Condition == "" {
		e.Condition = UndefinedCondition
	}
	if e.Text == "" {
		e.Lang = "" // the language of no text: not written back either
	}
	// RFC 6120 requires a type; a missing or unknown one is read as
	// cancel, the one that never invites a retry (and the one written for
	// it), so that what is read is what would be written back.
	if !e.Type.Valid() {
		e.Type = Cancel
	}
	return e
}

// Sentinel errors. Errors returned by this package wrap them, so test with
// errors.Is.
var (
	// ErrClosed is returned for requests pending when a Caller, Callee or
	// Endpoint closes, and for every request made after. When the cause is
	// known (the stream's end, say) the error wraps it too.
	ErrClosed = errors.New("iq: closed")

	// ErrTimeout is returned for a request that got no response before its
	// deadline. errors.Is(err, context.DeadlineExceeded) holds for it too.
	ErrTimeout error = timeoutError{}

	// ErrInvalid is wrapped by every error that reports an IQ breaking
	// RFC 6120 §8.2.3: by Validate, by a request refused before sending,
	// and by a response that cannot be taken as it is.
	ErrInvalid = errors.New("iq: invalid IQ")

	// ErrEncode is wrapped by the error IQ.AppendXML, IQ.AppendTokens and
	// Element.AppendXML return when what they are given cannot be written
	// as XML, or would not read back as given (an element or attribute
	// name that is not an XML name, an element holding one attribute
	// twice, a namespace holding a character XML cannot carry, say): what
	// they appended before they stopped is not to be used. A Sender
	// should pass it through with %w, as stream.Conn does: a Callee whose
	// reply fails with it sends cancel/internal-server-error instead, so
	// that the request still gets its one reply.
	ErrEncode = errors.New("iq: cannot encode")

	// ErrDuplicateID is returned when a request's id is already pending.
	ErrDuplicateID = errors.New("iq: id already pending")

	// ErrTooManyPending is returned at once when the Caller already has its
	// maximum of requests pending (WithMaxPending).
	ErrTooManyPending = errors.New("iq: too many pending requests")
)

type timeoutError struct{}

func (timeoutError) Error() string   { return "iq: request timed out" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }
func (timeoutError) Is(target error) bool {
	return target == context.DeadlineExceeded
}

// encodeError marks a write failure as ErrEncode without repeating the
// package's prefix: its text is the failure's own.
type encodeError struct{ err error }

func (e *encodeError) Error() string   { return e.err.Error() }
func (e *encodeError) Unwrap() []error { return []error{ErrEncode, e.err} }

// encodeErr wraps err, a failure of the package's writer, as ErrEncode.
func encodeErr(err error) error {
	if err == nil || errors.Is(err, ErrEncode) {
		return err
	}
	return &encodeError{err}
}

// invalidf returns an error wrapping ErrInvalid.
func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
}

// The errors a request fails with name it once, "iq: request <id>", then
// say what ended it, quoting an error of this package without its prefix
// so that no message says "iq:" twice.

// timedOut is the error of a request whose deadline passed, during the
// send when cause, the Sender's error, is not nil. It matches ErrTimeout,
// context.DeadlineExceeded and cause.
func timedOut(id string, cause error) error {
	text := "iq: request " + id + " timed out"
	if cause != nil && cause != context.DeadlineExceeded {
		text += ": " + errs.Trim(cause, "iq: ")
	}
	return errs.New(text, ErrTimeout, cause)
}

// wrapErr returns an error reading text, then err's text without this
// package's prefix; it wraps err.
func wrapErr(text string, err error) error {
	return errs.New(text+": "+errs.Trim(err, "iq: "), err)
}

// notSent is the error of a request the Sender failed to send.
func notSent(id string, err error) error {
	return errs.New("iq: request "+id+" not sent: "+errs.Trim(err, "iq: "), err)
}

// closedRequest is the error of a request that the Caller's closing
// ended or refused; closed is the Caller's close error.
func closedRequest(id string, closed error) error {
	return errs.New("iq: request "+id+": "+errs.Trim(closed, "iq: "), closed)
}

// closeError is the error a Caller closed with cause fails requests with:
// ErrClosed with no cause; the cause itself when it already wraps
// ErrClosed (a stream's own "closed" error: saying "closed" twice would
// tell nothing more); else both.
func closeError(cause error) error {
	switch {
	case cause == nil:
		return ErrClosed
	case errors.Is(cause, ErrClosed):
		return cause
	}
	return errs.New("iq: closed: "+errs.Trim(cause, "iq: "), ErrClosed, cause)
}
