package iq_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xmpp-iq/iq"
)

// ParseJID runs on every response whose from is not the request's to as
// sent (the Caller's reply rule), and on every request an ordered route or
// an address middleware sees: an address already in normal form, lower
// case ASCII, must cost no allocation.
func TestParseJIDNormalASCIIAllocatesNothing(t *testing.T) {
	tests := []struct {
		name, in           string
		local, domain, res string
	}{
		{name: "full", in: "juliet@capulet.example/balcony", local: "juliet", domain: "capulet.example", res: "balcony"},
		{name: "bare", in: "romeo@montague.example", local: "romeo", domain: "montague.example"},
		{name: "domain", in: "conference.example", domain: "conference.example"},
		{name: "domain with resource", in: "pubsub.example/Node 1", domain: "pubsub.example", res: "Node 1"},
		{name: "digits and punctuation", in: "user.name+tag_1@x-1.example/res@1/2", local: "user.name+tag_1", domain: "x-1.example", res: "res@1/2"},
		{name: "ipv4", in: "a@192.0.2.1", local: "a", domain: "192.0.2.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j, err := iq.ParseJID(tt.in)
			require.NoError(t, err)
			assert.Equal(t, tt.local, j.Localpart())
			assert.Equal(t, tt.domain, j.Domainpart())
			assert.Equal(t, tt.res, j.Resourcepart())
			assert.Equal(t, tt.in, j.String())
			allocs := testing.AllocsPerRun(100, func() {
				if _, err := iq.ParseJID(tt.in); err != nil {
					panic(err)
				}
			})
			assert.Zero(t, allocs, "ParseJID(%q)", tt.in)
		})
	}
}
