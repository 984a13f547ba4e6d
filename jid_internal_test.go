package iq

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"golang.org/x/text/secure/precis"
)

// TestParseJIDFastPathsMatchProfiles checks that what the fast paths take
// as it is, the profiles leave as it is too, over every printable ASCII
// character in each part.
func TestParseJIDFastPathsMatchProfiles(t *testing.T) {
	for c := 0; c < 0x80; c++ {
		for _, s := range []string{string(rune(c)), "a" + string(rune(c)) + "b"} {
			if plainLocal(s) {
				n, err := precis.UsernameCaseMapped.String(s)
				assert.NoError(t, err, "localpart %q", s)
				assert.Equal(t, s, n, "localpart %q", s)
				assert.False(t, strings.ContainsAny(n, excludedLocal), "localpart %q", s)
			}
			if plainResource(s) {
				n, err := precis.OpaqueString.String(s)
				assert.NoError(t, err, "resourcepart %q", s)
				assert.Equal(t, s, n, "resourcepart %q", s)
			}
			for _, d := range []string{s, s + ".example", "x" + s + "x.example", "ab" + s + s + "c"} {
				if plainDomain(d) {
					n, err := domainProfile.ToUnicode(d)
					assert.NoError(t, err, "domainpart %q", d)
					assert.Equal(t, d, n, "domainpart %q", d)
				}
			}
		}
	}
	for _, d := range []string{"-a", "a-", "ab--c", "xn--bcher-kva", "a..b", ".a", "a.", ""} {
		assert.False(t, plainDomain(d), "%q takes the slow path", d)
	}
}

func FuzzParseJIDFastPaths(f *testing.F) {
	for _, s := range []string{"juliet", "a-b.example", "x y", "Juliet", "a--b", "1.2.3.4"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if plainLocal(s) {
			if n, err := precis.UsernameCaseMapped.String(s); err != nil || n != s {
				t.Fatalf("localpart %q: %q, %v", s, n, err)
			}
		}
		if plainResource(s) && s != "" {
			if n, err := precis.OpaqueString.String(s); err != nil || n != s {
				t.Fatalf("resourcepart %q: %q, %v", s, n, err)
			}
		}
		if plainDomain(s) {
			if n, err := domainProfile.ToUnicode(s); err != nil || n != s {
				t.Fatalf("domainpart %q: %q, %v", s, n, err)
			}
		}
	})
}
