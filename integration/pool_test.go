package integration_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/component"
	"github.com/xmpp-iq/iq/internal/servertest"
	"github.com/xmpp-iq/iq/stream"
)

// TestComponentPool runs a Pool of two connections for one component.
// ejabberd lets both in and routes each stanza, replies to our own
// requests included, to either at random: all 200 of the pool's calls to
// the server and to a client get their replies, wherever they land, and
// a client's 200 calls to the component are all answered, by both
// connections. Prosody refuses the second connection with conflict: the
// pool says so (Degraded) and serves the same calls on the first alone.
func TestComponentPool(t *testing.T) {
	needServer(t)
	events := make(chan component.Event, 256)
	pool := component.NewPool(2, "tcp", env.CompAddr, env.Comp, env.CompSecret,
		component.WithBackoff(50*time.Millisecond, 500*time.Millisecond),
		component.WithNotify(func(e component.Event) {
			select {
			case events <- e:
			default:
			}
		}))
	ep := iq.NewEndpoint(pool, iq.WithLocalJID(env.Comp), iq.WithTimeout(time.Minute))
	var mu sync.Mutex
	servedBy := map[*stream.Conn]int{}
	ep.Callee.Get(nsEcho, "echo", func(ctx context.Context, req *iq.IQ) (*iq.Element, error) {
		conn, ok := component.ServedOn(ctx)
		if !ok {
			return nil, iq.NewError(iq.Cancel, iq.InternalServerError, "no ServedOn")
		}
		mu.Lock()
		servedBy[conn]++
		mu.Unlock()
		return iq.NewElement(nsEcho, "echo").AppendText(req.Payload.Text()), nil
	})
	done := make(chan error, 1)
	go func() { done <- pool.Run(context.Background(), ep, nil) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		assert.NoError(t, pool.Shutdown(ctx), "Shutdown")
		assert.NoError(t, <-done, "Run")
	})

	// Both connections up on ejabberd; on Prosody the first, and the
	// second given up.
	up := map[int]bool{}
	var degraded []component.Event
	deadline := time.After(20 * time.Second)
	for !(up[0] && (up[1] || len(degraded) == 1)) {
		select {
		case e := <-events:
			switch e.State {
			case component.Connected:
				up[e.Index] = true
			case component.Degraded:
				degraded = append(degraded, e)
			case component.Stopped:
				t.Fatalf("connection %d stopped: %v", e.Index, e.Err)
			}
		case <-deadline:
			t.Fatalf("pool not up: connected %v, degraded %v", up, degraded)
		}
	}
	if env.Server == servertest.Ejabberd {
		require.Empty(t, degraded, "ejabberd accepts several connections for one component")
		live := 0
		for _, c := range pool.Conns() {
			if c != nil {
				live++
			}
		}
		assert.Equal(t, 2, live)
	} else {
		require.Len(t, degraded, 1, "Prosody refuses the second connection")
		assert.Equal(t, 1, degraded[0].Index)
		assert.ErrorIs(t, degraded[0].Err, component.ErrConflict)
		assert.Nil(t, pool.Conns()[1])
	}
	bob := servertest.StartPeer(t, env, "bob")
	alice := servertest.StartPeer(t, env, "alice")

	t.Run("200 calls out, 0 lost", func(t *testing.T) {
		const n = 200
		errc := make(chan error, n)
		for i := range n {
			go func() {
				var err error
				if i%2 == 0 {
					_, err = ep.Caller.Get(servertest.Ctx(t, 20*time.Second), env.Domain, iq.NewElement("urn:xmpp:ping", "ping"))
				} else {
					want := fmt.Sprintf("call %d", i)
					var res *iq.Element
					res, err = ep.Caller.Get(servertest.Ctx(t, 20*time.Second), bob.JID, iq.NewElement(nsPeer, "echo").AppendText(want))
					if err == nil && (res == nil || res.Text() != want) {
						err = fmt.Errorf("call %d: got %v", i, res)
					}
				}
				errc <- err
			}()
		}
		lost := 0
		for range n {
			if err := <-errc; err != nil {
				lost++
				t.Log(err)
			}
		}
		assert.Zero(t, lost, "calls without their reply")
		assert.Equal(t, 0, ep.Caller.Pending())
	})

	t.Run("200 calls in, all answered", func(t *testing.T) {
		const n = 200
		for i := range n {
			want := fmt.Sprintf("in %d", i)
			r := alice.Call("get", env.Comp, `<echo xmlns='urn:example:echo'>`+want+`</echo>`, 10*time.Second)
			require.Equal(t, "result", r.Type, "call %d: %+v", i, r)
			require.Contains(t, r.Payload, want)
		}
		mu.Lock()
		defer mu.Unlock()
		total := 0
		for _, k := range servedBy {
			total += k
		}
		assert.Equal(t, n, total)
		t.Logf("served by connection: %v", servedBy)
		assert.Len(t, servedBy, per(1, 2), "connections that served calls")
		for _, k := range servedBy {
			assert.Greater(t, k, per(0, 20), "a connection's share")
		}
	})
}
