package stream

import (
	"encoding/xml"
	"errors"
	"fmt"
	"strings"

	"github.com/xmpp-iq/iq"
)

// Namespaces of the stream layer (RFC 6120 §4.9).
const (
	NSStream       = "http://etherx.jabber.org/streams"
	NSStreamErrors = "urn:ietf:params:xml:ns:xmpp-streams"
)

// Stream error conditions this package sends, or that callers commonly test
// for (RFC 6120 §4.9.3 lists them all; any condition a peer sends is kept as
// it came).
const (
	BadFormat            = "bad-format"
	Conflict             = "conflict"
	HostUnknown          = "host-unknown"
	InvalidFrom          = "invalid-from"
	InvalidNamespace     = "invalid-namespace"
	NotAuthorized        = "not-authorized"
	NotWellFormed        = "not-well-formed"
	PolicyViolation      = "policy-violation"
	RestrictedXML        = "restricted-xml"
	SystemShutdown       = "system-shutdown"
	UndefinedCondition   = "undefined-condition"
	UnsupportedEncoding  = "unsupported-encoding"
	UnsupportedStanzaTyp = "unsupported-stanza-type"
)

// StreamError is a <stream:error/>: sent by the peer, it ends Serve (and
// Dial) with this error; sent by this package, it says why the Conn ended
// the stream.
type StreamError struct {
	// Condition is the defined condition's element name, e.g.
	// "not-authorized".
	Condition string
	// Text is the optional human-readable description.
	Text string
	// App is the optional application-specific condition.
	App *iq.Element
}

// Error implements error.
func (e *StreamError) Error() string {
	var b strings.Builder
	b.WriteString("stream error: ")
	b.WriteString(e.Condition)
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
				e.Condition = c.Name.Local
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
	b = append(b, e.Condition...)
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
	// failed write ends. It wraps iq.ErrClosed, so that a request made on
	// a dead stream fails as a request pending when it died does.
	ErrClosed = fmt.Errorf("stream: %w", iq.ErrClosed)
)
