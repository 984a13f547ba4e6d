package iq_test

import (
	"context"
	"encoding/xml"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/iqtest"
)

const orderNS = "urn:example:order"

// orderReq returns a set from from, with id id and payload <push n='n'/>.
func orderReq(from, id string, n int) *iq.IQ {
	return &iq.IQ{ID: id, From: from, Type: iq.TypeSet,
		Payload: iq.NewElement(orderNS, "push", "n", strconv.Itoa(n))}
}

// replyCounter is a Sender that counts the replies by type and condition,
// and closes done when want of them have been sent.
type replyCounter struct {
	mu      sync.Mutex
	total   int
	results int
	conds   map[iq.Condition]int
	byID    map[string]*iq.IQ
	want    int
	done    chan struct{}
	forget  bool // keep no reply, only counts
}

func newReplyCounter(want int) *replyCounter {
	return &replyCounter{conds: make(map[iq.Condition]int), byID: make(map[string]*iq.IQ),
		want: want, done: make(chan struct{})}
}

func (r *replyCounter) SendIQ(_ context.Context, out *iq.IQ) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.forget {
		if _, dup := r.byID[out.ID]; dup {
			panic("second reply to " + out.ID)
		}
		r.byID[out.ID] = out
	}
	r.total++
	if out.Type == iq.TypeResult {
		r.results++
	} else if out.Error != nil {
		r.conds[out.Error.Condition]++
	}
	if r.total == r.want {
		close(r.done)
	}
	return nil
}

func (r *replyCounter) cond(c iq.Condition) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.conds[c]
}

func (r *replyCounter) reply(id string) *iq.IQ {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byID[id]
}

func (r *replyCounter) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.total
}

func (r *replyCounter) wait(t *testing.T) {
	t.Helper()
	calleeWaitClosed(t, r.done, fmt.Sprintf("%d replies (got %d)", r.want, r.count()))
}

// seqLog records the order in which one sender's requests ran, and fails
// the test if two of them run at once. It takes no lock: the handlers of
// one sender must run one after another, each seeing what the previous
// one wrote, which the race detector checks.
type seqLog struct {
	running atomic.Int32
	seen    []int
}

func (l *seqLog) add(t *testing.T, n int) {
	if l.running.Add(1) != 1 {
		t.Errorf("two requests of one sender ran at once (at %d)", n)
	}
	l.seen = append(l.seen, n)
	l.running.Add(-1)
}

// assertInOrder checks that seen is 0, 1, …, n-1.
func assertInOrder(t *testing.T, seen []int, n int, who string) {
	t.Helper()
	require.Len(t, seen, n, "%s: requests handled", who)
	inversions := 0
	for i, v := range seen {
		if v != i {
			inversions++
		}
	}
	assert.Zero(t, inversions, "%s: requests handled out of the order sent", who)
}

// pushNumber reads the n attribute of a request's payload.
func pushNumber(req *iq.IQ) int {
	n, err := strconv.Atoi(req.Payload.AttrValue("n"))
	if err != nil {
		panic(err)
	}
	return n
}

func TestOrdered_OneSenderInOrder(t *testing.T) {
	defer goleak.VerifyNone(t)
	const n = 10000
	rc := newReplyCounter(n)
	c := iq.NewCallee(rc, iq.WithMaxInFlight(n))
	defer c.Close()
	var log seqLog
	c.Set(orderNS, "push", func(_ context.Context, req *iq.IQ) (*iq.Element, error) {
		log.add(t, pushNumber(req))
		return nil, nil
	}, iq.OrderedBySender(), iq.MaxQueued(n))
	ctx := context.Background()
	for i := range n {
		c.Receive(ctx, orderReq("server.example", strconv.Itoa(i), i))
		assert.LessOrEqual(t, c.InFlight(), n)
	}
	rc.wait(t)
	require.NoError(t, c.Drain(ctx))
	assert.Equal(t, n, rc.results, "every push gets its result")
	assertInOrder(t, log.seen, n, "one sender")
}

