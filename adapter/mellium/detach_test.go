package melliumiq_test

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"

	"github.com/xmpp-iq/iq"
	melliumiq "github.com/xmpp-iq/iq/adapter/mellium"
)

// hookCtx is a context with an AfterFunc method, as the contexts of iq's
// Caller and Callee have: the test runs the registered function itself.
type hookCtx struct {
	context.Context
	mu      sync.Mutex
	f       func()
	stopped bool
}

func (c *hookCtx) AfterFunc(f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.f = f
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		was := !c.stopped
		c.stopped = true
		return was
	}
}

// end runs the registered function, as a context that ends does, even
// after stop (as one that had ended already does, on a goroutine).
func (c *hookCtx) end() {
	c.mu.Lock()
	f := c.f
	c.mu.Unlock()
	f()
}

func ended(ctx context.Context) bool {
	select {
	case <-ctx.Done():
		return true
	default:
		return false
	}
}

// The context mellium is given ends while the send is under way, when the
// Sender's context does or at the write deadline, and never after.
func TestDetach(t *testing.T) {
	t.Run("ends with the context while the send is under way", func(t *testing.T) {
		ctx := &hookCtx{Context: context.Background()}
		wctx, stop := melliumiq.Detach(ctx, time.Now().Add(time.Hour), true)
		require.False(t, ended(wctx))
		ctx.end()
		require.True(t, ended(wctx))
		assert.ErrorIs(t, context.Cause(wctx), context.Canceled)
		stop()
		assert.True(t, ctx.stopped, "stop unregisters from the context")
	})
	t.Run("never ends after stop", func(t *testing.T) {
		ctx := &hookCtx{Context: context.Background()}
		wctx, stop := melliumiq.Detach(ctx, time.Now().Add(time.Hour), true)
		stop()
		ctx.end()
		assert.False(t, ended(wctx))
	})
	t.Run("ends at a deadline that is not the context's", func(t *testing.T) {
		ctx := &hookCtx{Context: context.Background()}
		wctx, stop := melliumiq.Detach(ctx, time.Now().Add(20*time.Millisecond), false)
		defer stop()
		select {
		case <-wctx.Done():
			assert.ErrorIs(t, context.Cause(wctx), context.DeadlineExceeded)
		case <-time.After(5 * time.Second):
			t.Fatal("the write deadline did not end the context")
		}
	})
	t.Run("no timer for the context's own deadline", func(t *testing.T) {
		ctx := &hookCtx{Context: context.Background()}
		wctx, stop := melliumiq.Detach(ctx, time.Now().Add(-time.Second), true)
		defer stop()
		// A past deadline that is ctx's own is ctx's to act on.
		time.Sleep(20 * time.Millisecond)
		assert.False(t, ended(wctx))
	})
	t.Run("a deadline timer that fires after stop", func(t *testing.T) {
		ctx := &hookCtx{Context: context.Background()}
		wctx, stop := melliumiq.Detach(ctx, time.Now().Add(5*time.Millisecond), false)
		stop()
		time.Sleep(30 * time.Millisecond)
		assert.False(t, ended(wctx))
	})
	t.Run("any other context, watched by a goroutine", func(t *testing.T) {
		base, cancel := context.WithCancel(context.Background())
		wctx, stop := melliumiq.Detach(base, time.Time{}, false)
		cancel()
		select {
		case <-wctx.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("the context's end did not reach mellium's")
		}
		stop()
	})
}

// stalledSession returns a ready client session whose server sends its
// stream header and reads nothing (the negotiation writes nothing), so
// that writes block.
func stalledSession(t *testing.T) *xmpp.Session {
	t.Helper()
	c, srv := net.Pipe()
	t.Cleanup(func() { _ = c.Close(); _ = srv.Close() })
	go func() {
		_, _ = io.WriteString(srv, `<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' `+
			`from='localhost' to='`+fakeJID+`' id='stalled' version='1.0'>`)
	}()
	s, err := xmpp.NewSession(context.Background(), jid.MustParse("localhost"), jid.MustParse(fakeJID), c, xmpp.Secure|xmpp.Authn, headerOnly)
	require.NoError(t, err)
	return s
}

// A request whose write the server does not read ends at its timeout, and
// so does the write: the Caller's context, watched with no goroutine of
// the Sender's own, cuts it short.
func TestSendBlockedEndsAtTimeout(t *testing.T) {
	session := stalledSession(t)
	snd := melliumiq.NewSender(session)
	sent := make(chan error, 1)
	ep := iq.NewEndpoint(iq.SenderFunc(func(ctx context.Context, in *iq.IQ) error {
		err := snd.SendIQ(ctx, in)
		sent <- err
		return err
	}), iq.WithTimeout(200*time.Millisecond))
	defer ep.Close()
	got := make(chan error, 1)
	go func() {
		_, err := ep.Caller.Get(context.Background(), "localhost", iq.NewElement(nsTest, "echo"))
		got <- err
	}()
	select {
	case err := <-got:
		assert.ErrorIs(t, err, iq.ErrTimeout)
	case <-time.After(5 * time.Second):
		_ = session.Conn().Close() // so that the write, Get and ep.Close return
		t.Fatal("the request outlived its timeout: its write was not cut short")
	}
	assert.Error(t, <-sent, "the write was cut short")
}
