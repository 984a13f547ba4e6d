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
