package stream

import (
	"encoding/xml"
	"errors"
	"strings"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/internal/errs"
)

// Namespaces of the stream layer (RFC 6120 §4.9).
const (
	NSStream       = "http://etherx.jabber.org/streams"
	NSStreamErrors = "urn:ietf:params:xml:ns:xmpp-streams"
)

// Condition is a stream error condition: the local name of the condition
// element of a <stream:error/> (RFC 6120 §4.9.3). It is a type of its own,
// as iq.Condition is for stanza errors, so that the two cannot be mixed up.
type Condition string

// Stream error conditions this package sends, or that callers commonly test
// for (RFC 6120 §4.9.3 lists them all; any condition a peer sends is kept as
// it came).
const (
	BadFormat             Condition = "bad-format"
	Conflict              Condition = "conflict"
	ConnectionTimeout     Condition = "connection-timeout"
	HostUnknown           Condition = "host-unknown"
	InvalidFrom           Condition = "invalid-from"
	InvalidNamespace      Condition = "invalid-namespace"
	NotAuthorized         Condition = "not-authorized"
	NotWellFormed         Condition = "not-well-formed"
	PolicyViolation       Condition = "policy-violation"
	RestrictedXML         Condition = "restricted-xml"
	SystemShutdown        Condition = "system-shutdown"
	UndefinedCondition    Condition = "undefined-condition"
	UnsupportedEncoding   Condition = "unsupported-encoding"
	UnsupportedStanzaType Condition = "unsupported-stanza-type"
)

// StreamError is a <stream:error/>: sent by the peer, it ends Serve (and
// Dial) with this error; sent by this package, it says why the Conn ended
// the stream.
type StreamError struct {
	// Condition is the defined condition's element name, e.g.
	// "not-authorized".
	Condition Condition
	// Text is the optional human-readable description.
	Text string
	// App is the optional application-specific condition.
	App *iq.Element
}

// Error implements error: "stream: error " and the condition, then the
// application condition's name and the text when there are.
func (e *StreamError) Error() string {
	var b strings.Builder
	b.WriteString("stream: error ")
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

// Is reports whether target is a *StreamError with the same condition, so
// that errors.Is(err, &stream.StreamError{Condition: stream.Conflict})
// works whatever the text.
func (e *StreamError) Is(target error) bool {
	t, ok := target.(*StreamError)
	return ok && t != nil && t.Condition == e.Condition
}

// streamErrorFrom reads a decoded <stream:error/>.
func streamErrorFrom(el *iq.Element) *StreamError {
	e := &StreamError{}
	for c := range el.Children() {
		switch {
		case c.Name.Space == NSStreamErrors && c.Name.Local == "text":
			if e.Text == "" {
				e.Text = c.Text()
			}
		case c.Name.Space == NSStreamErrors:
			if e.Condition == "" {
				e.Condition = Condition(c.Name.Local)
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
	return e
}

// appendStreamError writes e as a <stream:error/>; the stream prefix is
// the one every XMPP stream header binds.
func appendStreamError(b []byte, e *StreamError) []byte {
	b = append(b, "<stream:error><"...)
	b = append(b, string(e.Condition)...)
	b = append(b, ` xmlns="`+NSStreamErrors+`"/>`...)
	if e.Text != "" {
		b = append(b, `<text xmlns="`+NSStreamErrors+`">`...)
		var sb strings.Builder
		_ = xml.EscapeText(&sb, []byte(e.Text))
		b = append(b, sb.String()...)
		b = append(b, "</text>"...)
	}
	return append(b, "</stream:error>"...)
}

// Errors returned by a Conn.
var (
	// ErrStanzaTooBig reports a stanza over the size limit: the stream
	// was ended with a policy-violation stream error.
	ErrStanzaTooBig = errors.New("stream: stanza over the size limit")
	// ErrNotWellFormed reports input that is not well-formed XML: the
	// stream was ended with a not-well-formed stream error.
	ErrNotWellFormed = errors.New("stream: XML not well-formed")
	// ErrUnsupportedEncoding reports an XML declaration naming an
	// encoding other than UTF-8: the stream was ended with an
	// unsupported-encoding stream error (RFC 6120 §11.6).
	ErrUnsupportedEncoding = errors.New("stream: encoding other than UTF-8")
	// ErrUnsupportedXMLVersion reports an XML declaration naming a version
	// other than 1.0: the stream was ended with a bad-format stream error.
	ErrUnsupportedXMLVersion = errors.New("stream: XML version other than 1.0")
	// ErrClosed is returned by writes on a Conn that has ended, or that a
	// failed write ends, wrapped with the cause when there is one. It wraps
	// iq.ErrClosed, so that a request made on a dead stream fails as a
	// request pending when it died does.
	ErrClosed = errs.New("stream: closed", iq.ErrClosed)
)

// peerHeaderError is the error of a failure to read the peer's header.
func peerHeaderError(err error) error {
	return errs.New("stream: peer header: "+errs.Trim(err, "stream: "), err)
}

// closedBy is the error of a write refused or failed because the stream
// ended for cause: ErrClosed with no cause, the cause itself when it says
// closed already, or the cause named once after ErrClosed.
func closedBy(cause error) error {
	switch {
	case cause == nil:
		return ErrClosed
	case errors.Is(cause, ErrClosed):
		return cause
	}
	return errs.New("stream: closed: "+errs.Trim(cause, "stream: "), ErrClosed, cause)
}
