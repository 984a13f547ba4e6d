package iq

import (
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"
)

// ExpvarMetrics is a Metrics that keeps counts in memory and shows them as
// an expvar.Var, its String method rendering them as JSON:
//
//	m := iq.NewExpvarMetrics()
//	expvar.Publish("iq", m) // served at /debug/vars by package expvar
//
// (This package does not import expvar, which would register its HTTP
// handler in every program that uses iq.) The JSON object has the keys
// requests, replies, latency_ns, timeouts (objects by payload name, in
// Clark notation "{namespace}local", or by reply: "result" or the
// condition), dropped_replies and spoofed_responses. latency_ns holds, per
// payload name, the count, total and max of the handlers' latencies.
//
// It implements CallMetrics too, so that the requests a Caller given it
// with WithMetrics makes are counted under calls, call_latency_ns (by
// payload name), call_outcomes (by Outcome, or by condition for an error
// reply) and pending (those not yet ended).
//
// The zero value is ready to use, as NewExpvarMetrics' is. An
// ExpvarMetrics is safe for concurrent use. Its counts are atomic, one
// set per payload name, made on the name's first event and kept: a
// request adds to its counts without a lock or an allocation, so that
// metrics cost little even with many goroutines reporting at once. String
// reads each count atomically, not all of them at one instant.
type ExpvarMetrics struct {
	methods      sync.Map // methodKey → *methodCounts
	replies      sync.Map // "result" or a condition → *atomic.Int64
	callOutcomes sync.Map // an Outcome, or a condition → *atomic.Int64

	dropped, spoofed, pending atomic.Int64
}

// methodKey names a payload: its namespace and local name.
type methodKey struct{ space, local string }

// methodCounts is what an ExpvarMetrics counts for one payload name.
type methodCounts struct {
	clark                     string // "{space}local", its key in the JSON
	requests, timeouts, calls atomic.Int64
	latency, callLatency      latencyCounts
}

// latencyCounts is the count, total and max of latencies.
type latencyCounts struct{ count, total, max atomic.Int64 }

func (l *latencyCounts) add(d time.Duration) {
	l.count.Add(1)
	l.total.Add(int64(d))
	for {
		m := l.max.Load()
		if int64(d) <= m || l.max.CompareAndSwap(m, int64(d)) {
			return
		}
	}
}

type latencyStats struct {
	Count int64 `json:"count"`
	Total int64 `json:"total"`
	Max   int64 `json:"max"`
}

// NewExpvarMetrics returns an ExpvarMetrics with every count at zero.
func NewExpvarMetrics() *ExpvarMetrics { return new(ExpvarMetrics) }

func clark(space, local string) string { return "{" + space + "}" + local }

// method returns the counts of space and local's payloads.
func (m *ExpvarMetrics) method(space, local string) *methodCounts {
	k := methodKey{space, local}
	if c, ok := m.methods.Load(k); ok {
		return c.(*methodCounts)
	}
	c, _ := m.methods.LoadOrStore(k, &methodCounts{clark: clark(space, local)})
	return c.(*methodCounts)
}

// countKey adds one to key's count in to.
func countKey(to *sync.Map, key string) {
	c, ok := to.Load(key)
	if !ok {
		c, _ = to.LoadOrStore(key, new(atomic.Int64))
	}
	c.(*atomic.Int64).Add(1)
}

// Request implements Metrics.
func (m *ExpvarMetrics) Request(space, local string) { m.method(space, local).requests.Add(1) }

// Reply implements Metrics.
func (m *ExpvarMetrics) Reply(space, local string, cond Condition, latency time.Duration) {
	key := "result"
	if cond != "" {
		key = string(cond)
	}
	countKey(&m.replies, key)
	m.method(space, local).latency.add(latency)
}

// CallStart implements CallMetrics.
func (m *ExpvarMetrics) CallStart(space, local string) {
	m.pending.Add(1)
	m.method(space, local).calls.Add(1)
}

// CallEnd implements CallMetrics.
func (m *ExpvarMetrics) CallEnd(space, local string, outcome Outcome, cond Condition, latency time.Duration) {
	m.pending.Add(-1)
	key := string(outcome)
	if outcome == OutcomeError && cond != "" {
		key = string(cond)
	}
	countKey(&m.callOutcomes, key)
	m.method(space, local).callLatency.add(latency)
}

// Timeout implements Metrics.
func (m *ExpvarMetrics) Timeout(space, local string) { m.method(space, local).timeouts.Add(1) }

// DroppedReply implements Metrics.
func (m *ExpvarMetrics) DroppedReply() { m.dropped.Add(1) }

// SpoofedResponse implements Metrics.
func (m *ExpvarMetrics) SpoofedResponse() { m.spoofed.Add(1) }

// String implements expvar.Var: the counts as a JSON object. A payload
// name is listed under a key only once it has counted something there.
func (m *ExpvarMetrics) String() string {
	v := struct {
		Requests map[string]int64         `json:"requests"`
		Replies  map[string]int64         `json:"replies"`
		Latency  map[string]*latencyStats `json:"latency_ns"`
		Timeouts map[string]int64         `json:"timeouts"`
		Dropped  int64                    `json:"dropped_replies"`
		Spoofed  int64                    `json:"spoofed_responses"`

		Calls        map[string]int64         `json:"calls"`
		CallOutcomes map[string]int64         `json:"call_outcomes"`
		CallLatency  map[string]*latencyStats `json:"call_latency_ns"`
		Pending      int64                    `json:"pending"`
	}{
		Requests: map[string]int64{}, Replies: countsOf(&m.replies), Latency: map[string]*latencyStats{},
		Timeouts: map[string]int64{}, Dropped: m.dropped.Load(), Spoofed: m.spoofed.Load(),
		Calls: map[string]int64{}, CallOutcomes: countsOf(&m.callOutcomes), CallLatency: map[string]*latencyStats{},
		Pending: m.pending.Load(),
	}
	m.methods.Range(func(_, c any) bool {
		mc := c.(*methodCounts)
		putCount(v.Requests, mc.clark, mc.requests.Load())
		putCount(v.Timeouts, mc.clark, mc.timeouts.Load())
		putCount(v.Calls, mc.clark, mc.calls.Load())
		putLatency(v.Latency, mc.clark, &mc.latency)
		putLatency(v.CallLatency, mc.clark, &mc.callLatency)
		return true
	})
	b, err := json.Marshal(v)
	if err != nil { // cannot happen with these types
		return "{}"
	}
	return string(b)
}

func countsOf(from *sync.Map) map[string]int64 {
	counts := map[string]int64{}
	from.Range(func(k, c any) bool {
		putCount(counts, k.(string), c.(*atomic.Int64).Load())
		return true
	})
	return counts
}

// putCount adds n to key's count in to, unless it is zero (a count made
// by a first event still under way, say). It adds rather than sets: two
// payload names can have one Clark name ("{a}b}c" for a}b and c, and for
// a and b}c), and their counts were always shown together.
func putCount(to map[string]int64, key string, n int64) {
	if n != 0 {
		to[key] += n
	}
}

// putLatency adds l to key's latency in to, as putCount does.
func putLatency(to map[string]*latencyStats, key string, l *latencyCounts) {
	n := l.count.Load()
	if n == 0 {
		return
	}
	s := to[key]
	if s == nil {
		s = new(latencyStats)
		to[key] = s
	}
	s.Count += n
	s.Total += l.total.Load()
	s.Max = max(s.Max, l.max.Load())
}
