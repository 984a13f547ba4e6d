package bench

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
)

// drive runs op b.N times with n calls outstanding at once and reports
// allocations: ns/op is wall time per call, so with n > 1 it is the
// inverse of throughput. The first error op returns fails the benchmark;
// every op checks the answer it got, so that a broken peer cannot pass for
// a fast one.
func drive(b *testing.B, n int, op func(context.Context) error) {
	b.ReportAllocs()
	b.ResetTimer()
	err := runN(context.Background(), b.N, n, op)
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
}

// runN calls op total times from n goroutines (from this one when n is 1),
// which take the calls from a shared counter. It returns the first error.
func runN(ctx context.Context, total, n int, op func(context.Context) error) error {
	if n <= 1 {
		for range total {
			if err := op(ctx); err != nil {
				return err
			}
		}
		return nil
	}
	var (
		next  atomic.Int64
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for range n {
		wg.Go(func() {
			for next.Add(1) <= int64(total) {
				if err := op(ctx); err != nil {
					once.Do(func() { first = err })
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}
