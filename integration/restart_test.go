package integration_test

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/component"
	"github.com/xmpp-iq/iq/internal/servertest"
)

// supervised runs a Supervisor for domain with ep's handlers set up by
// setup, and returns its Endpoint and its events.
func supervised(t *testing.T, addr, domain, secret string, setup func(*iq.Endpoint)) (*iq.Endpoint, chan component.Event) {
	t.Helper()
	events := make(chan component.Event, 256)
	sup := component.NewSupervisor("tcp", addr, domain, secret,
		component.WithBackoff(50*time.Millisecond, 500*time.Millisecond),
		component.WithNotify(func(e component.Event) {
			select {
			case events <- e:
			default:
			}
		}))
	ep := iq.NewEndpoint(sup, iq.WithLocalJID(domain), iq.WithTimeout(time.Minute))
	if setup != nil {
		setup(ep)
	}
	done := make(chan error, 1)
	go func() { done <- sup.Run(context.Background(), ep, nil) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		assert.NoError(t, sup.Shutdown(ctx), "%s: Shutdown", domain)
		assert.NoError(t, <-done, "%s: Run", domain)
	})
	return ep, events
}

// waitState waits for the next event of state want, skipping others.
func waitState(t *testing.T, events chan component.Event, want component.State, within time.Duration) component.Event {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case e := <-events:
			if e.State == want {
				return e
			}
			if e.State == component.Stopped {
				t.Fatalf("supervisor stopped: %v", e.Err)
			}
		case <-deadline:
			t.Fatalf("not %v within %v", want, within)
		}
	}
}

// TestServerRestartUnderSupervisedComponents restarts the server under two
// supervised components, one calling the other with requests in flight:
// the requests fail at once with ErrConnectionLost, both components
// reconnect by themselves within the backoff, and the handlers registered
// once answer the next call.
func TestServerRestartUnderSupervisedComponents(t *testing.T) {
	needServer(t)
	for _, tc := range []struct {
		name string
		sig  syscall.Signal
	}{
		{"graceful stop", syscall.SIGTERM},
		{"crash", syscall.SIGKILL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := servertest.PrivateServer(t, env.Server, "restart", "IQ_RESTART")
			addr := srv.Vars["IQ_XMPP_COMPONENT_ADDR"]
			callee, caller := srv.Vars["IQ_XMPP_COMPONENT"], srv.Vars["IQ_XMPP_COMPONENT2"]

			release := make(chan struct{})
			handlers := 0
			_, calleeEvents := supervised(t, addr, callee, srv.Vars["IQ_XMPP_COMPONENT_SECRET"], func(ep *iq.Endpoint) {
				handlers++
				echoHandlers(ep)
				ep.Callee.Get(nsEcho, "block", func(ctx context.Context, req *iq.IQ) (*iq.Element, error) {
					select {
					case <-release:
					case <-ctx.Done():
					}
					return nil, nil
				})
			})
			defer close(release) // before the Shutdowns, which wait for handlers
			ep, callerEvents := supervised(t, addr, caller, srv.Vars["IQ_XMPP_COMPONENT2_SECRET"], nil)
			waitState(t, calleeEvents, component.Connected, 10*time.Second)
			waitState(t, callerEvents, component.Connected, 10*time.Second)
			echo := func() error {
				res, err := ep.Caller.Get(servertest.Ctx(t, 10*time.Second), callee, iq.NewElement(nsEcho, "echo").AppendText("again"))
				if err == nil && res.Text() != "again" {
					err = errors.New("echo answered " + res.Text())
				}
				return err
			}
			require.NoError(t, echo(), "before the restart")

			const n = 20
			type ended struct {
				err error
				at  time.Time
			}
			errs := make(chan ended, n)
			for i := 0; i < n; i++ {
				go func() {
					_, err := ep.Caller.Get(context.Background(), callee, iq.NewElement(nsEcho, "block"))
					errs <- ended{err, time.Now()}
				}()
			}
			require.Eventually(t, func() bool { return ep.Caller.Pending() == n }, 5*time.Second, 10*time.Millisecond)

			// Prosody takes about 1.5 s to stop on SIGTERM, ending its
			// streams first, ejabberd several: the requests fail when their
			// stream ends, at the latest as the server exits, far from
			// their one-minute timeout.
			stopped := time.Now()
			exited := srv.Signal(t, tc.sig)
			var last time.Time
			for i := 0; i < n; i++ {
				select {
				case e := <-errs:
					assert.ErrorIs(t, e.err, iq.ErrConnectionLost)
					assert.ErrorIs(t, e.err, iq.ErrClosed)
					if e.at.After(last) {
						last = e.at
					}
				case <-time.After(time.Until(exited.Add(time.Second))):
					t.Fatalf("only %d of %d requests failed within 1 s of the server's exit after %v", i, n, tc.sig)
				}
			}
			t.Logf("%d pending requests failed with ErrConnectionLost, the last %v after the %v (the server exited after %v)",
				n, last.Sub(stopped), tc.sig, exited.Sub(stopped))
			waitState(t, callerEvents, component.Disconnected, 5*time.Second)

			srv.Start(t)
			up := time.Now()
			// The waits are capped at 500 ms: each component is back within
			// a few of them.
			waitState(t, calleeEvents, component.Connected, 5*time.Second)
			waitState(t, callerEvents, component.Connected, 5*time.Second)
			t.Logf("both components reconnected %v after the server was up", time.Since(up))

			assert.NoError(t, echo(), "after the restart")
			assert.Equal(t, 1, handlers, "handlers registered once")
			assert.Equal(t, 0, ep.Caller.Pending())
		})
	}
}
