package jidcompat_test

import (
	"bufio"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/xmpp-iq/iq"
	"mellium.im/xmpp/jid"
)

// corpusPath is the corpus the core's own tests read too.
const corpusPath = "../../testdata/jids.txt"

type entry struct {
	line  int
	addr  string
	valid bool // RFC 7622's verdict
}

func readCorpus(tb testing.TB) []entry {
	tb.Helper()
	f, err := os.Open(corpusPath)
	require.NoError(tb, err)
	defer f.Close()
	var out []entry
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		verdict, rest, _ := strings.Cut(line, " ")
		lit, _, _ := strings.Cut(rest, "  #")
		addr, err := strconv.Unquote(strings.TrimSpace(lit))
		require.NoError(tb, err, "%s:%d", corpusPath, n)
		require.Contains(tb, []string{"valid", "invalid"}, verdict, "%s:%d", corpusPath, n)
		out = append(out, entry{n, addr, verdict == "valid"})
	}
	require.NoError(tb, sc.Err())
	require.NotEmpty(tb, out)
	return out
}

// A melliumBreak is a kind of address on which mellium.im/xmpp/jid
// v0.23.0 breaks RFC 7622, with the reason, the corpus's examples of it,
// and a test that an address whose verdicts differ is of this kind. The
// two parsers differ nowhere else.
type melliumBreak struct {
	name     string
	reason   string
	examples []string
	is       func(s string, ours iq.JID, oerr error, theirs jid.JID, merr error) bool
}

var melliumBreaks = []melliumBreak{{
	name: "empty label",
	reason: "RFC 7622 §3.2 makes a domainpart that is no IP address an internationalized " +
		"domain name (RFC 5890), whose labels are never empty (RFC 1034 §3.1); only one " +
		"final dot is stripped. mellium keeps the empty labels that IDNA's lookup mapping " +
		"lets through, or makes from U+3002 and the other full stops.",
	examples: []string{"a..b", ".a", "a..", "a\u3002"},
	is: func(_ string, _ iq.JID, oerr error, theirs jid.JID, merr error) bool {
		d := theirs.Domainpart()
		return oerr != nil && merr == nil &&
			(strings.HasPrefix(d, ".") || strings.HasSuffix(d, ".") || strings.Contains(d, ".."))
	},
}, {
	name: "mapping that breaks the Bidi rule",
	reason: "RFC 7622 §3.2.2 applies IDNA's mapping (RFC 5895) and then requires an " +
		"internationalized domain name, whose U-labels obey the Bidi rule (RFC 5893); " +
		"mellium checks the rule before the mapping, so it accepts 0\u2138 (DALET " +
		"SYMBOL), which maps to 0\u05D3, a Hebrew letter after a digit, and then " +
		"refuses its own result.",
	examples: []string{"0\u2138", "a@0\u2138.example/r"},
	is: func(_ string, _ iq.JID, oerr error, theirs jid.JID, merr error) bool {
		if oerr == nil || merr != nil {
			return false
		}
		_, err := jid.Parse(theirs.Domainpart())
		return err != nil && strings.Contains(err.Error(), "idna:")
	},
}, {
	name: "IPv6 address without brackets",
	reason: "RFC 7622 §3.2 allows an IPv6 address only as an IP-literal in brackets " +
		"(RFC 3986 §3.2.2); mellium takes an IPv4-mapped IPv6 address without them " +
		"(::ffff:192.0.2.1) for an IPv4 address.",
	examples: []string{"::ffff:192.0.2.1"},
	is: func(_ string, _ iq.JID, oerr error, theirs jid.JID, merr error) bool {
		return oerr != nil && merr == nil && strings.Contains(theirs.Domainpart(), ":")
	},
}, {
	name: "IPv4-mapped IPv6 literal",
	reason: "RFC 3986 §3.2.2's IPv6address, which RFC 7622 §3.2 takes for IP-literals, " +
		"includes IPv4-mapped addresses ([::ffff:192.0.2.1]); mellium refuses them in " +
		"brackets because net.IP.To4 sees an IPv4 address.",
	examples: []string{"[::ffff:192.0.2.1]", "[::ffff:c000:201]"},
	is: func(_ string, ours iq.JID, oerr error, _ jid.JID, merr error) bool {
		if oerr != nil || merr == nil {
			return false
		}
		d := ours.Domainpart()
		a, err := netip.ParseAddr(strings.Trim(d, "[]"))
		if err != nil || !a.Is4In6() {
			return false
		}
		// mellium must take the same address with another IPv6 literal:
		// the literal is the only reason it refuses.
		other := "[::1]"
		if l := ours.Localpart(); l != "" {
			other = l + "@" + other
		}
		if r := ours.Resourcepart(); r != "" {
			other += "/" + r
		}
		_, err = jid.Parse(other)
		return err == nil
	},
}}

