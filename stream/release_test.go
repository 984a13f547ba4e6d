package stream_test

import (
	"context"
	"encoding/xml"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/stream"
)

// itemsPayload is a payload of n items whose attributes and text name
// tag: a tree big enough to be given back by IQ.Release.
func itemsPayload(tag string, n int) *iq.Element {
	q := iq.NewElement(hNS, "items")
	for i := range n {
		q.Append(iq.NewElement(hNS, "item", "n", fmt.Sprint(i)).AppendText(fmt.Sprintf("%s/%d", tag, i)))
	}
	return q
}

// servePair serves a client Endpoint and a server Endpoint made with
// opts over net.Pipe until the test ends.
func servePair(t *testing.T, opts ...iq.Option) (client, server *iq.Endpoint) {
	t.Helper()
	a, b := net.Pipe()
	ca, cb := stream.New(a), stream.New(b)
	client = iq.NewEndpoint(ca, opts...)
	server = iq.NewEndpoint(cb, opts...)
	var served sync.WaitGroup
	served.Go(func() { _ = ca.Serve(context.Background(), client, nil) })
	served.Go(func() { _ = cb.Serve(context.Background(), server, nil) })
	t.Cleanup(func() {
		_ = ca.Close()
		_ = cb.Close()
		served.Wait()
	})
	return client, server
}

// TestBugTimeoutHandlerReadItsReleasedRequest: Timeout answers for a
// handler slower than its deadline and leaves it running; with tree reuse
// the Callee then released the request under it, which read another
// stanza's elements (and Logging, inside Timeout, a nil Payload, so the
// request went unlogged). The tree of a request whose handler Timeout left
// running is not reused now, and its fields are left alone.
//
// TestBugTimeoutHandlerReadItsReleasedRequest/copied: with a middleware
// outside Timeout that passes on a copy of the request (iqotel's does when
// it reads trace context from the stanza), Timeout kept the copy's tree,
// which the copy did not own, and the Callee released it all the same.
func TestBugTimeoutHandlerReadItsReleasedRequest(t *testing.T) {
	leakCheck(t)
	copying := func(next iq.Handler) iq.Handler {
		return iq.HandlerFunc(func(ctx context.Context, req *iq.IQ) (*iq.Element, error) {
			c := *req
			return next.HandleIQ(ctx, &c)
		})
	}
	for _, tc := range []struct {
		name  string
		items int
		mw    []func(iq.Handler) iq.Handler
	}{
		{"small", 1, nil}, // a small tree and a big one
		{"big", 20, nil},
		{"copied", 20, []func(iq.Handler) iq.Handler{copying}},
	} {
		items := tc.items
		t.Run(tc.name, func(t *testing.T) {
			client, server := servePair(t, iq.WithTreeReuse())
			var logged syncBuffer
			server.Callee.Use(tc.mw...)
			server.Callee.Use(iq.Timeout(20*time.Millisecond), iq.Logging(slog.New(slog.NewTextHandler(&logged, nil))))
			release := make(chan struct{})
			unblock := sync.OnceFunc(func() { close(release) })
			t.Cleanup(unblock)
			seen := make(chan [2]string, 1)
			server.Callee.Get(hNS, "items", func(_ context.Context, req *iq.IQ) (*iq.Element, error) {
				if req.ID == "first" {
					return nil, nil
				}
				before := firstText(req.Payload)
				<-release // past its Timeout
				seen <- [2]string{before, firstText(req.Payload)}
				return nil, nil
			})
			// A first request, answered in time.
			_, err := client.Caller.Request(context.Background(), &iq.IQ{ID: "first", Type: iq.TypeGet, Payload: itemsPayload("w", items)})
			require.NoError(t, err)
			_, err = client.Caller.Request(context.Background(), &iq.IQ{ID: "slow", Type: iq.TypeGet, Payload: itemsPayload("x", items)})
			var serr *iq.StanzaError
			require.ErrorAs(t, err, &serr)
			require.Equal(t, iq.RemoteServerTimeout, serr.Condition)
			// More stanzas, whose trees may take what a release gave back.
			for i := range 5 {
				_, err = client.Caller.Request(context.Background(), &iq.IQ{ID: "first", Type: iq.TypeGet, Payload: itemsPayload(fmt.Sprint("y", i), items)})
				require.NoError(t, err)
			}
			unblock()
			var got [2]string
			select {
			case got = <-seen:
			case <-time.After(waitLong):
				t.Fatal("the handler Timeout left running never finished")
			}
			assert.Equal(t, "x/0", got[0])
			assert.Equal(t, "x/0", got[1], "the handler Timeout left running read another stanza's tree")
			assert.Eventually(t, func() bool { return strings.Contains(logged.String(), "id=slow") },
				waitLong, time.Millisecond, "Logging inside Timeout logged the slow request")
		})
	}
}

// firstText is the text of e's first child element, or "" (e nil, or
// cleared under its reader).
func firstText(e *iq.Element) string {
	for c := range e.Children() {
		return c.Text()
	}
	return ""
}

