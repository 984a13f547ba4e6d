package integration_test

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xmpp-iq/iq/internal/servertest"
)

// The scale-out tests' sizes: small by default, so that go test ./...
// stays fast; CI runs the full size (3,000 and 1,000) against
// ejabberd and the ejabberd cluster.
var (
	scaleCalls     = flag.Int("scale.calls", 300, "calls a client makes to the public domain in TestComponentScaleOutProcesses (CI: 3000)")
	scalePeerCalls = flag.Int("scale.peercalls", 300, "calls each process makes to a peer's node domain in TestComponentScaleOutProcesses (CI: 1000)")
)

// scaleProc is one OS process running testdata/scalenode.
type scaleProc struct {
	index int
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string // its stdout, line by line; closed at its end
	held  []string    // lines read by await but not yet awaited
	done  chan struct{}
}

func buildScaleNode(t *testing.T) string {
	bin := filepath.Join(t.TempDir(), "scalenode")
	out, err := exec.Command("go", "build", "-o", bin, "./testdata/scalenode").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin
}

// startScaleProc starts process index, connected to cluster node index
// modulo their number (on a cluster of two: 0 and 2 to the first node, 1
// to the second).
func startScaleProc(t *testing.T, bin string, index int) *scaleProc {
	node := env.Nodes[index]
	addr := env.CompAddrs[index%len(env.CompAddrs)]
	cmd := exec.Command(bin, strconv.Itoa(index), addr, env.Comp, env.CompSecret, node.Domain, node.Secret)
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = &testLogWriter{t: t, prefix: fmt.Sprintf("scalenode %d: ", index)}
	require.NoError(t, cmd.Start())
	p := &scaleProc{index: index, cmd: cmd, stdin: stdin, lines: make(chan string, 64), done: make(chan struct{})}
	go func() {
		defer close(p.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
	}()
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(p.kill)
	return p
}

// kill ends the process at once (SIGKILL) and waits for it.
func (p *scaleProc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop closes its stdin, so that it shuts down gracefully.
func (p *scaleProc) stop(t *testing.T) {
	_ = p.stdin.Close()
	select {
	case <-p.done:
		assert.True(t, p.cmd.ProcessState.Success(), "scalenode %d: %v", p.index, p.cmd.ProcessState)
	case <-time.After(15 * time.Second):
		t.Errorf("scalenode %d did not stop", p.index)
	}
}

// await returns its first line starting with prefix not awaited before,
// reading its output until one comes; lines that come first are held for
// later awaits ("public up" may come before "node up").
func (p *scaleProc) await(t *testing.T, prefix string, timeout time.Duration) string {
	for k, l := range p.held {
		if strings.HasPrefix(l, prefix) {
			p.held = append(p.held[:k], p.held[k+1:]...)
			return l
		}
	}
	deadline := time.After(timeout)
	for {
		select {
		case l, ok := <-p.lines:
			require.True(t, ok, "scalenode %d ended before %q", p.index, prefix)
			if strings.HasPrefix(l, prefix) {
				return l
			}
			p.held = append(p.held, l)
		case <-deadline:
			t.Fatalf("scalenode %d: no %q within %v", p.index, prefix, timeout)
		}
	}
}

type testLogWriter struct {
	mu     sync.Mutex
	t      *testing.T
	prefix string
}

func (w *testLogWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		w.t.Log(w.prefix + l)
	}
	return len(b), nil
}

// TestComponentScaleOutProcesses runs three OS processes of one component
// (testdata/scalenode), each with two connections for the public domain
// and one for its own node domain; on an ejabberd cluster
// (scripts/ejabberd-cluster.sh) the processes connect to its nodes in
// turn, and a client on each node makes the calls. On ejabberd a client's
// calls to the public domain are answered by all three; each process's
// calls to a peer's node domain all get their replies. When a process's
// node stream dies under its calls, they fail with iq.ErrConnectionLost
// within a second (measured in the process), and it dials again and makes
// the rest. SIGKILL one process: calls to the public domain go on through
// the others (on ejabberd at most the one in flight inside it, per
// client, is lost); started again, it rejoins and answers its share, and
// its node domain works again. On Prosody one process holds the public
// domain at a time (the others retry on conflict), the node domains work
// the same, and when the holder is killed one of the others or the
// restarted one takes the domain over. -scale.calls and -scale.peercalls
// set the number of calls.
func TestComponentScaleOutProcesses(t *testing.T) {
	needServer(t)
	require.Len(t, env.Nodes, 3, "IQ_XMPP_NODE_COMPONENTS: the scripts' env files list three node domains")
	bin := buildScaleNode(t)
	procs := make([]*scaleProc, 3)
	for i := range procs {
		procs[i] = startScaleProc(t, bin, i)
		procs[i].await(t, "node up", 20*time.Second)
		if env.Server == servertest.Ejabberd || i == 0 {
			procs[i].await(t, "public up", 20*time.Second)
		}
	}
	// A client on each cluster node (one on a single server): ejabberd
	// hands a stanza for the public domain to a connection on the node
	// that routes it, the sender's.
	users := []string{"alice", "bob", "carol"}
	require.LessOrEqual(t, len(env.C2SAddrs), len(users), "cluster nodes")
	clients := make([]*servertest.Peer, len(env.C2SAddrs))
	for k, addr := range env.C2SAddrs {
		e := env
		e.C2SAddr = addr
		clients[k] = servertest.StartPeer(t, e, users[k])
	}
	// callPublic makes n calls to the public domain, shared out among the
	// clients, each making its share one after another; done counts the
	// calls made.
	callPublic := func(n int, timeout time.Duration, done *atomic.Int64) (map[string]int, int) {
		var mu sync.Mutex
		var wg sync.WaitGroup
		byNode, failed := map[string]int{}, 0
		for k, c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := k; i < n; i += len(clients) {
					want := fmt.Sprintf("public %d", i)
					r := c.Call("get", env.Comp, `<echo xmlns='urn:example:echo'>`+want+`</echo>`, timeout)
					mu.Lock()
					if r.Type != "result" || !strings.Contains(r.Payload, want) {
						failed++
					} else {
						byNode[nodeOf(r.Payload)]++
					}
					mu.Unlock()
					if done != nil {
						done.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		return byNode, failed
	}
	// A process makes its calls 32 at a time: a minute is ample for the
	// default size, and a millisecond more per call for larger ones.
	callsWithin := func(n int) time.Duration { return time.Minute + time.Duration(n)*time.Millisecond }

	t.Run("calls to the public domain, spread over the processes", func(t *testing.T) {
		start := time.Now()
		byNode, failed := callPublic(*scaleCalls, 10*time.Second, nil)
		t.Logf("%d calls in %v, answered by process: %v", *scaleCalls, time.Since(start).Round(time.Millisecond), byNode)
		assert.Zero(t, failed)
		assert.Len(t, byNode, per(1, 3), "processes that answered")
	})

	t.Run("each process calls a peer's node domain, 0 lost", func(t *testing.T) {
		n := *scalePeerCalls
		start := time.Now()
		for i, p := range procs {
			_, err := fmt.Fprintf(p.stdin, "call %s %d\n", env.Nodes[(i+1)%3].Domain, n)
			require.NoError(t, err)
		}
		for _, p := range procs {
			assert.Equal(t, fmt.Sprintf("called ok=%d lost=0 pending=0", n), p.await(t, "called", callsWithin(n)), "process %d", p.index)
		}
		t.Logf("3 x %d calls in %v", n, time.Since(start).Round(time.Millisecond))
	})

	t.Run("a process's node stream dies under its calls: they fail within a second, the rest go out on the next stream", func(t *testing.T) {
		const n = 300
		p := procs[1]
		_, err := fmt.Fprintf(p.stdin, "call %s %d cut\n", env.Nodes[2].Domain, n)
		require.NoError(t, err)
		var lost, within, other int
		cut := p.await(t, "cut", callsWithin(n))
		_, err = fmt.Sscanf(cut, "cut lost=%d within=%d other=%d", &lost, &within, &other)
		require.NoError(t, err, cut)
		t.Logf("%s (ms from the cut to the last failure)", cut)
		assert.Positive(t, lost, "calls pending when the stream died")
		assert.LessOrEqual(t, within, 1000, "ms from the cut to the last pending call's failure")
		assert.Zero(t, other, "calls that failed otherwise")
		assert.Equal(t, fmt.Sprintf("called ok=%d lost=%d pending=0", n-lost, lost), p.await(t, "called", callsWithin(n)))
	})

	top := t // the restarted process outlives the subtest
	t.Run("SIGKILL one process, start it again", func(t *testing.T) {
		// On Prosody the victim is the one process holding the public
		// domain: whichever retries first, another or the restarted one,
		// takes it over.
		v := per(0, 2)
		victim := procs[v]
		n := max(200, *scaleCalls/3)
		var byNode map[string]int
		var failed int
		var done atomic.Int64
		calls := make(chan struct{})
		go func() {
			defer close(calls)
			byNode, failed = callPublic(n, 2*time.Second, &done)
		}()
		for done.Load() < int64(n/4) {
			time.Sleep(time.Millisecond)
		}
		victim.kill()
		killedAt := done.Load()
		<-calls
		t.Logf("%d calls, the kill after %d: answered by process %v, %d failed (lost inside the killed process)", n, killedAt, byNode, failed)
		assert.Less(t, killedAt, int64(n), "calls made after the kill")
		if env.Server == servertest.Ejabberd {
			assert.LessOrEqual(t, failed, len(clients), "calls lost: at most the one in flight inside the killed process, per client")
		}

		procs[v] = startScaleProc(top, bin, v)
		procs[v].await(t, "node up", 20*time.Second)
		if env.Server == servertest.Ejabberd {
			procs[v].await(t, "public up", 20*time.Second)
		} else {
			// Until another process's retry takes the domain over,
			// Prosody answers wait/remote-server-timeout.
			require.Eventually(t, func() bool {
				r := clients[0].Call("get", env.Comp, `<echo xmlns='urn:example:echo'>takeover</echo>`, 2*time.Second)
				return r.Type == "result"
			}, 10*time.Second, 50*time.Millisecond, "the public domain taken over")
		}
		byNode, failed = callPublic(150, 10*time.Second, nil)
		t.Logf("after the restart: answered by process %v", byNode)
		assert.Zero(t, failed)
		assert.Len(t, byNode, per(1, 3), "processes that answered")
		_, err := fmt.Fprintf(procs[v].stdin, "call %s 100\n", env.Nodes[1].Domain)
		require.NoError(t, err)
		assert.Equal(t, "called ok=100 lost=0 pending=0", procs[v].await(t, "called", 60*time.Second))
	})

	for _, p := range procs {
		p.stop(t)
	}
}
