package stream

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xmpp-iq/iq"
)

// gateRWC is a transport whose every Write says it has begun (entered)
// and waits for release before it takes the bytes.
type gateRWC struct {
	mu      sync.Mutex
	out     bytes.Buffer
	entered chan int
	release chan struct{}
	n       int
}

func (g *gateRWC) Read(p []byte) (int, error) { select {} }
func (g *gateRWC) Close() error               { return nil }
func (g *gateRWC) Write(p []byte) (int, error) {
	g.mu.Lock()
	g.n++
	k := g.n
	g.mu.Unlock()
	g.entered <- k
	<-g.release
	g.mu.Lock()
	g.out.Write(p)
	g.mu.Unlock()
	return len(p), nil
}

// lateCtx is a context that has ended (Err says so once ended is set)
// whose Done channel closes only later: it stands for a sender whose
// context ended but whose goroutine has not run since.
type lateCtx struct {
	context.Context
	ended atomic.Bool
	done  chan struct{}
}

func (l *lateCtx) Done() <-chan struct{} { return l.done }
func (l *lateCtx) Err() error {
	if l.ended.Load() {
		return context.Canceled
	}
	return nil
}

// TestBugQueuedStanzaWrittenAfterItsContextEnded: a stanza whose context
// ended while it waited in the write queue was taken into the next batch
// (its sender not yet woken) and written, while its sender returned the
// context's error: a set reported cancelled still reached the peer. The
// batch leader now fails such a stanza instead of writing it.
func TestBugQueuedStanzaWrittenAfterItsContextEnded(t *testing.T) {
	g := &gateRWC{entered: make(chan int, 10), release: make(chan struct{})}
	c := New(g)
	aDone := make(chan error, 1)
	go func() { aDone <- c.SendRaw(context.Background(), []byte("<a/>")) }()
	<-g.entered // A's write holds the lock
	cDone := make(chan error, 1)
	go func() { cDone <- c.SendRaw(context.Background(), []byte("<c/>")) }()
	for WriteQueueLen(c) != 1 {
		time.Sleep(time.Millisecond)
	}
	b := &lateCtx{Context: context.Background(), done: make(chan struct{})}
	bDone := make(chan error, 1)
	go func() { bDone <- c.SendRaw(b, []byte("<b/>")) }()
	for WriteQueueLen(c) != 2 {
		time.Sleep(time.Millisecond)
	}
	b.ended.Store(true)     // B's context ends while B waits in the queue
	g.release <- struct{}{} // A's write returns; C leads C+B
	<-g.entered             // the batch's Write has begun
	close(b.done)           // B's waiter runs only now
	errB := <-bDone
	close(g.release)
	<-aDone
	<-cDone
	g.mu.Lock()
	out := g.out.String()
	g.mu.Unlock()
	if !errors.Is(errB, context.Canceled) {
		t.Errorf("B's context ended while it was queued: SendRaw returned %v, want context.Canceled", errB)
	}
	if bytes.Contains([]byte(out), []byte("<b/>")) {
		t.Errorf("B's context ended while it was queued, yet <b/> was written: %s", out)
	}
	if out != "<a/><c/>" {
		t.Errorf("wire: %q, want %q", out, "<a/><c/>")
	}
}

// failRWC is a transport whose first Write waits for release and then
// fails, as a broken connection does; later Writes fail at once.
type failRWC struct {
	entered chan struct{}
	release chan struct{}
	closed  chan struct{}
	once    sync.Once
}

func (f *failRWC) Read(p []byte) (int, error) { <-f.closed; return 0, context.Canceled }
func (f *failRWC) Close() error               { f.once.Do(func() { close(f.closed) }); return nil }
func (f *failRWC) Write(p []byte) (int, error) {
	select {
	case f.entered <- struct{}{}:
		<-f.release
		return 1, errBrokenPipe
	default:
		return 0, errBrokenPipe
	}
}

var errBrokenPipe = errors.New("broken pipe")

// TestBugShutdownStallsOnBrokenWriter: Shutdown's closing tag waited for
// the write lock while holding the stream's end, and the writer holding
// the lock, whose write found the transport broken, waited for that end:
// both stalled for closeWriteWait (1 s), with every pending request. The
// closing tag's wait now ends as soon as a writer finds the transport
// broken.
func TestBugShutdownStallsOnBrokenWriter(t *testing.T) {
	f := &failRWC{entered: make(chan struct{}, 1), release: make(chan struct{}), closed: make(chan struct{})}
	c := New(f)
	ep := iq.NewEndpoint(c)
	aDone := make(chan error, 1)
	go func() { aDone <- c.SendRaw(context.Background(), []byte("<a/>")) }()
	<-f.entered
	shut := make(chan error, 1)
	sctx, cancel := context.WithTimeout(context.Background(), 3*closeWriteWait)
	defer cancel()
	go func() { shut <- c.Shutdown(sctx, ep) }()
	time.Sleep(50 * time.Millisecond) // closeWrite waits for the lock
	start := time.Now()
	close(f.release) // A's write fails: transport broken
	err := <-aDone
	took := time.Since(start)
	if err == nil {
		t.Error("a write that found the transport broken returned no error")
	}
	<-shut
	// closeWriteWait is 1 s: half of it can only pass on the old code.
	if took > closeWriteWait/2 {
		t.Errorf("the writer that found the transport broken returned only after %v (closeWrite held closeOnce waiting for the lock)", took)
	}
}
