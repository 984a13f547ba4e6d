package xmldec

import (
	"encoding/binary"
	"fmt"
	"io"
	"unicode/utf8"
)

// Byte classes for text scanning.
const (
	cPlain = iota // copied as is
	cSpecial
)

// textClass marks the bytes text must look at: markup, quotes, CR, the >
// of ]]>, control characters (not allowed in XML) and non-ASCII bytes.
var textClass = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		switch {
		case c == '\t' || c == '\n':
		case c < 0x20 || c >= 0x80:
			t[c] = cSpecial
		}
	}
	for _, c := range []byte{'<', '&', '\r', '>', '\'', '"'} {
		t[c] = cSpecial
	}
	return t
}()

// dataClass and valueClass are textClass for the fast paths that take
// character data and attribute values whole when they hold no byte text
// would change or check: quotes are plain in character data, and '>' in
// attribute values.
var dataClass, valueClass = func() (data, value [256]uint8) {
	data, value = textClass, textClass
	data['\''], data['"'], value['>'] = cPlain, cPlain, cPlain
	return data, value
}()

// text reads character data (quote < 0, cdata false), an attribute value
// after its opening quote (quote is the quote byte), or a CDATA section
// after <![CDATA[, exactly as encoding/xml's text does: entities and
// character references replaced, CR LF and lone CR turned into LF, and the
// result checked for invalid UTF-8 and characters outside XML's range once
// it is complete. Character data also ends at the end of the input, which
// is only an error in a CDATA section.
//
// The result is d.buf[s] when raw, else d.tmp[s].
func (d *Decoder) text(quote int, cdata bool) (raw bool, s span, err error) {
	start := d.pos
	seg := start    // start of the input not yet copied to tmp
	entEnd := start // where ]]> may start: after the last entity
	raw = true
	tmp := d.tmp[:0] // a local: appends need no write barrier
	var bad string   // the first validity error
	i := start
	chop := 0 // terminator bytes before i: the quote, or ]]>
Scan:
	for {
		if i >= d.end {
			d.pos = i
			if !d.more() {
				if cdata {
					if d.why == io.EOF {
						return false, span{}, d.syntaxError("unexpected EOF in CDATA section")
					}
					return false, span{}, d.why
				}
				break Scan
			}
			continue
		}
		buf := d.buf[:d.end]
		for i < len(buf) && textClass[buf[i]] == cPlain {
			i++
		}
		if i >= len(buf) {
			continue
		}
		c := buf[i]
		switch {
		case c >= utf8.RuneSelf:
			if !utf8.FullRune(buf[i:]) {
				d.pos = i
				if d.more() {
					continue
				}
				buf = d.buf[:d.end]
			}
			r, n := utf8.DecodeRune(buf[i:])
			if bad == "" {
				if r == utf8.RuneError && n == 1 {
					bad = "invalid UTF-8"
				} else if !inRange(r) {
					bad = fmt.Sprintf("illegal character code %U", r)
				}
			}
			i += n
		case c < 0x20 && c != '\r':
			if bad == "" {
				bad = fmt.Sprintf("illegal character code %U", rune(c))
			}
			i++
		case c == '>':
			if quote < 0 && i-2 >= entEnd && buf[i-1] == ']' && buf[i-2] == ']' {
				if cdata {
					chop = 3
					i++
					break Scan
				}
				d.pos = i + 1
				return false, span{}, d.syntaxError("unescaped ]]> not in CDATA section")
			}
			i++
		case c == '<':
			if cdata {
				i++
				continue
			}
			if quote >= 0 {
				d.pos = i + 1
				return false, span{}, d.syntaxError("unescaped < inside quoted string")
			}
			break Scan
		case c == '\'' || c == '"':
			i++
			if int(c) == quote {
				chop = 1
				break Scan
			}
		case c == '\r':
			tmp = append(tmp, d.buf[seg:i]...)
			tmp = append(tmp, '\n')
			raw = false
			i++
			if i >= d.end {
				d.pos = i
				d.more()
			}
			if i < d.end && d.buf[i] == '\n' {
				i++
			}
			seg = i
		case c == '&':
			if cdata {
				i++
				continue
			}
			tmp = append(tmp, d.buf[seg:i]...)
			raw = false
			if n, ch := predefined(buf[i+1:]); n > 0 {
				// Fast path: one of the five, in the buffer.
				tmp = append(tmp, ch)
				i += 1 + n
				seg, entEnd = i, i
				continue
			}
			d.pos = i + 1
			r, err := d.entity(i)
			if err != nil {
				return false, span{}, err
			}
			if bad == "" && !inRange(r) {
				bad = fmt.Sprintf("illegal character code %U", r)
			}
			tmp = utf8.AppendRune(tmp, r)
			i = d.pos
			seg, entEnd = i, i
		}
	}
	// i is past the terminator (quote, ]]>) or at the end of the data (<
	// or the end of the input).
	stop := i - chop
	d.pos = i
	if bad != "" {
		return false, span{}, d.syntaxError(bad)
	}
	if raw {
		return true, span{start, stop}, nil
	}
	tmp = append(tmp, d.buf[seg:stop]...)
	d.tmp = tmp
	return false, span{0, len(tmp)}, nil
}

