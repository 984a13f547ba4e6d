package iq_test

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xmpp-iq/iq"
)

// route is a stream a forwarding Sender may pick: it records what it sent.
type route struct {
	mu   sync.Mutex
	sent []string
}

func (r *route) SendIQ(_ context.Context, i *iq.IQ) error {
	r.mu.Lock()
	r.sent = append(r.sent, i.ID)
	r.mu.Unlock()
	return nil
}

// picker forwards each request to the route its id names, through SendVia,
// after wrapping the context as a Sender in between might.
type picker struct{ routes map[string]*route }

type ctxKey struct{}

func (p picker) SendIQ(ctx context.Context, i *iq.IQ) error {
	r := p.routes[i.ID[:1]]
	if r == nil {
		return nil // sent nowhere known: only a deadline or Close ends it
	}
	return iq.SendVia(context.WithValue(ctx, ctxKey{}, 1), r, i)
}

func TestFailSentVia(t *testing.T) {
	a, b := &route{}, &route{}
	c := iq.NewCaller(picker{map[string]*route{"a": a, "b": b}}, iq.WithTimeout(time.Minute))
	defer c.Close()
	calls := map[string]*iq.Call{}
	for _, id := range []string{"a1", "a2", "b1", "x1"} {
		calls[id] = c.Go(context.Background(), &iq.IQ{ID: id, Type: iq.TypeGet, Payload: iq.NewElement("urn:t", "q")}, nil)
	}
	require.Equal(t, 4, c.Pending())

	cause := errors.New("stream: transport: broken pipe")
	assert.Equal(t, 2, c.FailSentVia(a, cause))
	for _, tc := range []struct {
		id   string
		lost bool
	}{{"a1", true}, {"a2", true}, {"b1", false}, {"x1", false}} {
		t.Run(tc.id, func(t *testing.T) {
			call := calls[tc.id]
			if !tc.lost {
				select {
				case <-call.Done:
					t.Fatalf("%s ended: %v", tc.id, call.Err)
				default:
				}
				return
			}
			select {
			case <-call.Done:
			case <-time.After(5 * time.Second):
				t.Fatal("not failed")
			}
			assert.ErrorIs(t, call.Err, iq.ErrConnectionLost)
			assert.ErrorIs(t, call.Err, iq.ErrClosed)
			assert.ErrorIs(t, call.Err, cause)
			assert.EqualError(t, call.Err, "iq: request "+tc.id+": connection lost: stream: transport: broken pipe")
		})
	}
	assert.Equal(t, 2, c.Pending())
	assert.Equal(t, 0, c.FailSentVia(a, nil), "a request fails once")

	// The Caller stays open: a new request goes out, and b's is answered.
	call := c.Go(context.Background(), &iq.IQ{ID: "a3", Type: iq.TypeGet, Payload: iq.NewElement("urn:t", "q")}, nil)
	assert.Equal(t, 1, c.FailSentVia(a, nil))
	<-call.Done
	assert.EqualError(t, call.Err, "iq: request a3: connection lost")
	assert.True(t, c.Receive(&iq.IQ{ID: "b1", Type: iq.TypeResult}))
}

// A Caller whose own Sender is the stream needs no SendVia.
func TestFailSentViaOwnSender(t *testing.T) {
	r := &route{}
	c := iq.NewCaller(r, iq.WithTimeout(time.Minute))
	defer c.Close()
	call := c.Go(context.Background(), &iq.IQ{Type: iq.TypeSet, Payload: iq.NewElement("urn:t", "q")}, nil)
	assert.Equal(t, 1, c.FailSentVia(r, io.EOF))
	<-call.Done
	assert.ErrorIs(t, call.Err, iq.ErrConnectionLost)
	assert.ErrorIs(t, call.Err, io.EOF)

	// A Sender that cannot be compared is never matched, and never panics.
	f := iq.NewCaller(iq.SenderFunc(func(context.Context, *iq.IQ) error { return nil }))
	defer f.Close()
	f.Go(context.Background(), &iq.IQ{Type: iq.TypeSet, Payload: iq.NewElement("urn:t", "q")}, nil)
	assert.Equal(t, 0, f.FailSentVia(r, nil))
}

func TestSendViaPanics(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    iq.Sender
		msg  string
	}{
		{"nil", nil, "iq: SendVia: nil Sender"},
		{"not comparable", iq.SenderFunc(func(context.Context, *iq.IQ) error { return nil }),
			"iq: SendVia: a iq.SenderFunc cannot be compared, so its requests could not be found again"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.PanicsWithValue(t, tc.msg, func() { _ = iq.SendVia(context.Background(), tc.s, &iq.IQ{}) })
		})
	}
}

// SendVia outside a Caller's send (a reply, say) only sends.
func TestSendViaReply(t *testing.T) {
	r := &route{}
	require.NoError(t, iq.SendVia(context.Background(), r, &iq.IQ{ID: "r1", Type: iq.TypeResult}))
	assert.Equal(t, []string{"r1"}, r.sent)
}
