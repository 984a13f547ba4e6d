package servertest

import (
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/xmpp-iq/iq"
)

// KillWithPending sends n requests with send, each reporting on the
// channel it is given (buffered for n), waits until caller has all n
// pending, kills srv with SIGKILL, and checks that every request then
// fails with iq.ErrClosed within a second of the kill. What the client
// must report about the dead stream differs between adapters, so the test
// checks that itself.
func KillWithPending(t *testing.T, srv *Server, caller *iq.Caller, n int, send func(done chan *iq.Call)) {
	t.Helper()
	done := make(chan *iq.Call, n)
	for range n {
		send(done)
	}
	for deadline := time.Now().Add(5 * time.Second); caller.Pending() != n; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d requests pending after 5s", caller.Pending(), n)
		}
	}

	pid := srv.PID(t)
	killed := time.Now()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill %d: %v", pid, err)
	}

	for i := range n {
		select {
		case call := <-done:
			if !errors.Is(call.Err, iq.ErrClosed) {
				t.Errorf("request %d ended with %v, want iq.ErrClosed", i, call.Err)
			}
		case <-time.After(time.Until(killed.Add(time.Second))):
			t.Fatalf("only %d of %d requests ended within a second of the kill", i, n)
		}
	}
	t.Logf("all %d pending requests failed with ErrClosed %v after the kill", n, time.Since(killed))
}
