package xmldec

import (
	"bytes"
	"encoding/xml"
	"unicode"
	"unicode/utf8"
)

// nameByte marks the bytes encoding/xml reads as part of a name: ASCII
// letters, digits, _ : . - and every non-ASCII byte (checked afterwards).
var nameByte = func() (t [256]bool) {
	for c := 0; c < 256; c++ {
		t[c] = 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
			c == '_' || c == ':' || c == '.' || c == '-' || c >= utf8.RuneSelf
	}
	return t
}()

// isName reports whether b is an XML name by encoding/xml's rules (the
// Letter and NameChar tables of XML 1.0's Appendix B).
func isName(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	ascii := true
	for _, c := range b {
		if c >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		c := b[0]
		// Every ASCII name byte may follow; the first must be a letter,
		// _ or :.
		return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || c == '_' || c == ':'
	}
	return isNameSlow(b)
}

// isNameSlow asks encoding/xml itself, for names with non-ASCII
// characters: the name as the target of a processing instruction is
// accepted exactly when encoding/xml's isName accepts it.
func isNameSlow(b []byte) bool {
	in := make([]byte, 0, len(b)+4)
	in = append(in, "<?"...)
	in = append(in, b...)
	in = append(in, "?>"...)
	_, err := xml.NewDecoder(bytes.NewReader(in)).RawToken()
	return err == nil
}

// IsNCName is package iq's rule for the names it can write back: an XML
// NCName (no colon), with non-ASCII letters, digits and marks as the
// unicode package classifies them.
func IsNCName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z':
		case i > 0 && (c == '-' || c == '.' || '0' <= c && c <= '9'):
		case c >= utf8.RuneSelf:
			return isNCNameSlow(s)
		default:
			return false
		}
	}
	return true
}

func isNCNameSlow(s string) bool {
	for i, r := range s {
		switch {
		case r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z'):
		case i > 0 && (r == '-' || r == '.' || (r >= '0' && r <= '9')):
		case r >= utf8.RuneSelf && r != utf8.RuneError && r != 0xFFFE && r != 0xFFFF &&
			(unicode.IsLetter(r) || (i > 0 && (unicode.IsDigit(r) || unicode.IsMark(r) || r == 0xB7))):
		default:
			return false
		}
	}
	return true
}
