package iq_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/xmpp-iq/iq"
)

// TestBugInFlightPassesCap: Receive added one to the in-flight count
// before checking it against the cap, and took it back when over, so
// that InFlight could read the cap plus one while a flood was refused.
// A sampler reads InFlight throughout a flood of requests over a full
// cap and must never see more than the cap.
func TestBugInFlightPassesCap(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	const maxInFlight, flooders, perFlooder = 4, 8, 20000
	var refused atomic.Int64
	c := iq.NewCallee(iq.SenderFunc(func(context.Context, *iq.IQ) error {
		refused.Add(1)
		return nil
	}), iq.WithMaxInFlight(maxInFlight))
	release := make(chan struct{})
	c.Get("urn:example:flood", "q", func(context.Context, *iq.IQ) (*iq.Element, error) {
		<-release
		return nil, nil
	})
	req := &iq.IQ{Type: iq.TypeGet, ID: "f", From: "x@example.com/r", Payload: iq.NewElement("urn:example:flood", "q")}
	for range maxInFlight {
		c.Receive(context.Background(), req)
	}
	require.Eventually(t, func() bool { return c.InFlight() == maxInFlight }, 5*time.Second, time.Millisecond)

	stop := make(chan struct{})
	var most atomic.Int64
	var sampler sync.WaitGroup
	sampler.Add(1)
	go func() {
		defer sampler.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if n := int64(c.InFlight()); n > most.Load() {
				most.Store(n)
			}
		}
	}()
	var flood sync.WaitGroup
	for range flooders {
		flood.Add(1)
		go func() {
			defer flood.Done()
			for range perFlooder {
				c.Receive(context.Background(), req)
			}
		}()
	}
	flood.Wait()
	close(stop)
	sampler.Wait()
	close(release)
	c.Close()

	assert.EqualValues(t, flooders*perFlooder, refused.Load(), "every request over the cap is refused")
	assert.LessOrEqual(t, most.Load(), int64(maxInFlight), "InFlight passed the cap")
	require.Eventually(t, func() bool { return c.InFlight() == 0 }, 5*time.Second, time.Millisecond)
}