// entity reads an entity or character reference after the & at amp, as
// encoding/xml does, and returns the character it stands for. Character
// references to surrogates stand for U+FFFD, as string(rune(n)) makes
// them; a reference to a character outside XML's range is returned for
// the caller to report once the text is complete.
func (d *Decoder) entity(amp int) (rune, error) {
	if n, ch := predefined(d.buf[d.pos:d.end]); n > 0 {
		d.pos += n
		return rune(ch), nil
	}
	c, ok := d.getc()
	if !ok {
		return 0, d.eofErr()
	}
	r := rune(-1)
	if c == '#' {
		if c, ok = d.getc(); !ok {
			return 0, d.eofErr()
		}
		base := rune(10)
		if c == 'x' {
			base = 16
			if c, ok = d.getc(); !ok {
				return 0, d.eofErr()
			}
		}
		var n rune
		digits, over := 0, false
		for {
			var v rune
			switch {
			case '0' <= c && c <= '9':
				v = rune(c - '0')
			case base == 16 && 'a' <= c && c <= 'f':
				v = rune(c-'a') + 10
			case base == 16 && 'A' <= c && c <= 'F':
				v = rune(c-'A') + 10
			default:
				v = -1
			}
			if v < 0 {
				break
			}
			digits++
			if !over {
				n = n*base + v
				if n > utf8.MaxRune {
					over = true
				}
			}
			if c, ok = d.getc(); !ok {
				return 0, d.eofErr()
			}
		}
		if c != ';' {
			d.pos--
		} else if digits > 0 && !over {
			r = n
			if 0xD800 <= r && r <= 0xDFFF {
				r = utf8.RuneError
			}
		}
	} else {
		d.pos--
		s, err := d.readName()
		if err != nil {
			return 0, err
		}
		if c, ok = d.getc(); !ok {
			return 0, d.eofErr()
		}
		if c != ';' {
			d.pos--
		} else {
			switch string(d.bytes(s)) {
			case "lt":
				r = '<'
			case "gt":
				r = '>'
			case "amp":
				r = '&'
			case "apos":
				r = '\''
			case "quot":
				r = '"'
			}
		}
	}
	if r >= 0 {
		return r, nil
	}
	ent := string(d.buf[amp:d.pos])
	if ent[len(ent)-1] != ';' {
		ent += " (no semicolon)"
	}
	return 0, d.syntaxError("invalid character entity " + ent)
}

// predefined reads one of the five predefined entities (lt, gt, amp,
// apos, quot) and its semicolon at the start of b, which follows an &, as
// entity would: it returns the bytes it takes and the character, or 0 when
// b does not start with one, or holds too little to tell.
func predefined(b []byte) (int, byte) {
	if len(b) < 5 {
		return 0, 0 // entity's slow path reads it, and more input if need be
	}
	// The first four bytes as one word, so that each entity is one
	// comparison and predefined is small enough to be inlined.
	w := binary.LittleEndian.Uint32(b)
	switch {
	case w&0xffffff == 'l'|'t'<<8|';'<<16:
		return 3, '<'
	case w&0xffffff == 'g'|'t'<<8|';'<<16:
		return 3, '>'
	case w == 'a'|'m'<<8|'p'<<16|';'<<24:
		return 4, '&'
	case b[4] != ';': // neither apos; nor quot;
	case w == 'a'|'p'<<8|'o'<<16|'s'<<24:
		return 5, '\''
	case w == 'q'|'u'<<8|'o'<<16|'t'<<24:
		return 5, '"'
	}
	return 0, 0
}

func inRange(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD ||
		r >= 0x10000 && r <= 0x10FFFF
}
