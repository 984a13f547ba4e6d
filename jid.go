package iq

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"unicode/utf8"

	"github.com/xmpp-iq/iq/internal/errs"
	"golang.org/x/net/idna"
	"golang.org/x/text/secure/precis"
)

// JID is an XMPP address (RFC 7622) split into its parts and normalised, so
// that two spellings of one address compare equal with ==: the localpart
// case-folded (PRECIS UsernameCaseMapped), the domainpart as IDNA2008
// U-labels without a trailing dot (or an IP literal, IPv6 in RFC 5952's
// canonical form), the resourcepart as PRECIS OpaqueString. The zero JID
// is no address. ParseJID is the package's one parser: the Caller's
// reply-sender rule, the middleware and package stream all use it.
type JID struct {
	local, domain, resource string
}

// ErrMalformedJID is wrapped by every error ParseJID returns, and by the
// errors of the calls that reject an address because it is malformed
// (a Caller's request with a malformed to also wraps ErrInvalid).
var ErrMalformedJID = errors.New("iq: malformed JID")

// maxPart is RFC 7622's limit on each part, in bytes after normalisation
// (§3.2, §3.3, §3.4).
const maxPart = 1023

// excludedLocal are the characters RFC 7622 §3.3.1 excludes from a
// localpart although UsernameCaseMapped allows them.
const excludedLocal = `"&'/:<>@`

// jidError says which part of an address is malformed and why.
type jidError struct{ part, why string }

func (e *jidError) Error() string { return "iq: " + e.detail() }

// detail is the message without the package prefix, for errors that
// carry the address in a message of their own.
func (e *jidError) detail() string { return "malformed JID: " + e.part + ": " + e.why }

func (e *jidError) Unwrap() error { return ErrMalformedJID }

// invalidAddr is the error of an IQ whose attr holds the malformed
// address addr: it wraps ErrInvalid and ErrMalformedJID.
func invalidAddr(attr, addr string, err error) error {
	return errs.New(fmt.Sprintf("%v: %s %q: %s", ErrInvalid, attr, addr, jidDetail(err)), ErrInvalid, err)
}

// jidDetail is err's message without its package prefix when ParseJID
// made it.
func jidDetail(err error) string {
	var je *jidError
	if errors.As(err, &je) {
		return je.detail()
	}
	return err.Error()
}

var domainProfile = idna.New(idna.MapForLookup(), idna.BidiRule(), idna.Transitional(false))

// ParseJID splits s into its parts and normalises each (RFC 7622 §3): the
// first '/' starts the resourcepart, the first '@' before it ends the
// localpart, and the rest is the domainpart, which is required; each part
// present must be 1 to 1023 bytes long once normalised and pass its
// profile, and a localpart must not hold any of " & ' / : < > @. The error
// wraps ErrMalformedJID and says which part is wrong and why.
//
// Addresses made of lower-case ASCII letters, digits and the usual
// punctuation take a fast path that allocates nothing.
func ParseJID(s string) (JID, error) {
	var j JID
	rest, res, hasRes := strings.Cut(s, "/")
	local, dom, hasLocal := strings.Cut(rest, "@")
	if !hasLocal {
		local, dom = "", rest
	}
	var err error
	if hasLocal {
		if j.local, err = normLocal(local); err != nil {
			return JID{}, err
		}
	}
	if j.domain, err = normDomain(dom); err != nil {
		return JID{}, err
	}
	if hasRes {
		if j.resource, err = normResource(res); err != nil {
			return JID{}, err
		}
	}
	return j, nil
}

// normLocal applies UsernameCaseMapped and the exclusions of RFC 7622
// §3.3.1, skipping the work for ASCII that the profile leaves as it is.
func normLocal(s string) (string, error) {
	switch {
	case s == "":
		return "", &jidError{"localpart", "empty ('@' with nothing before it)"}
	case len(s) <= maxPart && plainLocal(s):
		return s, nil
	case !utf8.ValidString(s):
		return "", &jidError{"localpart", "not valid UTF-8"}
	}
	n, err := precis.UsernameCaseMapped.String(s)
	if err != nil {
		return "", &jidError{"localpart", fmt.Sprintf("refused by PRECIS UsernameCaseMapped (%v)", err)}
	}
	// Checked after normalisation, which can map a character (a
	// full-width one, say) to an excluded one.
	if i := strings.IndexAny(n, excludedLocal); i >= 0 {
		return "", &jidError{"localpart", fmt.Sprintf("holds %q, which RFC 7622 §3.3.1 excludes", n[i])}
	}
	if len(n) > maxPart {
		return "", &jidError{"localpart", fmt.Sprintf("%d bytes once normalised, more than %d", len(n), maxPart)}
	}
	return n, nil
}

// plainLocal reports whether s is printable ASCII with no upper-case
// letter and no excluded character: UsernameCaseMapped maps such a string
// to itself.
func plainLocal(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c > '~' || (c >= 'A' && c <= 'Z') || strings.IndexByte(excludedLocal, c) >= 0 {
			return false
		}
	}
	return true
}

