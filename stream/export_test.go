package stream

// WriteQueueLimit sets c's bound on queued stanzas, for tests of the
// backpressure it applies.
func WriteQueueLimit(c *Conn, n int) {
	c.qmu.Lock()
	c.qmax = n
	c.qmu.Unlock()
}

// WriteQueueLen returns how many stanzas wait in c's write queue.
func WriteQueueLen(c *Conn) int {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	return c.qn
}

// WriteQueuePeak returns the most stanzas c's write queue has held.
func WriteQueuePeak(c *Conn) int {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	return c.qpeak
}

// WriteBusy reports whether c's senders yield before taking a free write
// lock (see yieldThenLead).
func WriteBusy(c *Conn) bool { return c.busy.Load() > 0 }

// BusyYields is how many lone writes make a busy stream quiet again.
const BusyYields = busyYields

// WriteQueueSlots returns how many entries c's write queue holds from its
// head, stanzas still queued and those abandoned by their senders alike.
func WriteQueueSlots(c *Conn) int {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	return len(c.q) - c.qhead
}

// EncodeHint is the size c remembers of the last stanza it encoded, if
// big (see getBuf).
func EncodeHint(c *Conn) int64 { return c.encHint.Load() }

// BigBufClass is bigClass, for tests of the buffer classes' bounds.
var BigBufClass = bigClass

// FitBuf is fitBuf: b encoded into a buffer of capacity c, as a queued
// stanza would then hold it; it returns the capacity held.
func FitBuf(c, n int) int {
	b := make([]byte, n, c)
	_, b = fitBuf(&b, b)
	return cap(b)
}
