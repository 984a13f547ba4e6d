package iq_test

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/iqtest"
)

// named returns a handler that answers with <name xmlns='urn:example:who'/>.
func named(name string) iq.HandlerFunc {
	return func(context.Context, *iq.IQ) (*iq.Element, error) {
		return iq.NewElement("urn:example:who", name), nil
	}
}

func TestCallee_Unregister(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, c *iq.Callee)
	}{
		{"reports whether a route was removed", func(t *testing.T, c *iq.Callee) {
			c.Get(calleeNS, "a", named("a"))
			assert.False(t, c.Unregister(iq.TypeSet, calleeNS, "a"), "no set handler")
			assert.False(t, c.Unregister(iq.TypeGet, calleeNS, "b"), "no such element")
			assert.False(t, c.Unregister(iq.TypeGet, "u:other", "a"), "no such namespace")
			assert.True(t, c.Unregister(iq.TypeGet, calleeNS, "a"))
			assert.False(t, c.Unregister(iq.TypeGet, calleeNS, "a"), "removed twice")
		}},
		{"the route is answered as if never registered", func(t *testing.T, c *iq.Callee) {
			c.Get(calleeNS, "a", named("a"))
			c.Get(calleeNS, "b", named("b"))
			require.True(t, c.Unregister(iq.TypeGet, calleeNS, "a"))
			calleeAssertErrorReply(t, c.Reply(context.Background(), iqtest.NewRequest(`<iq type='get' id='1'><a xmlns='u:a'/></iq>`)),
				iq.Cancel, iq.FeatureNotImplemented)
			assert.Equal(t, []string{calleeNS}, c.Namespaces(), "b is still there")
			require.True(t, c.Unregister(iq.TypeGet, calleeNS, "b"))
			calleeAssertErrorReply(t, c.Reply(context.Background(), iqtest.NewRequest(`<iq type='get' id='2'><b xmlns='u:a'/></iq>`)),
				iq.Cancel, iq.ServiceUnavailable)
			assert.Empty(t, c.Namespaces(), "the namespace has no handler left")
		}},
		{"replacing is unregister and register", func(t *testing.T, c *iq.Callee) {
			c.Get(calleeNS, "a", named("old"))
			require.True(t, c.Unregister(iq.TypeGet, calleeNS, "a"))
			c.Get(calleeNS, "a", named("new"))
			r := c.Reply(context.Background(), iqtest.NewRequest(`<iq type='get' id='1'><a xmlns='u:a'/></iq>`))
			require.NotNil(t, r.Payload)
			assert.Equal(t, "new", r.Payload.Name.Local)
			assert.Panics(t, func() { c.Get(calleeNS, "a", named("again")) }, "registered twice")
		}},
		{"Use after Unregister wraps only what is registered", func(t *testing.T, c *iq.Callee) {
			c.Get(calleeNS, "a", named("a"))
			require.True(t, c.Unregister(iq.TypeGet, calleeNS, "a"))
			c.Use(iq.Timeout(calleeWaitFor))
			h, serr := c.Handler(iqtest.NewRequest(`<iq type='get' id='1'><a xmlns='u:a'/></iq>`))
			assert.Nil(t, h)
			require.NotNil(t, serr)
			assert.Equal(t, iq.ServiceUnavailable, serr.Condition)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.run(t, iq.NewCallee(iqtest.NewRecorder(), iq.WithUnknownNamespaceCondition(iq.ServiceUnavailable)))
		})
	}
}

// TestCallee_ReplaceWhileServing replaces a route while its old handler
// is blocked in the middle of a request, and while more requests wait in
// its ordered queue: those routed before the change finish with the old
// handler, those routed after run the new one.
func TestCallee_ReplaceWhileServing(t *testing.T) {
	defer goleak.VerifyNone(t)
	for _, tc := range []struct {
		name    string
		opts    []iq.Middleware
		waiting int // requests queued behind the blocked one
	}{
		{"unordered", nil, 0},
		{"ordered, with requests waiting", []iq.Middleware{iq.OrderedBySender()}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := newReplyCounter(2 + tc.waiting)
			c := iq.NewCallee(rc)
			defer c.Close()
			gate := make(chan struct{})
			started := make(chan struct{})
			c.Set(orderNS, "push", func(_ context.Context, req *iq.IQ) (*iq.Element, error) {
				if pushNumber(req) == 0 {
					close(started)
					<-gate
				}
				return iq.NewElement("urn:example:who", "old"), nil
			}, tc.opts...)
			for i := range 1 + tc.waiting {
				c.Receive(context.Background(), orderReq("a@example.com", strconv.Itoa(i), i))
			}
			calleeWaitClosed(t, started, "the old handler")
			require.True(t, c.Unregister(iq.TypeSet, orderNS, "push"))
			c.Set(orderNS, "push", named("new"), tc.opts...)
			// From another sender, so as not to wait behind the blocked one.
			c.Receive(context.Background(), orderReq("b@example.com", "after", 0))
			require.Eventually(t, func() bool { return rc.reply("after") != nil }, calleeWaitFor, time.Millisecond)
			calleeAssertResult(t, rc.reply("after"), rc.reply("after").Payload)
			assert.Equal(t, "new", rc.reply("after").Payload.Name.Local)
			close(gate)
			rc.wait(t)
			require.NoError(t, c.Drain(context.Background()))
			for i := range 1 + tc.waiting {
				r := rc.reply(strconv.Itoa(i))
				require.NotNil(t, r.Payload, "request %d", i)
				assert.Equal(t, "old", r.Payload.Name.Local, "request %d, routed before the change", i)
			}
		})
	}
}

// TestCallee_UnregisterConcurrent registers and removes routes while
// requests are served, for the race detector: every request gets one
// reply, from a handler or for a missing route.
func TestCallee_UnregisterConcurrent(t *testing.T) {
	defer goleak.VerifyNone(t)
	const n = 2000
	rc := newReplyCounter(n)
	c := iq.NewCallee(rc, iq.WithMaxInFlight(n))
	defer c.Close()
	c.Set(orderNS, "push", named("h"), iq.OrderedBySender())
	stop := make(chan struct{})
	flipped := make(chan struct{})
	go func() {
		defer close(flipped)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if c.Unregister(iq.TypeSet, orderNS, "push") {
				c.Set(orderNS, "push", named("h"), iq.OrderedBySender())
			}
			_ = slices.Contains(c.Namespaces(), orderNS)
		}
	}()
	for i := range n {
		c.Receive(context.Background(), orderReq("a@example.com", strconv.Itoa(i), i))
	}
	rc.wait(t)
	close(stop)
	<-flipped
	require.NoError(t, c.Drain(context.Background()))
	rc.mu.Lock()
	defer rc.mu.Unlock()
	// A queue past its bound answers resource-constraint.
	assert.Equal(t, n, rc.results+rc.conds[iq.ServiceUnavailable]+rc.conds[iq.FeatureNotImplemented]+rc.conds[iq.ResourceConstraint])
	assert.Positive(t, rc.results)
}