func TestOrdered_ManySendersEachInOrder(t *testing.T) {
	defer goleak.VerifyNone(t)
	const senders = 64
	each := 1000
	if raceEnabled {
		each = 250 // the race detector makes 64,000 requests take seconds
	}
	rc := newReplyCounter(senders * each)
	c := iq.NewCallee(rc, iq.WithMaxInFlight(senders*each))
	defer c.Close()
	logs := make(map[string]*seqLog, senders)
	for s := range senders {
		logs[fmt.Sprintf("s%d@example.com/r", s)] = new(seqLog)
	}
	c.Set(orderNS, "push", func(_ context.Context, req *iq.IQ) (*iq.Element, error) {
		logs[req.From].add(t, pushNumber(req))
		return nil, nil
	}, iq.OrderedBySender(), iq.MaxQueued(each))
	var wg sync.WaitGroup
	for from := range logs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				c.Receive(context.Background(), orderReq(from, from+strconv.Itoa(i), i))
			}
		}()
	}
	wg.Wait()
	rc.wait(t)
	require.NoError(t, c.Drain(context.Background()))
	assert.Equal(t, senders*each, rc.results)
	for from, l := range logs {
		assertInOrder(t, l.seen, each, from)
	}
}

// TestOrdered_SlowSenderStallsNoOther blocks one sender's handler and
// checks that every other sender's requests complete meanwhile; then the
// blocked sender's, in order.
func TestOrdered_SlowSenderStallsNoOther(t *testing.T) {
	defer goleak.VerifyNone(t)
	const others, each, slowQueued = 16, 50, 10
	rc := newReplyCounter(others*each + 1 + slowQueued)
	c := iq.NewCallee(rc)
	defer c.Close()
	gate := make(chan struct{})
	started := make(chan struct{})
	var slow seqLog
	c.Set(orderNS, "push", func(_ context.Context, req *iq.IQ) (*iq.Element, error) {
		if req.From == "slow@example.com" {
			if pushNumber(req) == 0 {
				close(started)
				<-gate
			}
			slow.add(t, pushNumber(req))
		}
		return nil, nil
	}, iq.OrderedBySender())
	ctx := context.Background()
	for i := range 1 + slowQueued {
		c.Receive(ctx, orderReq("slow@example.com", "slow"+strconv.Itoa(i), i))
	}
	calleeWaitClosed(t, started, "the slow sender's first request")
	for s := range others {
		for i := range each {
			c.Receive(ctx, orderReq(fmt.Sprintf("o%d@example.com", s), fmt.Sprintf("o%d-%d", s, i), i))
		}
	}
	// Every other sender's requests complete while the slow one is blocked.
	require.Eventually(t, func() bool { return rc.count() == others*each }, calleeWaitFor, time.Millisecond,
		"the other senders' requests did not all complete while one sender was blocked")
	assert.Nil(t, rc.reply("slow0"), "the blocked request was answered")
	assert.Equal(t, 1+slowQueued, c.InFlight(), "the slow sender's running and waiting requests")
	close(gate)
	rc.wait(t)
	require.NoError(t, c.Drain(ctx))
	assertInOrder(t, slow.seen, 1+slowQueued, "the slow sender")
}

