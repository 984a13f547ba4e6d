package iq_test

import (
	"bufio"
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/iqtest"
)

// jidCorpus reads testdata/jids.txt, the addresses and RFC 7622 verdicts
// that tests/jidcompat also checks mellium.im/xmpp/jid against.
func jidCorpus(tb testing.TB) (valid, invalid []string) {
	tb.Helper()
	f, err := os.Open("testdata/jids.txt")
	require.NoError(tb, err)
	defer f.Close()
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
		require.NoError(tb, err, "testdata/jids.txt:%d", n)
		switch verdict {
		case "valid":
			valid = append(valid, addr)
		case "invalid":
			invalid = append(invalid, addr)
		default:
			tb.Fatalf("testdata/jids.txt:%d: verdict %q", n, verdict)
		}
	}
	require.NoError(tb, sc.Err())
	return valid, invalid
}

// TestBugJIDParsedTooLeniently: ParseJID took a@@b, a@b@c, exa mple.com,
// a@exa<mple.com, [zz], control characters in a resource and parts over
// 1023 bytes. It now gives RFC 7622's verdict on the whole corpus.
func TestBugJIDParsedTooLeniently(t *testing.T) {
	valid, invalid := jidCorpus(t)
	for _, s := range invalid {
		_, err := iq.ParseJID(s)
		assert.ErrorIs(t, err, iq.ErrMalformedJID, "ParseJID(%q)", s)
	}
	for _, s := range valid {
		j, err := iq.ParseJID(s)
		if !assert.NoError(t, err, "ParseJID(%q)", s) {
			continue
		}
		again, err := iq.ParseJID(j.String())
		assert.NoError(t, err, "%q reads %q", s, j.String())
		assert.Equal(t, j, again, "%q reads %q, which reads %q", s, j.String(), again.String())
	}
}

func TestParseJIDNormalises(t *testing.T) {
	tests := []struct {
		name, in                string
		local, domain, resource string
	}{
		{"plain", "juliet@example.com/balcony", "juliet", "example.com", "balcony"},
		{"case", "Juliet@Example.COM/Balcony", "juliet", "example.com", "Balcony"},
		{"full-width", "\uff2a@example.com", "j", "example.com", ""},
		{"final sigma kept", "\u03c2@example.com", "\u03c2", "example.com", ""},
		{"trailing dot", "juliet@example.com./r", "juliet", "example.com", "r"},
		{"A-label", "xn--bcher-kva.example", "", "b\u00fccher.example", ""},
		{"U-label case", "B\u00dcCHER.example", "", "b\u00fccher.example", ""},
		{"IPv4", "a@192.0.2.1", "a", "192.0.2.1", ""},
		{"IPv6 per RFC 5952", "[2001:DB8:0:0:0:0:0:1]", "", "[2001:db8::1]", ""},
		{"IPv4-mapped IPv6", "[::FFFF:c000:201]", "", "[::ffff:192.0.2.1]", ""},
		{"resource space mapped", "a@b/x\u00a0y", "a", "b", "x y"},
		{"resource NFC", "a@b/\u212b", "a", "b", "\u00c5"},
		{"resource keeps separators", "a@b/c@d/e", "a", "b", "c@d/e"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j, err := iq.ParseJID(tt.in)
			require.NoError(t, err)
			assert.Equal(t, tt.local, j.Localpart())
			assert.Equal(t, tt.domain, j.Domainpart())
			assert.Equal(t, tt.resource, j.Resourcepart())
		})
	}
}

