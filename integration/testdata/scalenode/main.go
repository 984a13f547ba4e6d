// Command scalenode is one process of a scaled-out component for the
// integration tests (integration/scaleout_test.go): it serves the public
// domain with a Pool of two connections and its node domain with a Pool
// of one, from which it makes its own calls, as docs/components-at-scale.md
// describes.
//
//	scalenode INDEX ADDR PUBLIC PUBLICSECRET NODE NODESECRET
//
// It prints "node up" when its node domain is connected and "public up"
// whenever a public connection comes up. It reads commands on stdin:
// "call DOMAIN N" makes N calls, 32 at a time, to DOMAIN and prints
// "called ok=K lost=L pending=P"; at the end of stdin it shuts down and
// exits. "call DOMAIN N cut" does the same, but closes the node domain's
// TCP connection under the calls once a tenth of them are answered (a
// stream that dies, as when its server or the network goes), and prints
// before "called" the line "cut lost=C within=D other=O": C calls failed
// with iq.ErrConnectionLost, the last D milliseconds after the cut, and
// O failed otherwise. The Pool dials again after its backoff and the
// calls made after the cut go out on the new stream.
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/component"
	"github.com/xmpp-iq/iq/stream"
)

const nsEcho = "urn:example:echo"

// inFlight bounds a process's calls under way at once: ejabberd answers
// a burst of hundreds at once on one connection with
// wait/resource-constraint, which is flow control, not a lost reply.
const inFlight = 32

var outMu sync.Mutex

func say(format string, args ...any) {
	outMu.Lock()
	defer outMu.Unlock()
	fmt.Printf(format+"\n", args...)
}

func main() {
	if len(os.Args) != 7 {
		fmt.Fprintln(os.Stderr, "usage: scalenode INDEX ADDR PUBLIC PUBLICSECRET NODE NODESECRET")
		os.Exit(2)
	}
	index, addr, public, publicSecret, node, nodeSecret := os.Args[1], os.Args[2], os.Args[3], os.Args[4], os.Args[5], os.Args[6]
	backoff := component.WithBackoff(50*time.Millisecond, 500*time.Millisecond)
	publicPool := component.NewPool(2, "tcp", addr, public, publicSecret, backoff,
		component.WithNotify(func(e component.Event) {
			if e.State == component.Connected {
				say("public up")
			}
		}))
	// The node domain's TCP connection, for "cut".
	var nodeTCP struct {
		sync.Mutex
		c net.Conn
	}
	dialNode := component.WithDialer(func(ctx context.Context) (*stream.Conn, error) {
		ctx, cancel := context.WithTimeout(ctx, component.DefaultHandshakeTimeout)
		defer cancel()
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("scalenode: %w", err)
		}
		conn, err := component.Connect(ctx, c, node, nodeSecret)
		if err != nil {
			_ = c.Close()
			return nil, err
		}
		nodeTCP.Lock()
		nodeTCP.c = c
		nodeTCP.Unlock()
		return conn, nil
	})
	nodePool := component.NewPool(1, "tcp", addr, node, nodeSecret, backoff, dialNode,
		component.WithNotify(func(e component.Event) {
			if e.State == component.Connected {
				say("node up")
			}
		}))
	serving := iq.NewEndpoint(publicPool, iq.WithLocalJID(public))
	own := iq.NewEndpoint(nodePool, iq.WithLocalJID(node))
	for _, ep := range []*iq.Endpoint{serving, own} {
		ep.Callee.Get(nsEcho, "echo", func(ctx context.Context, req *iq.IQ) (*iq.Element, error) {
			return iq.NewElement(nsEcho, "echo").SetAttr("node", index).AppendText(req.Payload.Text()), nil
		})
	}
	var wg sync.WaitGroup
	for _, p := range []struct {
		pool *component.Pool
		ep   *iq.Endpoint
	}{{publicPool, serving}, {nodePool, own}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.pool.Run(context.Background(), p.ep, nil); err != nil {
				fmt.Fprintln(os.Stderr, "scalenode: run:", err)
			}
		}()
	}

	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		if len(f) < 3 || len(f) > 4 || f[0] != "call" || (len(f) == 4 && f[3] != "cut") {
			fmt.Fprintln(os.Stderr, "scalenode: bad command:", in.Text())
			continue
		}
		n, _ := strconv.Atoi(f[2])
		var ok, lost atomic.Int64
		// With "cut": when the connection was closed, and the calls that
		// failed for it (the latest failure's time) or otherwise.
		var cut struct {
			sync.Mutex
			at, last    time.Time
			lost, other int
		}
		if len(f) == 4 {
			go func() {
				for ok.Load() < int64(n/10) {
					time.Sleep(time.Millisecond)
				}
				nodeTCP.Lock()
				defer nodeTCP.Unlock()
				cut.Lock()
				cut.at = time.Now()
				cut.Unlock()
				_ = nodeTCP.c.Close()
			}()
		}
		var calls sync.WaitGroup
		slots := make(chan struct{}, inFlight)
		for c := range n {
			calls.Add(1)
			slots <- struct{}{}
			go func() {
				defer calls.Done()
				defer func() { <-slots }()
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				want := fmt.Sprintf("node %s call %d", index, c)
				res, err := own.Caller.Get(ctx, f[1], iq.NewElement(nsEcho, "echo").AppendText(want))
				if err != nil || res == nil || res.Text() != want {
					lost.Add(1)
					cut.Lock()
					defer cut.Unlock()
					if errors.Is(err, iq.ErrConnectionLost) && !cut.at.IsZero() {
						cut.lost++
						cut.last = time.Now()
						return
					}
					cut.other++
					fmt.Fprintf(os.Stderr, "scalenode %s: call %d: %v %v\n", index, c, res, err)
					return
				}
				ok.Add(1)
			}()
		}
		calls.Wait()
		if len(f) == 4 {
			say("cut lost=%d within=%d other=%d", cut.lost, cut.last.Sub(cut.at).Milliseconds(), cut.other)
		}
		say("called ok=%d lost=%d pending=%d", ok.Load(), lost.Load(), own.Caller.Pending())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = publicPool.Shutdown(ctx)
	_ = nodePool.Shutdown(ctx)
	wg.Wait()
}
