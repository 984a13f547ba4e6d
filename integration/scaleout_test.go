package integration_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/component"
	"github.com/xmpp-iq/iq/internal/servertest"
)

// scaleNode is one process of a scaled-out component, as
// docs/components-at-scale.md describes it: a public Pool serving the
// shared domain and a private Pool on the process's own domain, whose
// Endpoint makes the process's calls so that their replies, addressed to
// that domain, come back to this process and no other.
type scaleNode struct {
	index           int
	domain          string
	public, private *component.Pool
	publicEP, ep    *iq.Endpoint
	mu              sync.Mutex
	counts          map[string]int
}

func startScaleNode(t *testing.T, index int, node servertest.Component) *scaleNode {
	n := &scaleNode{index: index, domain: node.Domain, counts: map[string]int{}}
	backoff := component.WithBackoff(50*time.Millisecond, 500*time.Millisecond)
	n.public = component.NewPool(2, "tcp", env.CompAddr, env.Comp, env.CompSecret, backoff)
	n.private = component.NewPool(1, "tcp", env.CompAddr, node.Domain, node.Secret, backoff)
	n.publicEP = iq.NewEndpoint(n.public, iq.WithLocalJID(env.Comp), iq.WithTimeout(time.Minute))
	n.ep = iq.NewEndpoint(n.private, iq.WithLocalJID(node.Domain), iq.WithTimeout(time.Minute))
	for name, ep := range map[string]*iq.Endpoint{"public": n.publicEP, "private": n.ep} {
		ep.Callee.Get(nsEcho, "echo", func(ctx context.Context, req *iq.IQ) (*iq.Element, error) {
			n.mu.Lock()
			n.counts[name]++
			n.mu.Unlock()
			return iq.NewElement(nsEcho, "echo").
				SetAttr("node", strconv.Itoa(index)).AppendText(req.Payload.Text()), nil
		})
	}
	for _, p := range []struct {
		pool *component.Pool
		ep   *iq.Endpoint
	}{{n.public, n.publicEP}, {n.private, n.ep}} {
		done := make(chan error, 1)
		go func() { done <- p.pool.Run(context.Background(), p.ep, nil) }()
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			assert.NoError(t, p.pool.Shutdown(ctx), "Shutdown")
			assert.NoError(t, <-done, "Run")
		})
	}
	return n
}

func (n *scaleNode) count(name string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.counts[name]
}

// TestComponentScaleOutNodeDomains runs three nodes of one component, each
// with two connections for the public domain and one for its own node
// domain (three independent Pools in this test process, each with its own
// TCP connections, as three processes would hold them). On ejabberd, which
// spreads each stanza for the public domain over all six public
// connections, a client's calls to the public domain are all answered, by
// all three nodes; each node's calls to a peer's node domain get every
// reply back, since they are addressed to the caller's own node domain.
// Prosody lets one connection in per domain: one node serves the public
// domain (the others retry on conflict), and the node domains work the
// same.
func TestComponentScaleOutNodeDomains(t *testing.T) {
	needServer(t)
	require.Len(t, env.Nodes, 3, "IQ_XMPP_NODE_COMPONENTS: the scripts' env files list three node domains")
	nodes := make([]*scaleNode, 3)
	for i := range nodes {
		nodes[i] = startScaleNode(t, i, env.Nodes[i])
	}
	// Every node's own domain up, and the public domain served.
	require.Eventually(t, func() bool {
		for _, n := range nodes {
			if n.private.Conns()[0] == nil {
				return false
			}
		}
		return true
	}, 20*time.Second, 20*time.Millisecond, "node domains up")
	require.Eventually(t, func() bool {
		live := 0
		for _, n := range nodes {
			for _, c := range n.public.Conns() {
				if c != nil {
					live++
				}
			}
		}
		return live == per(1, 6)
	}, 20*time.Second, 20*time.Millisecond, "public connections up")
	alice := servertest.StartPeer(t, env, "alice")

	t.Run("calls to the public domain, spread over the nodes", func(t *testing.T) {
		const calls = 300
		byNode := map[string]int{}
		for i := range calls {
			want := fmt.Sprintf("public %d", i)
			r := alice.Call("get", env.Comp, `<echo xmlns='urn:example:echo'>`+want+`</echo>`, 10*time.Second)
			require.Equal(t, "result", r.Type, "call %d: %+v", i, r)
			require.Contains(t, r.Payload, want)
			byNode[nodeOf(r.Payload)]++
		}
		t.Logf("public calls answered by node: %v", byNode)
		total := 0
		for _, n := range nodes {
			total += n.count("public")
		}
		assert.Equal(t, calls, total, "calls served")
		assert.Len(t, byNode, per(1, 3), "nodes that answered")
		for k, c := range byNode {
			assert.Greater(t, c, per(0, calls/10), "node %s's share", k)
		}
	})

	t.Run("each node calls a peer's node domain, 0 lost", func(t *testing.T) {
		const calls = 300 // per node
		var wg sync.WaitGroup
		lost := make([]int, 3)
		for i, n := range nodes {
			peer := nodes[(i+1)%3]
			errc := make(chan error, calls)
			// 32 under way at a time: ejabberd answers a burst of
			// hundreds on one connection with wait/resource-constraint
			// (flow control, not a lost reply).
			slots := make(chan struct{}, 32)
			for c := range calls {
				wg.Add(1)
				go func() {
					defer wg.Done()
					slots <- struct{}{}
					defer func() { <-slots }()
					want := fmt.Sprintf("node %d call %d", i, c)
					res, err := n.ep.Caller.Get(servertest.Ctx(t, 20*time.Second), peer.domain, iq.NewElement(nsEcho, "echo").AppendText(want))
					if err == nil && (res == nil || res.Text() != want || res.AttrValue("node") != strconv.Itoa(peer.index)) {
						err = fmt.Errorf("node %d call %d: got %v", i, c, res)
					}
					errc <- err
				}()
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range calls {
					if err := <-errc; err != nil {
						lost[i]++
						t.Log(err)
					}
				}
			}()
		}
		wg.Wait()
		assert.Equal(t, []int{0, 0, 0}, lost, "calls without their reply, by node")
		for i, n := range nodes {
			assert.Equal(t, 0, n.ep.Caller.Pending(), "node %d pending", i)
			assert.Equal(t, calls, n.count("private"), "node %d served its peer's calls", i)
		}
	})
}

