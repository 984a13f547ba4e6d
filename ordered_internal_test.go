package iq

import (
	"context"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestOrderedIdleSenderCostsNothing checks that a sender's queue leaves
// no entry behind once its requests are answered, and that a queue kept
// busy for long reuses its space rather than grow past its bound.
func TestOrderedIdleSenderCostsNothing(t *testing.T) {
	const senders, each, maxQueued = 8, 300, 16
	var mu sync.Mutex
	replies := 0
	done := make(chan struct{})
	c := NewCallee(SenderFunc(func(_ context.Context, out *IQ) error {
		mu.Lock()
		defer mu.Unlock()
		if replies++; replies == senders*each {
			close(done)
		}
		return nil
	}), WithMaxInFlight(senders*(maxQueued+1)))
	defer c.Close()
	var maxCap int
	var ord *orderer
	c.Set("urn:example:order", "push", func(context.Context, *IQ) (*Element, error) {
		ord.mu.Lock()
		for _, q := range ord.queues {
			maxCap = max(maxCap, cap(q.waiting))
		}
		ord.mu.Unlock()
		return nil, nil
	}, OrderedBySender(), MaxQueued(maxQueued))
	ord = c.chains[route{TypeSet, "urn:example:order", "push"}].ord
	require.NotNil(t, ord)
	var wg sync.WaitGroup
	for s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			from := "s" + strconv.Itoa(s) + "@example.com"
			for i := range each {
				// Keep the queue from emptying, never past its bound.
				for {
					ord.mu.Lock()
					q := ord.queues[keyOf(from)]
					n := 0
					if q != nil {
						n = len(q.waiting) - q.head
					}
					ord.mu.Unlock()
					if n < maxQueued {
						break
					}
					runtime.Gosched()
				}
				c.Receive(context.Background(), &IQ{ID: strconv.Itoa(i), From: from, Type: TypeSet,
					Payload: NewElement("urn:example:order", "push")})
			}
		}()
	}
	wg.Wait()
	<-done
	require.NoError(t, c.Drain(context.Background()))
	// A queue's worker drops its entry when it finds the queue empty,
	// just after its last reply gave back its slot, which Drain waits
	// for: the entry may still be there for a moment when Drain returns.
	assert.Eventually(t, func() bool {
		ord.mu.Lock()
		defer ord.mu.Unlock()
		return len(ord.queues) == 0 && ord.route == nil
	}, 5*time.Second, time.Millisecond, "idle senders left queues behind")
	ord.mu.Lock()
	defer ord.mu.Unlock()
	assert.LessOrEqual(t, maxCap, 2*maxQueued, "a busy queue grew past twice its bound")
}
