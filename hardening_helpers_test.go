package iq_test

import (
	"runtime"
	"sync"
	"time"
)

// How long the hardening tests wait for something that must happen (a
// bound on a hang, never a speed requirement), and how often they look.
const (
	hardWait = 20 * time.Second
	hardTick = time.Millisecond
)

// hardHeap returns the live heap after a full collection.
func hardHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// hardMiB formats bytes as MiB.
func hardMiB(b uint64) float64 { return float64(b) / (1 << 20) }

// hardWarmGoroutines starts k goroutines at once and ends them. The
// runtime keeps every goroutine descriptor it ever made (on the heap,
// reused, never freed), so a test that will have k goroutines alive at
// once warms them first, to measure its own heap and not the runtime's.
func hardWarmGoroutines(k int) {
	var wg sync.WaitGroup
	gate := make(chan struct{})
	wg.Add(k)
	for range k {
		go func() {
			defer wg.Done()
			<-gate
		}()
	}
	close(gate)
	wg.Wait()
}
