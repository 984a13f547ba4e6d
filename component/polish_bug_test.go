package component_test

import (
	"context"
	"io"
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/xmpp-iq/iq/component"
	"github.com/xmpp-iq/iq/stream"
)

// TestBugHandshakeErrorTextRepeats: a refusal read "component: handshake
// refused: wrong secret (not-authorized): echo.example: stream error:
// not-authorized", the condition said twice and the domain in the middle.
// Each refusal and failure now names the domain and the stream error
// once, and still matches its sentinel and the *stream.StreamError.
func TestBugHandshakeErrorTextRepeats(t *testing.T) {
	const domain = "echo.example"
	for _, tc := range []struct {
		name   string
		id     string
		secret string
		answer func(io.Writer, bool)
		text   string
		is     []error
	}{
		{"NotAuthorized", "id1", "wrong", honest,
			"component: handshake as echo.example refused: wrong secret: stream: error not-authorized: bad secret",
			[]error{component.ErrNotAuthorized, &stream.StreamError{Condition: stream.NotAuthorized}}},
		{"Conflict", "id2", "s3cret", writeStr(streamErrorXML(stream.Conflict, "")),
			"component: handshake as echo.example refused: already connected: stream: error conflict",
			[]error{component.ErrConflict, &stream.StreamError{Condition: stream.Conflict}}},
		{"HostUnknown", "", "s3cret", writeStr(streamErrorXML(stream.HostUnknown, "")),
			"component: handshake as echo.example refused: unknown domain: stream: error host-unknown",
			[]error{component.ErrHostUnknown, &stream.StreamError{Condition: stream.HostUnknown}}},
		{"OtherStreamError", "id3", "s3cret", writeStr(streamErrorXML(stream.SystemShutdown, "bye")),
			"component: handshake as echo.example failed: stream: error system-shutdown: bye",
			[]error{component.ErrHandshake, &stream.StreamError{Condition: stream.SystemShutdown}}},
		{"UnexpectedElement", "id4", "s3cret", writeStr(`<message/>`),
			`component: handshake as echo.example failed: server sent <message xmlns="jabber:component:accept">, want <handshake/>`,
			[]error{component.ErrHandshake}},
		{"StreamClosedInstead", "id5", "s3cret", writeStr(`</stream:stream>`),
			"component: handshake as echo.example failed: EOF",
			[]error{component.ErrHandshake, io.EOF}},
		{"NotWellFormed", "id6", "s3cret", writeStr(`<handshake></x>`),
			"component: handshake as echo.example failed: stream: XML not well-formed: line 1: element <handshake> closed by </x>",
			[]error{component.ErrHandshake, stream.ErrNotWellFormed}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer goleak.VerifyNone(t)
			p1, p2 := net.Pipe()
			defer p1.Close()
			defer p2.Close()
			srv := newFakeServer(tc.id, domain, "s3cret", tc.answer)
			srvErr := make(chan error, 1)
			go func() { srvErr <- srv.serve(p2) }()
			ctx, cancel := context.WithTimeout(context.Background(), waitLong)
			defer cancel()
			conn, err := component.Connect(ctx, p1, domain, tc.secret)
			require.NoError(t, recv(t, srvErr))
			require.Error(t, err)
			assert.Nil(t, conn)
			assert.Equal(t, tc.text, err.Error())
			for _, want := range tc.is {
				assert.ErrorIs(t, err, want)
			}
		})
	}
}
