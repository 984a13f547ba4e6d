package iq_test

import (
	"context"
	"flag"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/xmpp-iq/iq"
)

var hardFloodN = flag.Int("flood.n", 10_000, "stanzas the TestHardeningFlood* tests send (CI: 100000)")

// hardFloodSink counts the replies a Callee sends, per request index (ids
// are "f<index>"), without keeping them.
// Not iqtest.Recorder: it keeps every IQ, and these tests measure the heap under a flood of 100 000.
type hardFloodSink struct {
	perID      []atomic.Int32
	results    atomic.Int64
	constraint atomic.Int64 // wait/resource-constraint
	other      atomic.Int64
	calls      atomic.Int64
}

func (s *hardFloodSink) SendIQ(_ context.Context, q *iq.IQ) error {
	s.calls.Add(1)
	if i, err := strconv.Atoi(q.ID[1:]); err == nil && i >= 0 && i < len(s.perID) {
		s.perID[i].Add(1)
	}
	switch {
	case q.Type == iq.TypeResult:
		s.results.Add(1)
	case q.Type == iq.TypeError && q.Error != nil && q.Error.Type == iq.Wait && q.Error.Condition == iq.ResourceConstraint:
		s.constraint.Add(1)
	default:
		s.other.Add(1)
	}
	return nil
}

// TestHardeningFloodBlockingHandler floods a Callee with gets at a handler
// that blocks: no more than the in-flight cap (the default, 256) run, every
// other request is answered wait/resource-constraint before Receive
// returns, and once the handlers are released all drain.
func TestHardeningFloodBlockingHandler(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	n := *hardFloodN
	const limit = iq.DefaultMaxInFlight
	cases := []struct {
		name      string
		receivers int
	}{
		{"one reading goroutine", 1},
		{"eight concurrent receivers", 8},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			heapStart := hardHeap()
			sink := &hardFloodSink{perID: make([]atomic.Int32, n)}
			ep := iq.NewEndpoint(sink) // default limits
			defer ep.Close()

			var running, peakRunning atomic.Int64
			release := make(chan struct{})
			ep.Callee.Get(hardeningNS, "q", func(ctx context.Context, req *iq.IQ) (*iq.Element, error) {
				r := running.Add(1)
				for {
					p := peakRunning.Load()
					if r <= p || peakRunning.CompareAndSwap(p, r) {
						break
					}
				}
				<-release
				running.Add(-1)
				return iq.NewElement(hardeningNS, "ok"), nil
			})
			sampler := startHardSampler(ep.Callee.InFlight)

			ctx := context.Background()
			var wg sync.WaitGroup
			for r := range tc.receivers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := r; i < n; i += tc.receivers {
						ep.Receive(ctx, &iq.IQ{Type: iq.TypeGet, ID: "f" + strconv.Itoa(i), From: "flood@example.com/x",
							Payload: iq.NewElement(hardeningNS, "q")})
					}
				}()
			}
			wg.Wait()
			// Everything over the cap was answered before Receive returned.
			assert.Equal(t, int64(n-limit), sink.constraint.Load(), "wait/resource-constraint replies")
			assert.Zero(t, sink.results.Load())
			assert.Zero(t, sink.other.Load())
			assert.Equal(t, limit, ep.Callee.InFlight())
			require.Eventually(t, func() bool { return running.Load() == limit }, hardWait, hardTick)
			sampler.Stop()

			close(release)
			require.Eventually(t, func() bool { return ep.Callee.InFlight() == 0 }, hardWait, hardTick)
			assert.Equal(t, int64(limit), peakRunning.Load(), "handlers running at once")
			assert.Equal(t, int64(limit), sink.results.Load())
			assert.Equal(t, int64(n), sink.calls.Load())
			for i := range sink.perID {
				if c := sink.perID[i].Load(); c != 1 {
					t.Fatalf("request f%d got %d replies", i, c)
				}
			}
			heapEnd := hardHeap()
			t.Logf("flood (%s): %d gets at a blocking handler; ran at once: %d (cap %d); answered resource-constraint at once: %d; results after release: %d; peak InFlight() seen %d; heap start %.1f MiB, peak %.1f MiB, end %.1f MiB",
				tc.name, n, peakRunning.Load(), limit, sink.constraint.Load(), sink.results.Load(), sampler.peakPending.Load(),
				hardMiB(heapStart), hardMiB(sampler.peakHeap.Load()), hardMiB(heapEnd))
			// InFlight counts a refused request for an instant (add, then
			// take back), so it may read up to one over per receiver.
			assert.LessOrEqual(t, sampler.peakPending.Load(), int64(limit+tc.receivers))
			// Bounded: the flood's garbage aside, what is live is the cap's
			// worth of handlers and the sink's counters (4 bytes a request).
			assert.Less(t, sampler.peakHeap.Load(), heapStart+64<<20, "peak heap")
			assert.Less(t, heapEnd, heapStart+uint64(4*n)+4<<20, "heap after")
		})
	}
}