// breakOf returns the melliumBreak that explains why the verdicts on s
// differ, or nil.
func breakOf(s string, ours iq.JID, oerr error, theirs jid.JID, merr error) *melliumBreak {
	for i := range melliumBreaks {
		if melliumBreaks[i].is(s, ours, oerr, theirs, merr) {
			return &melliumBreaks[i]
		}
	}
	return nil
}

// sameAddress reports whether the two parsers, both accepting, agree on
// the address: byte for byte, except that an IPv6 literal is in RFC
// 5952's canonical form in ours and as written in mellium's.
func sameAddress(ours iq.JID, theirs jid.JID) bool {
	if ours.Localpart() != theirs.Localpart() || ours.Resourcepart() != theirs.Resourcepart() {
		return false
	}
	od, md := ours.Domainpart(), theirs.Domainpart()
	if strings.HasPrefix(od, "[") && strings.HasPrefix(md, "[") {
		oa, err1 := netip.ParseAddr(strings.Trim(od, "[]"))
		ma, err2 := netip.ParseAddr(strings.Trim(md, "[]"))
		return err1 == nil && err2 == nil && oa == ma
	}
	return od == md
}

// compare fails t unless iq.ParseJID and jid.Parse agree on s, or
// differ in one of the ways melliumBreaks lists.
func compare(t *testing.T, s string) {
	ours, oerr := iq.ParseJID(s)
	theirs, merr := jid.Parse(s)
	if (oerr == nil) != (merr == nil) {
		if b := breakOf(s, ours, oerr, theirs, merr); b == nil {
			t.Fatalf("verdicts differ on %q: iq: %v, mellium: %v", s, oerr, merr)
		}
		return
	}
	if oerr == nil && !sameAddress(ours, theirs) {
		t.Fatalf("%q: iq reads %q, mellium %q", s, ours.String(), theirs.String())
	}
}

// TestCorpusVerdicts checks each parser's verdict on the shared corpus
// against RFC 7622's: ours always, mellium's except on the listed
// breaks, each of which must still be one.
func TestCorpusVerdicts(t *testing.T) {
	listed := make(map[string]*melliumBreak)
	for i, b := range melliumBreaks {
		for _, e := range b.examples {
			listed[e] = &melliumBreaks[i]
		}
	}
	seen := make(map[string]bool)
	for _, e := range readCorpus(t) {
		t.Run(strconv.Itoa(e.line), func(t *testing.T) {
			ours, oerr := iq.ParseJID(e.addr)
			theirs, merr := jid.Parse(e.addr)
			assert.Equal(t, e.valid, oerr == nil, "iq.ParseJID(%q): %v", e.addr, oerr)
			if b := listed[e.addr]; b != nil {
				seen[e.addr] = true
				assert.NotEqual(t, e.valid, merr == nil,
					"mellium now follows RFC 7622 on %q (%s): drop it from melliumBreaks", e.addr, b.name)
				assert.Same(t, b, breakOf(e.addr, ours, oerr, theirs, merr), "%q", e.addr)
				return
			}
			assert.Equal(t, e.valid, merr == nil, "jid.Parse(%q): %v", e.addr, merr)
			if oerr == nil && merr == nil {
				assert.True(t, sameAddress(ours, theirs), "%q: iq reads %q, mellium %q", e.addr, ours.String(), theirs.String())
			}
		})
	}
	for e, b := range listed {
		assert.True(t, seen[e], "the example %q of %q is not in the corpus", e, b.name)
	}
}

// FuzzDifferential compares iq.ParseJID with mellium.im/xmpp/jid's Parse
// on any input: their verdicts agree, and so do their addresses, but for
// the listed breaks of RFC 7622 on mellium's side. It also checks that
// ours is stable: the address it returns parses to itself.
func FuzzDifferential(f *testing.F) {
	for _, e := range readCorpus(f) {
		f.Add(e.addr)
	}
	f.Fuzz(func(t *testing.T, s string) {
		compare(t, s)
		if j, err := iq.ParseJID(s); err == nil {
			again, err := iq.ParseJID(j.String())
			if err != nil || again != j {
				t.Fatalf("%q reads %q, which reads %q (%v)", s, j.String(), again.String(), err)
			}
		}
	})
}
