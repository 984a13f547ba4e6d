package iqotel_test

import (
	"io"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestExampleStdout runs Example_stdout, whose output go test cannot
// compare, and checks it wrote its spans and metrics.
func TestExampleStdout(t *testing.T) {
	r, w, err := os.Pipe()
	require.NoError(t, err)
	stdout := os.Stdout
	os.Stdout = w
	out := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(r)
		out <- b
	}()
	func() {
		defer func() { os.Stdout = stdout }()
		Example_stdout()
	}()
	w.Close()
	got := string(<-out)
	assert.Contains(t, got, "pong")
	assert.Contains(t, got, `"Name":"get {urn:xmpp:ping}ping"`)
	assert.Contains(t, got, `"SpanKind":2`) // server
	assert.Contains(t, got, `"SpanKind":3`) // client
	assert.Contains(t, got, "rpc.client.call.duration")
	assert.Contains(t, got, "rpc.server.call.duration")
}