// TestReleaseLeavesTheRequestErrorValid: for an error reply, the error
// Caller.Request returns is the response's StanzaError, whose App was read
// into the response's tree; releasing the response leaves the error as it
// was.
func TestReleaseLeavesTheRequestErrorValid(t *testing.T) {
	leakCheck(t)
	client, server := servePair(t, iq.WithTreeReuse())
	// Each error's App is in a namespace of its own: a later stanza that
	// took a released tree's memory would show through.
	app := func(n string) *iq.Element {
		el := iq.NewElement("urn:test:app:"+n, "items")
		for i := range 12 {
			el.Append(iq.NewElement("urn:test:app:"+n, "item").AppendText(fmt.Sprint(i)))
		}
		return el
	}
	server.Callee.Get(hNS, "items", func(_ context.Context, req *iq.IQ) (*iq.Element, error) {
		return nil, &iq.StanzaError{Type: iq.Cancel, Condition: iq.ItemNotFound, App: app(req.ID)}
	})
	for i := range 4 { // past the first stanza, and with memory given back
		id := fmt.Sprint(i)
		resp, err := client.Caller.Request(context.Background(), &iq.IQ{ID: id, Type: iq.TypeGet, Payload: itemsPayload("x", 1)})
		require.Error(t, err)
		var serr *iq.StanzaError
		require.ErrorAs(t, err, &serr)
		text := err.Error()
		resp.Release()
		_, _ = client.Caller.Request(context.Background(), &iq.IQ{ID: id + "-next", Type: iq.TypeGet, Payload: itemsPayload("y", 1)})
		assert.Equal(t, text, err.Error())
		assert.True(t, app(id).Equal(serr.App), "App: %v", serr.App)
	}
}

// TestReleasedTreesAreNotSeenByOtherStanzas: with WithTreeReuse on both
// ends and IQ.Release on every response, the memory of each
// tree read is reused for later stanzas, and no stanza ever reads
// another's elements: many requests in flight at once, each echoed, each
// response checked whole before its release (and, with -race, no release
// races with the reader's reuse).
func TestReleasedTreesAreNotSeenByOtherStanzas(t *testing.T) {
	leakCheck(t)
	client, server := servePair(t, iq.WithTreeReuse())
	server.Callee.Get(hNS, "items", func(_ context.Context, req *iq.IQ) (*iq.Element, error) {
		return req.Payload, nil // an echo: the reply holds the request's tree
	})

	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 40 {
				tag := fmt.Sprintf("g%d-%d", g, i)
				want := itemsPayload(tag, 12+i%9)
				resp, err := client.Caller.Request(context.Background(), &iq.IQ{Type: iq.TypeGet, Payload: want})
				if !assert.NoError(t, err) {
					return
				}
				assert.True(t, want.Equal(resp.Payload), "%s: got %v", tag, resp.Payload)
				kept := slices.Collect(resp.Payload.Children())[3].Text()
				resp.Release()
				assert.Nil(t, resp.Payload)
				assert.Equal(t, tag+"/3", kept, "a string read from a tree outlives its Release")
			}
		})
	}
	wg.Wait()
}

// typedItems is itemsPayload as a struct.
type typedItems struct {
	XMLName xml.Name `xml:"urn:test:stream items"`
	Items   []struct {
		N    string `xml:"n,attr"`
		Text string `xml:",chardata"`
	} `xml:"item"`
}

// check asserts that v is itemsPayload(tag, n).
func (v *typedItems) check(t *testing.T, tag string, n int) {
	t.Helper()
	require.Len(t, v.Items, n)
	for i, it := range v.Items {
		assert.Equal(t, fmt.Sprint(i), it.N)
		assert.Equal(t, fmt.Sprintf("%s/%d", tag, i), it.Text)
	}
}

// GetAs decodes the response's payload into a struct, which keeps nothing
// of the tree but its strings: with tree reuse it releases the response,
// whose memory later stanzas take, and the struct stays whole; without,
// or when it returns the payload itself (Resp Element), it leaves the
// response alone.
func TestGetAsReleasesTheResponseItDecoded(t *testing.T) {
	for _, tc := range []struct {
		name     string
		reuse    bool
		element  bool
		released bool
	}{
		{"with tree reuse", true, false, true},
		{"without tree reuse", false, false, false},
		{"with tree reuse, Resp Element", true, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leakCheck(t)
			var (
				mu   sync.Mutex
				seen []*iq.IQ
			)
			hook := func(_ context.Context, _ *iq.IQ) (*iq.IQ, func(*iq.IQ, error)) {
				return nil, func(resp *iq.IQ, _ error) {
					mu.Lock()
					seen = append(seen, resp)
					mu.Unlock()
				}
			}
			opts := []iq.Option{iq.WithCallHook(hook)}
			if tc.reuse {
				opts = append(opts, iq.WithTreeReuse())
			}
			client, server := servePair(t, opts...)
			server.Callee.Get(hNS, "items", func(_ context.Context, req *iq.IQ) (*iq.Element, error) {
				return req.Payload.Copy(), nil
			})
			var (
				kept    []typedItems
				keptEls []iq.Element
			)
			const rounds, n = 6, 20
			for i := range rounds {
				tag := fmt.Sprintf("r%d", i)
				if tc.element {
					el, err := iq.GetAs[iq.Element](context.Background(), client.Caller, "", itemsPayload(tag, n))
					require.NoError(t, err)
					keptEls = append(keptEls, el)
				} else {
					v, err := iq.GetAs[typedItems](context.Background(), client.Caller, "", itemsPayload(tag, n))
					require.NoError(t, err)
					kept = append(kept, v)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			require.Len(t, seen, rounds)
			for i, resp := range seen {
				tag := fmt.Sprintf("r%d", i)
				assert.Equal(t, tc.released, resp.Payload == nil, "%s: response released", tag)
				if tc.element {
					assert.True(t, itemsPayload(tag, n).Equal(&keptEls[i]), "%s: the Element returned, after later stanzas: %v", tag, &keptEls[i])
				} else {
					kept[i].check(t, tag, n)
				}
			}
		})
	}
}