// TestOrdered_BoundUnderFlood floods ordered routes whose handlers are
// blocked: a full queue, then the in-flight cap, answer
// wait/resource-constraint at once, exactly for what is past them, and
// InFlight never passes the cap.
func TestOrdered_BoundUnderFlood(t *testing.T) {
	defer goleak.VerifyNone(t)
	const maxInFlight, maxQueued = 64, 8
	for _, tc := range []struct {
		name          string
		senders, each int
		wantRunning   int // handlers started, each blocked
		wantAdmitted  int // running and waiting
		opts          []iq.Middleware
	}{
		{name: "one sender: its queue is the bound", senders: 1, each: 10000,
			wantRunning: 1, wantAdmitted: 1 + maxQueued, opts: []iq.Middleware{iq.OrderedBySender(), iq.MaxQueued(maxQueued)}},
		{name: "many senders: the in-flight cap is the bound", senders: 500, each: 20,
			wantRunning: maxInFlight/(1+maxQueued) + 1, wantAdmitted: maxInFlight,
			opts: []iq.Middleware{iq.OrderedBySender(), iq.MaxQueued(maxQueued)}},
		{name: "one order for the route", senders: 100, each: 100,
			wantRunning: 1, wantAdmitted: 1 + maxQueued, opts: []iq.Middleware{iq.Ordered(), iq.MaxQueued(maxQueued)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			total := tc.senders * tc.each
			rc := newReplyCounter(total)
			rc.forget = true // to measure the Callee's memory, not the replies'
			c := iq.NewCallee(rc, iq.WithMaxInFlight(maxInFlight))
			defer c.Close()
			gate := make(chan struct{})
			var running, maxSeen atomic.Int64
			c.Set(orderNS, "push", func(context.Context, *iq.IQ) (*iq.Element, error) {
				running.Add(1)
				<-gate
				return nil, nil
			}, tc.opts...)
			var before runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			ctx := context.Background()
			// Each sender's requests in turn, so that every sender gets
			// its first request in before the cap is reached: the senders
			// that do get a running handler and a full queue.
			for s := range tc.senders {
				for i := range tc.each {
					c.Receive(ctx, orderReq(fmt.Sprintf("f%d@example.com", s), fmt.Sprintf("%d-%d", s, i), i))
					if n := int64(c.InFlight()); n > maxSeen.Load() {
						maxSeen.Store(n)
					}
				}
			}
			refused := total - tc.wantAdmitted
			require.Eventually(t, func() bool { return rc.count() == refused }, calleeWaitFor, time.Millisecond)
			assert.Equal(t, refused, rc.cond(iq.ResourceConstraint), "refused wait/resource-constraint")
			assert.Equal(t, tc.wantAdmitted, c.InFlight())
			assert.LessOrEqual(t, maxSeen.Load(), int64(maxInFlight), "InFlight passed the cap")
			var after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&after)
			// What stays allocated is the admitted requests and the
			// queues: far below what keeping every request would take.
			grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
			assert.Less(t, grown, int64(total)*100, "heap grew by %d bytes for %d requests", grown, total)
			require.Eventually(t, func() bool { return running.Load() == int64(tc.wantRunning) }, calleeWaitFor, time.Millisecond)
			close(gate)
			rc.wait(t)
			require.NoError(t, c.Drain(ctx))
			assert.Equal(t, tc.wantAdmitted, rc.results)
		})
	}
}

func TestOrdered_PanicAndGoexitKeepTheQueueGoing(t *testing.T) {
	defer goleak.VerifyNone(t)
	const n = 6
	rc := newReplyCounter(n)
	c := iq.NewCallee(rc)
	defer c.Close()
	var log seqLog
	gate := make(chan struct{})
	c.Set(orderNS, "push", func(_ context.Context, req *iq.IQ) (*iq.Element, error) {
		i := pushNumber(req)
		if i == 0 {
			<-gate // until the others wait in the queue
		}
		log.add(t, i)
		switch i {
		case 1:
			panic("boom")
		case 3:
			runtime.Goexit()
		}
		return nil, nil
	}, iq.OrderedBySender())
	for i := range n {
		c.Receive(context.Background(), orderReq("", strconv.Itoa(i), i))
	}
	close(gate)
	rc.wait(t)
	require.NoError(t, c.Drain(context.Background()))
	assertInOrder(t, log.seen, n, "the server")
	for i := range n {
		r := rc.reply(strconv.Itoa(i))
		if i == 1 || i == 3 {
			calleeAssertErrorReply(t, r, iq.Cancel, iq.InternalServerError)
		} else {
			calleeAssertResult(t, r, nil)
		}
	}
}

