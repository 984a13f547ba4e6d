package iq_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/stream"
)

// The defaults keep the README's go test -race ./... short; .ci/run runs
// the full size (-chaos.n=100000, -flood.n=100000, -ids.n=1000000,
// -fault.rounds=1000).
var (
	hardChaosN       = flag.Int("chaos.n", 10_000, "requests TestHardeningChaos makes (CI: 100000)")
	hardChaosWorkers = flag.Int("chaos.workers", 64, "goroutines TestHardeningChaos makes requests from")
	hardChaosDead    = flag.Duration("chaos.deadline", 10*time.Millisecond, "deadline of the requests that get no answer in time")
	hardChaosSeed    = flag.Uint64("chaos.seed", 0, "seed of TestHardeningChaos's choices (0: from the clock)")
)

// The peer's behaviours, one per request, chosen at random.
const (
	chaosOK      = iota // answers with a result
	chaosError          // answers item-not-found
	chaosNever          // never answers: blocks until its context ends
	chaosTwice          // answers twice: a result injected, then the handler's
	chaosLate           // answers only after the requester gave up
	chaosSpoofed        // a result and an error from other senders, then the real one
	chaosClasses
)

var chaosNames = [chaosClasses]string{"ok", "error", "never", "twice", "late", "spoofed"}

const (
	chaosMe   = "me@example.com/res"
	chaosPeer = "peer@example.com/chaos"
)

// hardCountLog is a slog.Handler counting records by message.
type hardCountLog struct {
	mu sync.Mutex
	n  map[string]int
}

func newHardCountLog() *hardCountLog { return &hardCountLog{n: map[string]int{}} }

func (h *hardCountLog) Enabled(context.Context, slog.Level) bool { return true }
func (h *hardCountLog) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.n[r.Message]++
	h.mu.Unlock()
	return nil
}
func (h *hardCountLog) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *hardCountLog) WithGroup(string) slog.Handler      { return h }

// Count returns how many records have a message containing sub.
func (h *hardCountLog) Count(sub string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for m, c := range h.n {
		if strings.Contains(m, sub) {
			n += c
		}
	}
	return n
}

// hardSampler records the peak of Pending and of the heap while it runs.
type hardSampler struct {
	stop        chan struct{}
	done        chan struct{}
	peakPending atomic.Int64
	peakHeap    atomic.Uint64
}

func startHardSampler(pending func() int) *hardSampler {
	s := &hardSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tk := time.NewTicker(2 * time.Millisecond)
		defer tk.Stop()
		var m runtime.MemStats
		for i := 0; ; i++ {
			if p := int64(pending()); p > s.peakPending.Load() {
				s.peakPending.Store(p)
			}
			if i%25 == 0 {
				runtime.ReadMemStats(&m)
				if m.HeapAlloc > s.peakHeap.Load() {
					s.peakHeap.Store(m.HeapAlloc)
				}
			}
			select {
			case <-s.stop:
				return
			case <-tk.C:
			}
		}
	}()
	return s
}

func (s *hardSampler) Stop() { close(s.stop); <-s.done }

// chaosPair is a Caller's stream and a Callee's stream over net.Pipe,
// each served with an Endpoint.
type chaosPair struct {
	pa, pb         net.Conn
	ca, cb         *stream.Conn
	ea, eb         *iq.Endpoint
	serveA, serveB chan error
	logA, logB     *hardCountLog
	cancel         context.CancelFunc
}

func newChaosPair(maxInFlight int, timeout time.Duration) *chaosPair {
	p := &chaosPair{serveA: make(chan error, 1), serveB: make(chan error, 1), logA: newHardCountLog(), logB: newHardCountLog()}
	p.pa, p.pb = net.Pipe()
	p.ca, p.cb = stream.New(p.pa), stream.New(p.pb)
	p.ea = iq.NewEndpoint(p.ca, iq.WithLocalJID(chaosMe), iq.WithTimeout(timeout), iq.WithMaxPending(1<<20),
		iq.WithLogger(slog.New(p.logA)))
	p.eb = iq.NewEndpoint(p.cb, iq.WithMaxInFlight(maxInFlight), iq.WithLogger(slog.New(p.logB)))
	return p
}

func (p *chaosPair) serve() {
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	go func() { p.serveA <- p.ca.Serve(ctx, p.ea, nil) }()
	go func() { p.serveB <- p.cb.Serve(ctx, p.eb, nil) }()
}

