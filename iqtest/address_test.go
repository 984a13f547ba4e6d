package iqtest_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xmpp-iq/iq/iqtest"
)

// TestBugPairAcceptsMalformedAddresses: NewPair("a@", "b/") made a Pair
// whose Endpoints did not know their addresses and so took responses
// from any sender. It now panics, naming the address.
func TestBugPairAcceptsMalformedAddresses(t *testing.T) {
	tests := []struct {
		name, a, b, want string
	}{
		{"both malformed", "a@", "b/", `iqtest: NewPair: address "a@": iq: malformed JID: domainpart: empty`},
		{"second malformed", "a@example.com/x", "b/", `iqtest: NewPair: address "b/": iq: malformed JID: resourcepart: empty`},
		{"space", "exa mple.com", "b.example.com", `iqtest: NewPair: address "exa mple.com": iq: malformed JID: domainpart:`},
		{"first empty", "", "b.example.com", "iqtest: NewPair: empty address"},
		{"second empty", "a@example.com/x", "", "iqtest: NewPair: empty address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got any
			func() {
				defer func() { got = recover() }()
				iqtest.NewPair(tt.a, tt.b).Close()
			}()
			require.NotNil(t, got, "NewPair(%q, %q) must panic", tt.a, tt.b)
			assert.Contains(t, got, tt.want)
		})
	}
	assert.NotPanics(t, func() { iqtest.NewPair("a@example.com/x", "[2001:db8::1]").Close() })
}
