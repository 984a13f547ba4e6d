package iq

import (
	"runtime"
	"time"
)

// collectedCount runs the collector until collected has received n
// values (each sent by a runtime.AddCleanup), or for at most five
// seconds, and returns how many it received.
func collectedCount(collected <-chan struct{}, n int) int {
	deadline := time.Now().Add(5 * time.Second)
	got := 0
	for got < n && time.Now().Before(deadline) {
		runtime.GC()
		select {
		case <-collected:
			got++
		case <-time.After(10 * time.Millisecond):
		}
	}
	return got
}