// TestHardeningFloodUnknownResponses floods an Endpoint with results and
// errors nobody asked for (unknown ids, and known ids from the wrong
// sender): nothing is sent, nothing is kept, the requests really pending
// are untouched.
func TestHardeningFloodUnknownResponses(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	n := *hardFloodN
	sink := &hardFloodSink{}
	ep := iq.NewEndpoint(sink, iq.WithLocalJID("me@example.com/res"))
	defer ep.Close()

	const nReal = 10
	const peer = "juliet@capulet.example/balcony"
	calls := make([]*iq.Call, nReal)
	done := make(chan *iq.Call, nReal)
	ctx := context.Background()
	for i := range calls {
		calls[i] = ep.Caller.Go(ctx, &iq.IQ{Type: iq.TypeGet, To: peer, Payload: iq.NewElement(hardeningNS, "q")}, done)
		require.NoError(t, calls[i].Err)
	}
	require.Equal(t, int64(nReal), sink.calls.Load())
	heapStart := hardHeap()
	sampler := startHardSampler(ep.Caller.Pending)

	errEl := iq.NewError(iq.Cancel, iq.ItemNotFound, "")
	var wg sync.WaitGroup
	const receivers = 4
	for r := range receivers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := r; i < n; i += receivers {
				in := &iq.IQ{ID: iq.NewID(), From: peer, Type: iq.TypeResult, Payload: iq.NewElement(hardeningNS, "spoof")}
				switch i % 4 {
				case 1:
					in.Type, in.Payload, in.Error = iq.TypeError, nil, errEl
				case 2: // a pending id, from the wrong sender
					in.ID, in.From = calls[i%nReal].Request.ID, "mallory@evil.example/x"
				case 3: // a pending id, an error from the wrong sender
					in.ID, in.From, in.Type, in.Payload, in.Error = calls[i%nReal].Request.ID, "capulet.example.evil", iq.TypeError, nil, errEl
				}
				ep.Receive(ctx, in)
			}
		}()
	}
	wg.Wait()
	sampler.Stop()
	heapEnd := hardHeap()

	assert.Equal(t, int64(nReal), sink.calls.Load(), "the flood made the Endpoint send")
	assert.Equal(t, nReal, ep.Caller.Pending())
	assert.Len(t, done, 0, "a request ended by the flood")
	assert.Equal(t, int64(nReal), sampler.peakPending.Load())
	assert.Zero(t, ep.Callee.InFlight())
	t.Logf("flood of %d unsolicited results/errors: %d sent, pending %d → %d, heap %.2f MiB → %.2f MiB (peak %.1f MiB)",
		n, sink.calls.Load()-nReal, nReal, ep.Caller.Pending(), hardMiB(heapStart), hardMiB(heapEnd), hardMiB(sampler.peakHeap.Load()))
	assert.Less(t, heapEnd, heapStart+1<<20, "the heap grew")

	// The real answers still work.
	for _, c := range calls {
		require.True(t, ep.Caller.Receive(&iq.IQ{Type: iq.TypeResult, ID: c.Request.ID, From: peer}))
	}
	for range nReal {
		c := <-done
		assert.NoError(t, c.Err)
	}
	assert.Zero(t, ep.Caller.Pending())
}
