package iq_test

import (
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xmpp-iq/iq"
)

// TestExpvarMetricsConcurrentCounts reports from many goroutines at once,
// while String is read: no count is lost, and each payload's latency
// keeps its count, total and max.
func TestExpvarMetricsConcurrentCounts(t *testing.T) {
	m := iq.NewExpvarMetrics()
	const workers, each = 8, 500
	var wg sync.WaitGroup
	stop := make(chan struct{})
	go func() { // a reader all along: String must not race with the counts
		for {
			select {
			case <-stop:
				return
			default:
				_ = m.String()
			}
		}
	}()
	for w := range workers {
		wg.Go(func() {
			local := "q" + strconv.Itoa(w%2)
			for i := range each {
				m.Request("urn:example:c", local)
				cond := iq.Condition("")
				if i%5 == 0 {
					cond = iq.ItemNotFound
				}
				m.Reply("urn:example:c", local, cond, time.Duration(w*each+i))
				m.CallStart("urn:example:c", local)
				m.CallEnd("urn:example:c", local, iq.OutcomeResult, "", time.Duration(i))
			}
		})
	}
	wg.Wait()
	close(stop)

	s := snapshot(t, m)
	for _, local := range []string{"q0", "q1"} {
		key := "{urn:example:c}" + local
		assert.EqualValues(t, workers/2*each, s.Requests[key], key)
		require.Contains(t, s.Latency, key)
		assert.EqualValues(t, workers/2*each, s.Latency[key].Count, key)
	}
	// The workers of q1 are the odd ones, the last of which reported the
	// largest latency of all.
	assert.EqualValues(t, (workers-1)*each+each-1, s.Latency["{urn:example:c}q1"].Max)
	assert.EqualValues(t, workers*each/5, s.Replies["item-not-found"])
	assert.EqualValues(t, workers*each-workers*each/5, s.Replies["result"])
	assert.Empty(t, s.Timeouts, "no payload timed out")
}

// TestExpvarMetricsOneClarkNameTwoPayloads: two payload names with one
// Clark name ("{a}b}c") were counted together, and must still be; with a
// count per payload, String showed one of the two, whichever it met last.
func TestExpvarMetricsOneClarkNameTwoPayloads(t *testing.T) {
	m := iq.NewExpvarMetrics()
	m.Request("a}b", "c")
	m.Reply("a}b", "c", "", 10)
	m.Request("a", "b}c")
	m.Request("a", "b}c")
	m.Reply("a", "b}c", "", 30)
	s := snapshot(t, m)
	assert.EqualValues(t, 3, s.Requests["{a}b}c"])
	assert.EqualValues(t, 2, s.Latency["{a}b}c"].Count)
	assert.EqualValues(t, 40, s.Latency["{a}b}c"].Total)
	assert.EqualValues(t, 30, s.Latency["{a}b}c"].Max)
}

// TestExpvarMetricsZeroValue: the zero value counts, as NewExpvarMetrics'
// does.
func TestExpvarMetricsZeroValue(t *testing.T) {
	var m iq.ExpvarMetrics
	m.Request("urn:example:z", "q")
	m.DroppedReply()
	s := snapshot(t, &m)
	assert.EqualValues(t, 1, s.Requests["{urn:example:z}q"])
	assert.EqualValues(t, 1, s.Dropped)
}
