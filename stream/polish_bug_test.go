package stream_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/stream"
)

// TestBugStreamBadOptionValuesSilentlyAccepted: WithMaxStanzaSize(-1)
// quietly kept the default and WithNamespace took a namespace in which
// no IQ would ever be read. Both now panic at the call; the zero values
// keep the defaults.
func TestBugStreamBadOptionValuesSilentlyAccepted(t *testing.T) {
	for _, tc := range []struct {
		name string
		call func()
		msg  string // "" for no panic
	}{
		{"MaxStanzaSize/negative", func() { stream.WithMaxStanzaSize(-1) }, "stream: WithMaxStanzaSize: negative size -1"},
		{"MaxStanzaSize/zero", func() { stream.WithMaxStanzaSize(0) }, ""},
		{"MaxStanzaSize/limit", func() { stream.WithMaxStanzaSize(stream.MaxStanzaSizeLimit) }, ""},
		{"MaxStanzaSize/over the limit", func() { stream.WithMaxStanzaSize(stream.MaxStanzaSizeLimit + 1) },
			"stream: WithMaxStanzaSize: 1073741825 is over MaxStanzaSizeLimit (1073741824)"},
		{"Namespace/bogus", func() { stream.WithNamespace("urn:bogus") }, `stream: WithNamespace: "urn:bogus" is not a stanza namespace`},
		{"Namespace/streams", func() { stream.WithNamespace(stream.NSStream) }, `stream: WithNamespace: "` + stream.NSStream + `" is not a stanza namespace`},
		{"Namespace/empty", func() { stream.WithNamespace("") }, ""},
		{"Namespace/client", func() { stream.WithNamespace(iq.NSClient) }, ""},
		{"Namespace/server", func() { stream.WithNamespace(iq.NSServer) }, ""},
		{"Namespace/component", func() { stream.WithNamespace(iq.NSComponent) }, ""},
		{"Logger/nil", func() { stream.WithLogger(nil) }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.msg == "" {
				assert.NotPanics(t, tc.call)
				return
			}
			assert.PanicsWithValue(t, tc.msg, tc.call)
		})
	}
}

// TestBugUnsupportedStanzaTypMisspelt: the condition was exported as
// UnsupportedStanzaTyp, and stream conditions were untyped strings while
// stanza conditions have iq.Condition. Conditions are now a type of their
// own, which StreamError.Condition has, and the name is spelt out.
func TestBugUnsupportedStanzaTypMisspelt(t *testing.T) {
	var cond stream.Condition = stream.UnsupportedStanzaType
	assert.Equal(t, stream.Condition("unsupported-stanza-type"), cond)
	se := stream.StreamError{Condition: cond}
	assert.IsType(t, stream.Condition(""), se.Condition)
	assert.ErrorIs(t, &se, &stream.StreamError{Condition: stream.UnsupportedStanzaType})
}