func TestOrdered_CloseAnswersWaitingServiceUnavailable(t *testing.T) {
	defer goleak.VerifyNone(t)
	const waiting = 5
	rc := newReplyCounter(1 + waiting)
	c := iq.NewCallee(rc)
	gate := make(chan struct{})
	started := make(chan struct{})
	var ran atomic.Int32
	c.Set(orderNS, "push", func(ctx context.Context, req *iq.IQ) (*iq.Element, error) {
		ran.Add(1)
		close(started)
		<-gate
		return nil, ctx.Err()
	}, iq.OrderedBySender())
	for i := range 1 + waiting {
		c.Receive(context.Background(), orderReq("a@example.com", strconv.Itoa(i), i))
	}
	calleeWaitClosed(t, started, "the first request")
	require.NoError(t, c.Close())
	// The waiting requests are answered while the first still runs.
	require.Eventually(t, func() bool { return rc.cond(iq.ServiceUnavailable) == waiting }, calleeWaitFor, time.Millisecond)
	assert.Nil(t, rc.reply("0"))
	close(gate)
	rc.wait(t)
	require.NoError(t, c.Drain(context.Background()))
	assert.Equal(t, int32(1), ran.Load(), "a waiting request ran after Close")
	for i := 1; i <= waiting; i++ {
		calleeAssertErrorReply(t, rc.reply(strconv.Itoa(i)), iq.Cancel, iq.ServiceUnavailable)
	}
	calleeAssertErrorReply(t, rc.reply("0"), iq.Cancel, iq.InternalServerError) // ctx.Err(): not a StanzaError
}

func TestOrdered_DrainWaitsForWaitingRequests(t *testing.T) {
	defer goleak.VerifyNone(t)
	rc := newReplyCounter(4)
	c := iq.NewCallee(rc)
	defer c.Close()
	gate := make(chan struct{})
	c.Set(orderNS, "push", func(_ context.Context, req *iq.IQ) (*iq.Element, error) {
		if pushNumber(req) == 0 {
			<-gate
		}
		return nil, nil
	}, iq.Ordered())
	for i := range 4 {
		c.Receive(context.Background(), orderReq(fmt.Sprintf("s%d@example.com", i), strconv.Itoa(i), i))
	}
	errc := drainResult(context.Background(), c)
	assertPending(t, errc, 50*time.Millisecond, "three requests wait behind a blocked one")
	close(gate)
	select {
	case err := <-errc:
		require.NoError(t, err)
	case <-time.After(calleeWaitFor):
		require.FailNow(t, "Drain did not return")
	}
	assert.Equal(t, 4, rc.count(), "Drain returned before every reply was sent")
}

// TestOrdered_Senders checks who counts as one sender: the normalised
// from; no from is a sender of its own; a from that does not parse is
// compared as it is.
func TestOrdered_Senders(t *testing.T) {
	defer goleak.VerifyNone(t)
	for _, tc := range []struct {
		name     string
		a, b     string
		oneQueue bool
	}{
		{"case of local and domain", "Juliet@Example.COM/balcony", "juliet@example.com/balcony", true},
		{"same full JID", "juliet@example.com/balcony", "juliet@example.com/balcony", true},
		{"no from twice", "", "", true},
		{"no from and the domain", "", "example.com", false},
		{"two resources", "juliet@example.com/a", "juliet@example.com/b", false},
		{"bare and full", "juliet@example.com", "juliet@example.com/a", false},
		{"malformed, same", "a@@b", "a@@b", true},
		{"malformed and another", "a@@b", "a@@c", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := newReplyCounter(2)
			c := iq.NewCallee(rc)
			defer c.Close()
			gate := make(chan struct{})
			c.Set(orderNS, "push", func(_ context.Context, req *iq.IQ) (*iq.Element, error) {
				if pushNumber(req) == 0 {
					<-gate
				}
				return nil, nil
			}, iq.OrderedBySender())
			c.Receive(context.Background(), orderReq(tc.a, "a", 0))
			c.Receive(context.Background(), orderReq(tc.b, "b", 1))
			if tc.oneQueue {
				// b waits behind a: nothing is answered until a returns.
				time.Sleep(20 * time.Millisecond)
				assert.Zero(t, rc.count(), "b ran beside a: not one sender")
			} else {
				require.Eventually(t, func() bool { return rc.reply("b") != nil }, calleeWaitFor, time.Millisecond,
					"b waited behind a: one sender")
			}
			close(gate)
			rc.wait(t)
		})
	}
}

type rosterQuery struct {
	XMLName xml.Name     `xml:"jabber:iq:roster query"`
	Ver     string       `xml:"ver,attr,omitempty"`
	Items   []rosterItem `xml:"item"`
}

type rosterItem struct {
	JID          string `xml:"jid,attr"`
	Subscription string `xml:"subscription,attr,omitempty"`
}