// TestHardeningChaos makes requests from many goroutines through a Caller
// ↔ stream ↔ Callee whose peer misbehaves at random, and checks that each
// request ends exactly once with the outcome its class calls for, that
// nothing stays pending, no goroutine is left and the heap comes back.
func TestHardeningChaos(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	n, workers := *hardChaosN, *hardChaosWorkers
	seed := *hardChaosSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("chaos: %d requests from %d goroutines, seed %d (-chaos.seed to replay)", n, workers, seed)

	// About a sixth of the requests leave a handler blocked to the end.
	hardWarmGoroutines(n/6 + n/20 + 4*workers)
	heapStart := hardHeap()
	goroutinesStart := runtime.NumGoroutine()
	start := time.Now()

	p := newChaosPair(n+1, *hardChaosDead)
	// gaveUp[id] is closed when the requester of id has its answer, so a
	// late answer is sent strictly after the requester's timeout.
	var gaveUp sync.Map
	// The requests that reach a handler: one whose short deadline passes
	// before the stream can write it is never sent, as the deadline now
	// bounds the write too, so only these count as blocked or answered late.
	var reachedNever, reachedLate atomic.Int64
	p.eb.Callee.Get(hardeningNS, "chaos", func(ctx context.Context, req *iq.IQ) (*iq.Element, error) {
		ok := iq.NewElement(hardeningNS, "ok")
		switch req.Payload.AttrValue("class") {
		case "ok":
			return ok, nil
		case "error":
			return nil, iq.NewError(iq.Cancel, iq.ItemNotFound, "")
		case "never":
			reachedNever.Add(1)
			<-ctx.Done()
			return nil, ctx.Err()
		case "twice":
			if err := p.cb.SendIQ(ctx, req.Result(iq.NewElement(hardeningNS, "ok", "n", "1"))); err != nil {
				return nil, err
			}
			return iq.NewElement(hardeningNS, "ok", "n", "2"), nil
		case "late":
			reachedLate.Add(1)
			if ch, found := gaveUp.Load(req.ID); found { // else it gave up already
				<-ch.(chan struct{})
			}
			return ok, nil
		case "spoofed":
			for _, from := range []string{"mallory@evil.example/x", "peer@example.com/other", "example.net"} {
				spoof := &iq.IQ{Type: iq.TypeResult, ID: req.ID, From: from, To: req.From, Payload: iq.NewElement(hardeningNS, "spoof")}
				if err := p.cb.SendIQ(ctx, spoof); err != nil {
					return nil, err
				}
			}
			spoofErr := &iq.IQ{Type: iq.TypeError, ID: req.ID, From: "peer@example.org/chaos", Error: iq.NewError(iq.Auth, iq.Forbidden, "")}
			if err := p.cb.SendIQ(ctx, spoofErr); err != nil {
				return nil, err
			}
			return ok, nil
		}
		return nil, fmt.Errorf("unknown class %q", req.Payload.AttrValue("class"))
	})
	p.serve()
	sampler := startHardSampler(p.ea.Caller.Pending)

	var (
		issued, ended [chaosClasses]atomic.Int64
		wrong         atomic.Int64
		firstWrong    atomic.Pointer[string]
		next          atomic.Int64
		wg            sync.WaitGroup
		dones         = make([]chan *iq.Call, workers)
	)
	failf := func(format string, args ...any) {
		wrong.Add(1)
		s := fmt.Sprintf(format, args...)
		firstWrong.CompareAndSwap(nil, &s)
	}
	for w := range workers {
		dones[w] = make(chan *iq.Call, 1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			done := dones[w]
			for next.Add(1) <= int64(n) {
				class := rng.IntN(chaosClasses)
				issued[class].Add(1)
				id := iq.NewID()
				// The requests meant to time out do so by the Caller's short
				// timeout; the others carry a long deadline of their own,
				// which wins. (Either deadline bounds the stream write too,
				// see TestHardeningBugRequestDeadlineMidWriteEndsStream: a
				// request whose deadline passes first is never sent.)
				ctx, cancel := context.Background(), context.CancelFunc(func() {})
				var gone chan struct{}
				switch class {
				case chaosNever, chaosLate:
					gone = make(chan struct{})
					gaveUp.Store(id, gone)
				default:
					ctx, cancel = context.WithTimeout(ctx, hardWait)
				}
				req := &iq.IQ{Type: iq.TypeGet, ID: id, To: chaosPeer, Payload: iq.NewElement(hardeningNS, "chaos", "class", chaosNames[class])}
				call := p.ea.Caller.Go(ctx, req, done)
				got := <-done
				cancel()
				if gone != nil {
					close(gone)
					gaveUp.Delete(id)
				}
				ended[class].Add(1)
				if got != call {
					failf("%s: delivered another call", chaosNames[class])
					continue
				}
				if msg := chaosCheck(class, got); msg != "" {
					failf("%s %s: %s", chaosNames[class], id, msg)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)

	never := reachedNever.Load()
	assert.LessOrEqual(t, never, issued[chaosNever].Load())
	// Every handler but the never-answering ones returns and sends.
	if !assert.Eventually(t, func() bool { return int64(p.eb.Callee.InFlight()) == never }, hardWait, hardTick) {
		t.Fatalf("handlers in flight %d, never-answering %d, B's log %v", p.eb.Callee.InFlight(), never, p.logB.n)
	}
	// A last round trip: the stream is ordered, so every answer sent before
	// it has been read and sorted once it returns.
	bctx, bcancel := context.WithTimeout(context.Background(), hardWait)
	_, err := p.ea.Caller.Get(bctx, chaosPeer, iq.NewElement(hardeningNS, "chaos", "class", "ok"))
	bcancel()
	require.NoError(t, err)
	sampler.Stop()

	for w, d := range dones {
		assert.Len(t, d, 0, "worker %d got a second delivery", w)
	}
	assert.Zero(t, wrong.Load(), "wrong outcomes; first: %v", deref(firstWrong.Load()))
	var total int64
	for c := range chaosClasses {
		assert.Equal(t, issued[c].Load(), ended[c].Load(), chaosNames[c])
		total += ended[c].Load()
	}
	assert.Equal(t, int64(n), total)
	assert.Zero(t, p.ea.Caller.Pending())
	// Every extra answer was dropped: the duplicates, the late ones and the
	// spoofs (3 results and an error each), and the spoofs for their sender.
	spoofs := 4 * issued[chaosSpoofed].Load()
	assert.Equal(t, int(spoofs), p.logA.Count("sender not allowed"))
	assert.LessOrEqual(t, reachedLate.Load(), issued[chaosLate].Load())
	assert.Equal(t, int(spoofs+issued[chaosTwice].Load()+reachedLate.Load()), p.logA.Count("matches no pending request"))

	// Tear down: the never-answering handlers end with their context.
	require.NoError(t, p.ca.Close())
	assert.NoError(t, <-p.serveA)
	<-p.serveB
	p.cancel()
	require.Eventually(t, func() bool { return p.eb.Callee.InFlight() == 0 }, hardWait, hardTick)
	assert.Zero(t, p.ea.Caller.Pending())
	t.Logf("goroutines: %d at the start, %d now (goleak checks which remain)", goroutinesStart, runtime.NumGoroutine())

	p = nil
	heapEnd := hardHeap()
	var sb strings.Builder
	for c := range chaosClasses {
		fmt.Fprintf(&sb, " %s=%d", chaosNames[c], ended[c].Load())
	}
	t.Logf("chaos: %d requests in %v (%.0f/s); outcomes:%s; peak pending %d; heap start %.1f MiB, peak %.1f MiB, end %.1f MiB",
		total, elapsed.Round(time.Millisecond), float64(total)/elapsed.Seconds(), sb.String(),
		sampler.peakPending.Load(), hardMiB(heapStart), hardMiB(sampler.peakHeap.Load()), hardMiB(heapEnd))
	assert.Less(t, heapEnd, heapStart+2<<20, "heap did not come back: %.1f MiB → %.1f MiB", hardMiB(heapStart), hardMiB(heapEnd))
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// chaosCheck returns what is wrong with the outcome of a call of class.
func chaosCheck(class int, call *iq.Call) string {
	err := call.Err
	switch class {
	case chaosOK, chaosTwice, chaosSpoofed:
		if err != nil {
			return "error " + err.Error()
		}
		r := call.Response
		if r == nil || r.Payload == nil || r.Payload.Name.Local != "ok" {
			return fmt.Sprintf("wrong response %v", r)
		}
		if r.From != chaosPeer {
			return "answered from " + r.From
		}
		if class == chaosTwice && r.Payload.AttrValue("n") != "1" {
			return "the second answer won"
		}
	case chaosError:
		var serr *iq.StanzaError
		if !errors.As(err, &serr) || serr.Condition != iq.ItemNotFound || serr.Type != iq.Cancel {
			return fmt.Sprintf("want cancel/item-not-found, got %v", err)
		}
	case chaosNever, chaosLate:
		if !errors.Is(err, iq.ErrTimeout) || call.Response != nil {
			return fmt.Sprintf("want a timeout, got %v, %v", call.Response, err)
		}
	}
	return ""
}

// TestHardeningChaosStreamCut cuts the transport under requests in
// flight: those answered before the cut succeed, every other ends with
// ErrClosed, whether it was pending, being sent or made after the cut.
func TestHardeningChaosStreamCut(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	workers := *hardChaosWorkers
	n := max(*hardChaosN/10, 16*workers)
	heapStart := hardHeap()
	p := newChaosPair(n+1, hardWait)
	var blocked atomic.Int64 // never-answering handlers started
	p.eb.Callee.Get(hardeningNS, "chaos", func(ctx context.Context, req *iq.IQ) (*iq.Element, error) {
		if req.Payload.AttrValue("class") == "never" {
			blocked.Add(1)
			<-ctx.Done()
			return nil, ctx.Err()
		}
		return iq.NewElement(hardeningNS, "ok"), nil
	})
	p.serve()
	sampler := startHardSampler(p.ea.Caller.Pending)

	var (
		next                    atomic.Int64
		okOK, okClosed, neverCl atomic.Int64
		wrong                   atomic.Int64
		firstWrong              atomic.Pointer[string]
		pendingAtCut            atomic.Int64
		issuedAtCut             atomic.Int64
		nevers                  atomic.Int64
		cut                     = make(chan struct{})
		wg                      sync.WaitGroup
	)
	// The cutter: once every worker waits on a never-answered request
	// (each worker's 8th is one), cut the wire under the peer, as a dead
	// TCP connection would, while the other workers keep going.
	go func() {
		defer close(cut)
		for blocked.Load() < int64(workers) {
			time.Sleep(100 * time.Microsecond)
		}
		pendingAtCut.Store(int64(p.ea.Caller.Pending()))
		issuedAtCut.Store(next.Load())
		_ = p.pb.Close()
	}()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			done := make(chan *iq.Call, 1)
			for k := 1; ; k++ {
				if next.Add(1) > int64(n) {
					return
				}
				class := "ok"
				if k == 8 || k%16 == 0 {
					class = "never"
					nevers.Add(1)
				}
				call := p.ea.Caller.Go(context.Background(), &iq.IQ{Type: iq.TypeGet, To: chaosPeer, Payload: iq.NewElement(hardeningNS, "chaos", "class", class)}, done)
				got := <-done
				switch {
				case got != call:
					wrong.Add(1)
				case class == "ok" && got.Err == nil:
					okOK.Add(1)
				case errors.Is(got.Err, iq.ErrClosed) && got.Response == nil:
					if class == "ok" {
						okClosed.Add(1)
					} else {
						neverCl.Add(1)
					}
				default:
					wrong.Add(1)
					s := fmt.Sprintf("%s: %v, %v", class, got.Response, got.Err)
					firstWrong.CompareAndSwap(nil, &s)
				}
				if len(done) != 0 {
					wrong.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	<-cut
	errA := <-p.serveA
	errB := <-p.serveB
	p.cancel()
	sampler.Stop()
	require.Eventually(t, func() bool { return p.eb.Callee.InFlight() == 0 }, hardWait, hardTick)

	assert.Zero(t, wrong.Load(), "wrong outcomes; first: %v", deref(firstWrong.Load()))
	assert.Equal(t, int64(n), okOK.Load()+okClosed.Load()+neverCl.Load())
	assert.Equal(t, nevers.Load(), neverCl.Load(), "every never-answered request ends ErrClosed")
	assert.Positive(t, okOK.Load(), "some requests were answered before the cut")
	assert.Positive(t, okClosed.Load(), "requests after the cut fail")
	assert.Error(t, errA, "the cut is an error for the reader")
	assert.Error(t, errB)
	assert.Zero(t, p.ea.Caller.Pending())
	// Requests after everything: refused at once.
	_, err := p.ea.Caller.Get(context.Background(), chaosPeer, iq.NewElement(hardeningNS, "chaos"))
	assert.ErrorIs(t, err, iq.ErrClosed)
	p = nil
	heapEnd := hardHeap()
	t.Logf("stream cut: %d requests, cut after %d issued; answered before the cut %d; ended ErrClosed: %d answerable + %d never-answered; pending at the cut %d, peak pending %d; reader errors: %v / %v; heap start %.1f MiB, peak %.1f MiB, end %.1f MiB",
		n, issuedAtCut.Load(), okOK.Load(), okClosed.Load(), neverCl.Load(), pendingAtCut.Load(), sampler.peakPending.Load(), errA, errB,
		hardMiB(heapStart), hardMiB(sampler.peakHeap.Load()), hardMiB(heapEnd))
	assert.Less(t, heapEnd, heapStart+8<<20)
}
