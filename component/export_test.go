package component

import "time"

// Clock is the Supervisor's clock, for tests to replace.
type Clock = clock

// WithClock replaces the Supervisor's clock.
func WithClock(c Clock) Option { return func(cfg *supervisorConfig) { cfg.clock = c } }

// WithRand replaces the Supervisor's jitter: rnd(n) draws from [0, n).
func WithRand(rnd func(n int64) int64) Option { return func(cfg *supervisorConfig) { cfg.rand = rnd } }

// Backoff is the wait before the dial that follows n failures in a row.
func Backoff(n int, min, max time.Duration, rnd func(int64) int64) time.Duration {
	return backoff(n, min, max, rnd)
}

// WritesUnderWay is how many writes the Pool counts as under way, all
// connections together.
func WritesUnderWay(p *Pool) int {
	n := 0
	for k := range p.inflight {
		n += int(p.inflight[k].Load())
	}
	return n
}

// WithStallAfter replaces a Pool's stallAfter.
func WithStallAfter(d time.Duration) Option { return func(cfg *supervisorConfig) { cfg.poolStall = d } }

// RunLength is how many requests in a row a Pool may send on one
// connection, each joining a write under way there.
const RunLength = runLength

// StallAfter is how long a Pool's connection may go without a write
// written whole, its writes under way, before it counts as backed up.
const StallAfter = stallAfter