// TestBugRosterPushesHandledOutOfOrder: 2,000 roster pushes, sent in
// order by one server, were handled out of order (at 197 points when the
// bug was reported), as handlers run concurrently. With OrderedBySender
// on a typed handler they are handled in the order received; without it
// the inversions are only logged, as they are a matter of scheduling.
func TestBugRosterPushesHandledOutOfOrder(t *testing.T) {
	defer goleak.VerifyNone(t)
	const pushes = 2000
	for _, tc := range []struct {
		name    string
		opts    []iq.Middleware
		ordered bool
	}{
		{"unordered (logged only)", nil, false},
		{"OrderedBySender", []iq.Middleware{iq.OrderedBySender(), iq.MaxQueued(pushes)}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := newReplyCounter(pushes)
			// Every push is admitted at once, however fast they come: the
			// cap and the queue bound are raised past the burst.
			c := iq.NewCallee(rc, iq.WithMaxInFlight(pushes))
			defer c.Close()
			var mu sync.Mutex
			var seen []int
			iq.HandleSet(c, func(_ context.Context, q *rosterQuery) (*iq.Element, error) {
				v, err := strconv.Atoi(q.Ver)
				if err != nil {
					return nil, err
				}
				mu.Lock()
				seen = append(seen, v)
				mu.Unlock()
				return nil, nil
			}, append([]iq.Middleware{iq.Allow(iq.OwnAccount("romeo@example.net/orchard"))}, tc.opts...)...)
			for i := range pushes {
				c.Receive(context.Background(), iqtest.NewRequest(fmt.Sprintf(
					`<iq type='set' id='push%d'><query xmlns='jabber:iq:roster' ver='%d'><item jid='c%d@example.com' subscription='both'/></query></iq>`,
					i, i, i)))
			}
			rc.wait(t)
			require.NoError(t, c.Drain(context.Background()))
			assert.Equal(t, pushes, rc.results)
			mu.Lock()
			defer mu.Unlock()
			if tc.ordered {
				assertInOrder(t, seen, pushes, "roster pushes")
				return
			}
			inversions := 0
			for i := 1; i < len(seen); i++ {
				if seen[i] < seen[i-1] {
					inversions++
				}
			}
			t.Logf("without OrderedBySender: %d of %d pushes handled after a later one", inversions, pushes)
		})
	}
}

func TestOrdered_RouteOptionsMisused(t *testing.T) {
	ok := func(context.Context, *iq.IQ) (*iq.Element, error) { return nil, nil }
	okTyped := func(context.Context, *rosterQuery) (*iq.Element, error) { return nil, nil }
	for _, tc := range []struct {
		name string
		do   func(c *iq.Callee)
		want string
	}{
		{"Use with Ordered", func(c *iq.Callee) { c.Use(iq.Ordered()) },
			"iq: Use: a route option (Ordered, OrderedBySender, MaxQueued) is given to Handle, HandleGet or HandleSet"},
		{"Use with MaxQueued", func(c *iq.Callee) { c.Use(iq.Timeout(time.Second), iq.MaxQueued(3)) },
			"iq: Use: a route option (Ordered, OrderedBySender, MaxQueued) is given to Handle, HandleGet or HandleSet"},
		{"MaxQueued alone", func(c *iq.Callee) { c.Set(orderNS, "push", ok, iq.MaxQueued(3)) },
			"iq: Set: MaxQueued without Ordered or OrderedBySender"},
		{"MaxQueued alone, typed", func(c *iq.Callee) { iq.HandleSet(c, okTyped, iq.MaxQueued(3)) },
			"iq: HandleSet: MaxQueued without Ordered or OrderedBySender"},
		{"MaxQueued negative", func(*iq.Callee) { iq.MaxQueued(-1) }, "iq: MaxQueued: negative count -1"},
		{"nil middleware on Handle", func(c *iq.Callee) {
			c.Handle(iq.TypeGet, orderNS, "push", iq.HandlerFunc(ok), iq.OrderedBySender(), nil)
		}, "iq: Handle: nil middleware"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := iq.NewCallee(iqtest.NewRecorder())
			assert.PanicsWithValue(t, tc.want, func() { tc.do(c) })
		})
	}
}

