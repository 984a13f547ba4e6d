package iq

import (
	"errors"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/text/secure/precis"
)

// JID is an XMPP address (RFC 7622) split into its parts and normalised, so
// that two spellings of one address compare equal with ==: the localpart
// case-folded (PRECIS UsernameCaseMapped), the domainpart in lower case with
// IDNA mapping and without a trailing dot, the resourcepart exact. The zero
// JID is no address. ParseJID is the package's one parser: the Caller's
// reply-sender rule, the middleware and package stream all use it.
type JID struct {
	local, domain, resource string
}

var errJID = errors.New("iq: malformed JID")

var domainProfile = idna.New(idna.MapForLookup(), idna.Transitional(false), idna.StrictDomainName(false))

// ParseJID splits and normalises s. It rejects what RFC 7622 calls
// malformed: an empty part where a separator promises one, or a part that
// fails its profile.
func ParseJID(s string) (JID, error) {
	var j JID
	rest := s
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		j.resource = rest[i+1:]
		rest = rest[:i]
		if j.resource == "" || !utf8.ValidString(j.resource) {
			return JID{}, errJID
		}
	}
	if i := strings.IndexByte(rest, '@'); i >= 0 {
		local := rest[:i]
		rest = rest[i+1:]
		if local == "" {
			return JID{}, errJID
		}
		norm, err := normLocal(local)
		if err != nil {
			return JID{}, errJID
		}
		j.local = norm
	}
	d, err := normDomain(rest)
	if err != nil {
		return JID{}, errJID
	}
	j.domain = d
	return j, nil
}

// normLocal applies UsernameCaseMapped, skipping the work for the common
// case of lower-case ASCII that the profile leaves as it is.
func normLocal(s string) (string, error) {
	if isPlainLower(s, true) {
		return s, nil
	}
	if strings.ContainsAny(s, "\"&'/:<>@") {
		return "", errJID
	}
	return precis.UsernameCaseMapped.String(s)
}

func normDomain(s string) (string, error) {
	s = strings.TrimSuffix(s, ".")
	if s == "" {
		return "", errJID
	}
	if isPlainLower(s, false) {
		return s, nil
	}
	if s[0] == '[' { // an IPv6 literal
		return strings.ToLower(s), nil
	}
	d, err := domainProfile.ToUnicode(s)
	if err != nil {
		return "", err
	}
	return strings.ToLower(d), nil
}

// isPlainLower reports whether s is made only of characters that every
// profile involved maps to themselves: lower-case ASCII letters, digits,
// and '-', '.', '_' (the last two only in a localpart context where they
// are allowed, '.' being a label separator in a domain).
func isPlainLower(s string, local bool) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '.':
		case c == '_' && local:
		default:
			return false
		}
	}
	if !local && (strings.HasPrefix(s, ".") || strings.Contains(s, "..") || strings.Contains(s, "xn--")) {
		return false
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
