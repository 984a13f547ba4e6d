package xmldec

import (
	"unicode"
	"unicode/utf8"
)

//go:generate go run gen_nametable.go

// The decoder and package iq's writer share one name rule, so that every
// name read from the network can be written back and nothing else is
// written: a name is what encoding/xml reads as one (XML 1.0's Appendix B
// classes: Letter, Digit, CombiningChar, Extender, '.', '-', '_' and ':'),
// and each part of a qualified name, the prefix and the local name, is an
// NCName, a name without a colon. The non-ASCII classes are the two tables
// of nametable.go; ASCII is looked up in nameClass.

// Bits of nameClass.
const (
	classStart = 1 << iota // may start an NCName: ASCII letters and '_'
	classChar              // may follow in an NCName: classStart, digits, '.', '-'
	classRead              // read as part of a name by encoding/xml: classChar, ':', non-ASCII
)

var nameClass = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || c == '_' {
			t[c] |= classStart | classChar
		}
		if '0' <= c && c <= '9' || c == '.' || c == '-' {
			t[c] |= classChar
		}
		if t[c]&classChar != 0 || c == ':' || c >= utf8.RuneSelf {
			t[c] |= classRead
		}
	}
	return t
}()

// nameByte marks the bytes encoding/xml reads as part of a name: ASCII
// letters, digits, _ : . - and every non-ASCII byte (checked afterwards).
var nameByte = func() (t [256]bool) {
	for c := range t {
		t[c] = nameClass[c]&classRead != 0
	}
	return t
}()

// IsNCNameStart reports whether r may start an NCName: a Letter of XML
// 1.0's Appendix B, or '_'.
func IsNCNameStart(r rune) bool {
	if r < utf8.RuneSelf {
		return r >= 0 && nameClass[r]&classStart != 0
	}
	return unicode.Is(ncNameStart, r)
}

// IsNCNameChar reports whether r may follow the first character of an
// NCName: an Appendix B Letter, Digit, CombiningChar or Extender, or one
// of '_', '.', '-'.
func IsNCNameChar(r rune) bool {
	if r < utf8.RuneSelf {
		return r >= 0 && nameClass[r]&classChar != 0
	}
	return unicode.Is(ncNameChar, r)
}

// isName reports whether b is an XML name by encoding/xml's rules: an
// NCName in which colons may stand anywhere, first included.
func isName(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	if c := b[0]; c < utf8.RuneSelf && c != ':' && nameClass[c]&classStart == 0 {
		return false
	}
	for i, c := range b {
		if c >= utf8.RuneSelf {
			return isNameSlow(b, i)
		}
		if c != ':' && nameClass[c]&classChar == 0 {
			return false
		}
	}
	return true
}

// isNameSlow checks b from its i'th byte on, the first non-ASCII one, the
// bytes before it being ASCII name characters.
func isNameSlow(b []byte, i int) bool {
	for i < len(b) {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return false
		}
		if i == 0 && r != ':' && !IsNCNameStart(r) || r != ':' && !IsNCNameChar(r) {
			return false
		}
		i += n
	}
	return true
}

// IsNCName reports whether s is an NCName: a name as encoding/xml reads
// one, without a colon. The decoder accepts exactly these as element and
// attribute local names and package iq writes exactly these.
func IsNCName(s string) bool {
	if s == "" {
		return false
	}
	if c := s[0]; c < utf8.RuneSelf && nameClass[c]&classStart == 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			return isNCNameSlow(s, i)
		}
		if nameClass[c]&classChar == 0 {
			return false
		}
	}
	return true
}

// isNCNameSlow checks s from its i'th byte on, as isNameSlow does.
func isNCNameSlow(s string, i int) bool {
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			return false
		}
		if i == 0 && !IsNCNameStart(r) || !IsNCNameChar(r) {
			return false
		}
		i += n
	}
	return true
}