// TestOrdered_MiddlewareStillWraps checks that the route's middleware
// given beside a route option wraps the handler, in order, and that the
// Callee's own wrap them.
func TestOrdered_MiddlewareStillWraps(t *testing.T) {
	defer goleak.VerifyNone(t)
	rc := newReplyCounter(2)
	c := iq.NewCallee(rc)
	defer c.Close()
	var mu sync.Mutex
	var trail []string
	mark := func(name string) iq.Middleware {
		return func(next iq.Handler) iq.Handler {
			return iq.HandlerFunc(func(ctx context.Context, req *iq.IQ) (*iq.Element, error) {
				mu.Lock()
				trail = append(trail, name)
				mu.Unlock()
				return next.HandleIQ(ctx, req)
			})
		}
	}
	c.Use(mark("use"))
	c.Set(orderNS, "push", func(context.Context, *iq.IQ) (*iq.Element, error) { return nil, nil },
		mark("outer"), iq.OrderedBySender(), mark("inner"))
	c.Receive(context.Background(), orderReq("a@example.com", "1", 1))
	c.Receive(context.Background(), iqtest.NewRequest(`<iq type='set' id='2'><push xmlns='urn:example:order' n='x'/><x xmlns='u:x'/></iq>`))
	rc.wait(t)
	require.NoError(t, c.Drain(context.Background()))
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []string{"use", "outer", "inner"}, trail)
	calleeAssertErrorReply(t, rc.reply("2"), iq.Modify, iq.BadRequest)
}

// benchOrdered feeds b.N requests from 64 senders, each from its own
// goroutine, to a route whose handler does a little work, and waits for
// every reply. Each sender keeps at most window requests outstanding, so
// that nothing is refused.
func benchOrdered(b *testing.B, window int, opts ...iq.Middleware) {
	const senders = 64
	var replies atomic.Int64
	done := make(chan struct{})
	sems := make(map[string]chan struct{}, senders)
	reqs := make([]*iq.IQ, senders)
	for s := range senders {
		from := fmt.Sprintf("s%d@example.com/r", s)
		sems[from] = make(chan struct{}, window)
		reqs[s] = orderReq(from, "x", s)
	}
	total := int64(b.N)
	sender := iq.SenderFunc(func(_ context.Context, out *iq.IQ) error {
		if out.Type != iq.TypeResult {
			b.Errorf("refused: %v", out.Error)
		}
		<-sems[out.To]
		if replies.Add(1) == total {
			close(done)
		}
		return nil
	})
	c := iq.NewCallee(sender, iq.WithMaxInFlight(senders*window))
	defer c.Close()
	c.Set(orderNS, "push", func(_ context.Context, req *iq.IQ) (*iq.Element, error) {
		h := uint64(14695981039346656037)
		for i := range 200 { // a little work, as a real handler does
			h = (h ^ uint64(i)) * 1099511628211
		}
		if h == 0 {
			return nil, fmt.Errorf("unreachable")
		}
		return nil, nil
	}, opts...)
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	for s := range senders {
		n := b.N / senders
		if s < b.N%senders {
			n++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, sem := reqs[s], sems[reqs[s].From]
			for range n {
				sem <- struct{}{}
				c.Receive(context.Background(), req)
			}
		}()
	}
	wg.Wait()
	if b.N > 0 {
		<-done
	}
}

// benchWindows are the requests each of the 64 senders keeps
// outstanding: 1,000 as the test (64,000 at once), and 4 (256).
var benchWindows = []int{1000, 4}

// BenchmarkOrdered and BenchmarkUnordered compare a route ordered by
// sender with an unordered one, under 64 senders at once.
func BenchmarkOrdered(b *testing.B) {
	for _, w := range benchWindows {
		b.Run("window="+strconv.Itoa(w), func(b *testing.B) {
			benchOrdered(b, w, iq.OrderedBySender(), iq.MaxQueued(w))
		})
	}
}

// BenchmarkUnordered is BenchmarkOrdered's baseline.
func BenchmarkUnordered(b *testing.B) {
	for _, w := range benchWindows {
		b.Run("window="+strconv.Itoa(w), func(b *testing.B) { benchOrdered(b, w) })
	}
}
