package stream

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"
)

// timeoutErr is a transport's write timeout.
type timeoutErr struct{}

func (timeoutErr) Error() string { return "i/o timeout" }
func (timeoutErr) Timeout() bool { return true }

// cutRWC is a transport with write deadlines whose first Write waits for
// release; its second is cut short after cutAt bytes by a timeout, just
// as the context of the stanza it cuts ends (ending it); later ones take
// everything.
type cutRWC struct {
	mu      sync.Mutex
	out     bytes.Buffer
	n       int
	cutAt   int
	ending  *lateCtx
	entered chan struct{}
	release chan struct{}
}

func (c *cutRWC) Read(p []byte) (int, error)       { select {} }
func (c *cutRWC) Close() error                     { return nil }
func (c *cutRWC) SetWriteDeadline(time.Time) error { return nil }
func (c *cutRWC) output() string                   { c.mu.Lock(); defer c.mu.Unlock(); return c.out.String() }
func (c *cutRWC) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.n++
	k := c.n
	c.mu.Unlock()
	if k == 1 {
		c.entered <- struct{}{}
		<-c.release
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if k == 2 {
		c.ending.ended.Store(true)
		c.out.Write(p[:c.cutAt])
		return c.cutAt, timeoutErr{}
	}
	c.out.Write(p)
	return len(p), nil
}

// TestBugSettleReadsAStanzaBackInThePool: when a batch's Write was cut
// short inside a stanza whose context had ended, settle told that
// stanza's sender its verdict, then read the stanza's end and state to
// finish it: but the sender, told, had already put its request back in
// the pool (shared by every Conn), where another sender could take it and
// set both. Under -race that showed as a data race (TestHardeningChaos);
// without, the rest of the stanza could be cut from the wrong bounds (a
// slice out of range: a panic), or another Conn's request be signalled.
// settle now takes what it needs of the stanza before any verdict is sent.
// The reuse is simulated here by taking requests from the pool as soon as
// the sender has returned; -race reports the race on the code before.
func TestBugSettleReadsAStanzaBackInThePool(t *testing.T) {
	for i := 0; i < 20; i++ {
		late := &lateCtx{Context: context.Background(), done: make(chan struct{})}
		rwc := &cutRWC{cutAt: len("<b/>") + 1, ending: late, entered: make(chan struct{}, 1), release: make(chan struct{})}
		c := New(rwc)
		aDone := make(chan error, 1)
		go func() { aDone <- c.SendRaw(context.Background(), []byte("<a/>")) }()
		<-rwc.entered
		bDone := make(chan error, 1)
		go func() { bDone <- c.SendRaw(context.Background(), []byte("<b/>")) }()
		for WriteQueueLen(c) != 1 {
			time.Sleep(time.Millisecond)
		}
		cDone := make(chan error, 1)
		go func() {
			err := c.SendRaw(late, []byte("<c/>"))
			// Another sender takes the request back from the pool at once.
			for k := 0; k < 4; k++ {
				r := wreqPool.Get().(*wreq)
				r.state, r.end = wQueued, 1<<20
				defer wreqPool.Put(r)
			}
			cDone <- err
		}()
		for WriteQueueLen(c) != 2 {
			time.Sleep(time.Millisecond)
		}
		close(rwc.release) // A is written; B leads B and C, cut inside C
		if err := <-aDone; err != nil {
			t.Fatalf("A: %v", err)
		}
		if err := <-bDone; err != nil {
			t.Fatalf("B, written whole before the cut: %v", err)
		}
		if err := <-cDone; err == nil {
			t.Fatal("C's context ended as its write was cut short: SendRaw returned nil")
		}
		deadline := time.Now().Add(5 * time.Second)
		for rwc.output() != "<a/><b/><c/>" && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if out := rwc.output(); out != "<a/><b/><c/>" {
			t.Fatalf("wire: %q, want C finished whole after the cut", out)
		}
		close(late.done)
		_ = c.Close()
	}
}
