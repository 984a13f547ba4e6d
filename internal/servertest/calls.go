package servertest

import (
	"errors"
	"testing"
	"time"

	"github.com/xmpp-iq/iq"
)

// CallPeer runs, as three subtests, the gets an adapter's Caller makes to
// the slixmpp peer at peerJID (scripts/slixpeer.py, which answers echo in
// nsPeer): a result, a stanza error as *iq.StanzaError, and a timeout as
// iq.ErrTimeout that leaves nothing pending. onTimeout, when not nil, makes
// an adapter's own further checks on the timeout's error.
func CallPeer(t *testing.T, caller *iq.Caller, peerJID, nsPeer string, onTimeout func(t *testing.T, err error)) {
	t.Helper()
	t.Run("result", func(t *testing.T) {
		res, err := caller.Get(Ctx(t, 10*time.Second), peerJID, iq.NewElement(nsPeer, "echo").AppendText("ping <3"))
		if err != nil {
			t.Fatalf("echo: %v", err)
		}
		if res == nil {
			t.Fatal("echo: no payload in the result")
		}
		if res.Name.Space != nsPeer {
			t.Errorf("result's namespace %q, want %q", res.Name.Space, nsPeer)
		}
		if got := res.Text(); got != "ping <3" {
			t.Errorf("result's text %q, want %q", got, "ping <3")
		}
	})
	t.Run("stanza error", func(t *testing.T) {
		_, err := caller.Get(Ctx(t, 10*time.Second), peerJID, iq.NewElement("urn:example:unknown", "q"))
		var se *iq.StanzaError
		if !errors.As(err, &se) {
			t.Fatalf("error %v, want an *iq.StanzaError", err)
		}
		if se.Type != iq.Cancel {
			t.Errorf("error type %v, want %v", se.Type, iq.Cancel)
		}
		if se.Condition != iq.FeatureNotImplemented {
			t.Errorf("condition %v, want %v", se.Condition, iq.FeatureNotImplemented)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		start := time.Now()
		_, err := caller.Get(Ctx(t, 700*time.Millisecond), peerJID, iq.NewElement("urn:example:silent", "hang"))
		if !errors.Is(err, iq.ErrTimeout) {
			t.Errorf("error %v, want iq.ErrTimeout", err)
		}
		if onTimeout != nil {
			onTimeout(t, err)
		}
		if d := time.Since(start); d >= 3*time.Second {
			t.Errorf("the timeout took %v, want under 3s", d)
		}
		if n := caller.Pending(); n != 0 {
			t.Errorf("%d requests pending after the timeout, want 0", n)
		}
	})
}