func TestParseJIDErrorSaysWhichPartAndWhy(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty localpart", "@example.com", "localpart: empty"},
		{"excluded character", "a<b@example.com", `localpart: holds '<'`},
		{"excluded after width mapping", "a\uff20b@example.com", `localpart: holds '@'`},
		{"localpart profile", "a b@example.com", "localpart: refused by PRECIS UsernameCaseMapped"},
		{"long localpart", strings.Repeat("a", 1024) + "@example.com", "localpart: 1024 bytes once normalised"},
		{"empty domainpart", "a@", "domainpart: empty"},
		{"second @", "a@@b", "domainpart: not an IDNA2008 domain name"},
		{"space in domain", "exa mple.com", "domainpart: not an IDNA2008 domain name"},
		{"empty label", "a..b", "domainpart: holds an empty label"},
		{"bad IPv6", "[zz]", "domainpart: not an IPv6 literal"},
		{"IPv4 in brackets", "[192.0.2.1]", "domainpart: an IPv4 address in brackets"},
		{"zone", "[fe80::1%eth0]", "domainpart: an IPv6 literal with a zone"},
		{"unclosed", "[::1", "domainpart: '[' without its closing ']'"},
		{"empty resourcepart", "a@b/", "resourcepart: empty"},
		{"control in resource", "a@b/\x01", "resourcepart: refused by PRECIS OpaqueString"},
		{"long resource", "a@b/" + strings.Repeat("r", 1024), "resourcepart: 1024 bytes once normalised"},
		{"invalid UTF-8", "a@b/\xff", "resourcepart: not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := iq.ParseJID(tt.in)
			require.Error(t, err)
			assert.ErrorIs(t, err, iq.ErrMalformedJID)
			assert.True(t, strings.HasPrefix(err.Error(), "iq: malformed JID: "+tt.want), "%v", err)
			assert.Equal(t, 1, strings.Count(err.Error(), "iq:"), "one prefix: %v", err)
		})
	}
}

// TestBugCallerWaitsOnMalformedTo: Get(ctx, "exa mple.com", …) was sent
// and waited for its timeout; it now fails at once, unsent.
func TestBugCallerWaitsOnMalformedTo(t *testing.T) {
	for _, to := range []string{"exa mple.com", "a@@b", "a@exa<mple.com", "[zz]", "a@b/\x01"} {
		t.Run(to, func(t *testing.T) {
			rec := iqtest.NewRecorder()
			c := iq.NewCaller(rec, iq.WithTimeout(time.Hour))
			defer c.Close()
			_, err := c.Get(context.Background(), to, iq.NewElement("urn:example", "q"))
			assert.ErrorIs(t, err, iq.ErrInvalid)
			assert.ErrorIs(t, err, iq.ErrMalformedJID)
			assert.Contains(t, err.Error(), strconv.Quote(to))
			assert.Equal(t, 1, strings.Count(err.Error(), "iq:"), "one prefix: %v", err)
			assert.Zero(t, rec.Len(), "the Sender must not be called")
		})
	}
}

// TestBugMalformedLocalJIDIgnored: a malformed WithLocalJID was logged to
// the discard logger and dropped, and the Caller then took a response to
// a request with no to from any sender. Construction now panics.
func TestBugMalformedLocalJIDIgnored(t *testing.T) {
	constructors := []struct {
		name string
		make func(opts ...iq.Option)
	}{
		{"NewCaller", func(opts ...iq.Option) { iq.NewCaller(iqtest.NewRecorder(), opts...).Close() }},
		{"NewEndpoint", func(opts ...iq.Option) { iq.NewEndpoint(iqtest.NewRecorder(), opts...).Close() }},
	}
	for _, c := range constructors {
		for _, bad := range []string{"a@", "b/", "@@", "exa mple.com", "juliet@example.com/"} {
			t.Run(c.name+"/"+bad, func(t *testing.T) {
				assert.PanicsWithValue(t, func() string {
					_, err := iq.ParseJID(bad)
					require.Error(t, err)
					return "iq: WithLocalJID(" + strconv.Quote(bad) + "): " + strings.TrimPrefix(err.Error(), "iq: ")
				}(), func() { c.make(iq.WithLocalJID(bad)) })
			})
		}
		t.Run(c.name+"/valid", func(t *testing.T) {
			assert.NotPanics(t, func() { c.make(iq.WithLocalJID("juliet@example.com/balcony")) })
			assert.NotPanics(t, func() { c.make(iq.WithLocalJID("")) }, "no local JID yet")
		})
	}
}

// BenchmarkParseJID runs per response (the Caller's reply rule): the plain
// cases take the fast path and allocate nothing.
func BenchmarkParseJID(b *testing.B) {
	for _, tc := range []struct{ name, in string }{
		{"plain", "juliet@capulet.example/balcony"},
		{"domain", "capulet.example"},
		{"unicode", "Σ@exämple.com/♚"},
		{"ipv6", "[2001:db8::1]"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := iq.ParseJID(tc.in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