// nodeOf returns the node attribute of a serialized echo reply.
func nodeOf(payload string) string {
	for _, q := range []string{"'", `"`} {
		if _, rest, ok := strings.Cut(payload, "node="+q); ok {
			v, _, _ := strings.Cut(rest, q)
			return v
		}
	}
	return "?"
}

// TestBugScaleOutRepliesLandInAnotherProcess is why a node domain is
// needed: three independent Pools (as three processes hold them) on the
// public domain alone, and one of them calls a client from it. ejabberd
// hands each reply to any of the six connections, so most replies reach
// another Pool, which drops them as unknown, and the calls time out.
// Prosody lets one Pool in, so nothing is lost there, and nothing scales.
func TestBugScaleOutRepliesLandInAnotherProcess(t *testing.T) {
	needServer(t)
	eps := make([]*iq.Endpoint, 3)
	pools := make([]*component.Pool, 3)
	for i := range pools {
		pools[i] = component.NewPool(2, "tcp", env.CompAddr, env.Comp, env.CompSecret,
			component.WithBackoff(50*time.Millisecond, 500*time.Millisecond))
		eps[i] = iq.NewEndpoint(pools[i], iq.WithLocalJID(env.Comp))
		done := make(chan error, 1)
		go func() { done <- pools[i].Run(context.Background(), eps[i], nil) }()
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			assert.NoError(t, pools[i].Shutdown(ctx), "Shutdown")
			assert.NoError(t, <-done, "Run")
		})
		// The first Pool first, so that on Prosody it is the one let in.
		require.Eventually(t, func() bool { return pools[i].Conns()[0] != nil || (i > 0 && env.Server == servertest.Prosody) },
			20*time.Second, 20*time.Millisecond, "pool %d up", i)
	}
	if env.Server == servertest.Ejabberd {
		require.Eventually(t, func() bool {
			live := 0
			for _, p := range pools {
				for _, c := range p.Conns() {
					if c != nil {
						live++
					}
				}
			}
			return live == 6
		}, 20*time.Second, 20*time.Millisecond, "six public connections up")
	}
	bob := servertest.StartPeer(t, env, "bob")

	const calls = 30
	errc := make(chan error, calls)
	for i := range calls {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_, err := eps[0].Caller.Get(ctx, bob.JID, iq.NewElement(nsPeer, "echo").AppendText(fmt.Sprint(i)))
			errc <- err
		}()
	}
	lost := 0
	for range calls {
		if err := <-errc; err != nil {
			require.ErrorIs(t, err, context.DeadlineExceeded)
			lost++
		}
	}
	t.Logf("%d of %d replies lost to other pools", lost, calls)
	if env.Server == servertest.Ejabberd {
		assert.Greater(t, lost, calls/6, "replies that went to another process (two thirds on average)")
	} else {
		assert.Zero(t, lost, "one Pool holds the domain on Prosody")
	}
}