// normDomain accepts an IPv6 literal in brackets, an IPv4 address or a
// domain name (RFC 7622 §3.2), the last after stripping one trailing dot
// and mapping it to IDNA2008 U-labels.
func normDomain(s string) (string, error) {
	if s == "" {
		return "", &jidError{"domainpart", "empty"}
	}
	if len(s) <= maxPart && plainDomain(s) {
		return s, nil
	}
	if !utf8.ValidString(s) {
		return "", &jidError{"domainpart", "not valid UTF-8"}
	}
	if s[0] == '[' {
		return ipLiteral(s)
	}
	if a, err := netip.ParseAddr(s); err == nil && a.Is4() {
		return a.String(), nil
	}
	// RFC 7622 §3.2: the trailing dot goes before anything else.
	s = strings.TrimSuffix(s, ".")
	if s == "" {
		return "", &jidError{"domainpart", "empty once its trailing dot is stripped"}
	}
	d, err := domainProfile.ToUnicode(s)
	if err != nil {
		return "", &jidError{"domainpart", fmt.Sprintf("not an IDNA2008 domain name (%v)", err)}
	}
	// RFC 7622 §3.2.2 maps first and then asks for a valid domain name,
	// but the IDNA profile checks some rules (the Bidi rule) before its
	// mapping: "0\u2138" maps to "0\u05D3", which breaks it. What the
	// mapping makes must be a valid name that maps to itself.
	if again, err := domainProfile.ToUnicode(d); err != nil || again != d {
		return "", &jidError{"domainpart", fmt.Sprintf("maps to %q, which is not a valid domain name (%v)", d, err)}
	}
	// IDNA's lookup mapping lets empty labels through ("a..b", ".a"), and
	// maps other full stops (U+3002…) to '.': a domain name has none.
	if strings.HasPrefix(d, ".") || strings.HasSuffix(d, ".") || strings.Contains(d, "..") {
		return "", &jidError{"domainpart", "holds an empty label"}
	}
	if d == "" || len(d) > maxPart {
		return "", &jidError{"domainpart", fmt.Sprintf("%d bytes once normalised, not 1 to %d", len(d), maxPart)}
	}
	return d, nil
}

// ipLiteral checks an IP-literal (RFC 3986 §3.2.2 without IPvFuture, as
// RFC 7622 §3.2 allows) and writes it in RFC 5952's canonical form.
func ipLiteral(s string) (string, error) {
	if len(s) < 2 || s[len(s)-1] != ']' {
		return "", &jidError{"domainpart", "'[' without its closing ']'"}
	}
	a, err := netip.ParseAddr(s[1 : len(s)-1])
	switch {
	case err != nil:
		return "", &jidError{"domainpart", fmt.Sprintf("not an IPv6 literal (%v)", err)}
	case !a.Is6():
		return "", &jidError{"domainpart", "an IPv4 address in brackets, where only IPv6 goes"}
	case a.Zone() != "":
		return "", &jidError{"domainpart", "an IPv6 literal with a zone, which RFC 3986 does not allow"}
	}
	return "[" + a.String() + "]", nil
}

// plainDomain reports whether s is lower-case ASCII letters, digits and
// hyphens in non-empty labels that neither start nor end with a hyphen
// nor hold one in their third and fourth places (reserved for A-labels):
// a domain name that IDNA2008 maps to itself.
func plainDomain(s string) bool {
	start := 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) {
			c := s[i]
			if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' {
				continue
			}
			if c != '.' {
				return false
			}
		}
		label := s[start:i]
		if label == "" || label[0] == '-' || label[len(label)-1] == '-' ||
			len(label) >= 4 && label[2] == '-' && label[3] == '-' {
			return false
		}
		start = i + 1
	}
	return true
}

// normResource applies OpaqueString, skipping the work for printable
// ASCII, which it leaves as it is.
func normResource(s string) (string, error) {
	switch {
	case s == "":
		return "", &jidError{"resourcepart", "empty ('/' with nothing after it)"}
	case len(s) <= maxPart && plainResource(s):
		return s, nil
	case !utf8.ValidString(s):
		return "", &jidError{"resourcepart", "not valid UTF-8"}
	}
	n, err := precis.OpaqueString.String(s)
	if err != nil {
		return "", &jidError{"resourcepart", fmt.Sprintf("refused by PRECIS OpaqueString (%v)", err)}
	}
	if len(n) > maxPart {
		return "", &jidError{"resourcepart", fmt.Sprintf("%d bytes once normalised, more than %d", len(n), maxPart)}
	}
	return n, nil
}

func plainResource(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c > '~' {
			return false
		}
	}
	return true
}

// Bare returns the address without its resourcepart.
func (j JID) Bare() JID { return JID{local: j.local, domain: j.domain} }

// Domain returns the address of j's domain alone.
func (j JID) Domain() JID { return JID{domain: j.domain} }

// IsZero reports whether j is the zero JID, which is no address.
func (j JID) IsZero() bool { return j.domain == "" }

// Localpart returns the normalised localpart, "" when there is none.
func (j JID) Localpart() string { return j.local }

// Domainpart returns the normalised domainpart.
func (j JID) Domainpart() string { return j.domain }

// Resourcepart returns the resourcepart, "" when there is none.
func (j JID) Resourcepart() string { return j.resource }

// String returns the normalised address.
func (j JID) String() string {
	s := j.domain
	if j.local != "" {
		s = j.local + "@" + s
	}
	if j.resource != "" {
		s += "/" + j.resource
	}
	return s
}
