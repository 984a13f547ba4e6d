package integration_test

import (
	"bufio"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xmpp-iq/iq/internal/servertest"
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

func startScaleProc(t *testing.T, bin string, index int) *scaleProc {
	node := env.Nodes[index]
	cmd := exec.Command(bin, strconv.Itoa(index), env.CompAddr, env.Comp, env.CompSecret, node.Domain, node.Secret)
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
// and one for its own node domain. On ejabberd a client's calls to the
// public domain are answered by all three; each process's calls to a
// peer's node domain all get their replies. SIGKILL one process: calls to
// the public domain go on through the others (on ejabberd at most the one
// in flight inside it is lost); started again, it rejoins and answers its
// share, and its node domain works again. On Prosody one process holds the
// public domain at a time (the others retry on conflict), the node domains
// work the same, and when the holder is killed one of the others or the
// restarted one takes the domain over.
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
	alice := servertest.StartPeer(t, env, "alice")
	callPublic := func(t *testing.T, n int, timeout time.Duration) (map[string]int, int) {
		byNode, failed := map[string]int{}, 0
		for i := range n {
			want := fmt.Sprintf("public %d", i)
			r := alice.Call("get", env.Comp, `<echo xmlns='urn:example:echo'>`+want+`</echo>`, timeout)
			if r.Type != "result" || !strings.Contains(r.Payload, want) {
				failed++
				continue
			}
			byNode[nodeOf(r.Payload)]++
		}
		return byNode, failed
	}

	t.Run("calls to the public domain, spread over the processes", func(t *testing.T) {
		byNode, failed := callPublic(t, 300, 10*time.Second)
		t.Logf("answered by process: %v", byNode)
		assert.Zero(t, failed)
		assert.Len(t, byNode, per(1, 3), "processes that answered")
	})

	t.Run("each process calls a peer's node domain, 0 lost", func(t *testing.T) {
		for i, p := range procs {
			_, err := fmt.Fprintf(p.stdin, "call %s 300\n", env.Nodes[(i+1)%3].Domain)
			require.NoError(t, err)
		}
		for _, p := range procs {
			assert.Equal(t, "called ok=300 lost=0 pending=0", p.await(t, "called", 60*time.Second), "process %d", p.index)
		}
	})

	top := t // the restarted process outlives the subtest
	t.Run("SIGKILL one process, start it again", func(t *testing.T) {
		// On Prosody the victim is the one process holding the public
		// domain: whichever retries first, another or the restarted one,
		// takes it over.
		v := per(0, 2)
		victim := procs[v]
		var byNode map[string]int
		var failed int
		calls := make(chan struct{})
		go func() {
			defer close(calls)
			byNode, failed = callPublic(t, 200, 2*time.Second)
		}()
		time.Sleep(200 * time.Millisecond)
		victim.kill()
		<-calls
		t.Logf("around the kill: answered by process %v, %d failed", byNode, failed)
		if env.Server == servertest.Ejabberd {
			assert.LessOrEqual(t, failed, 1, "calls lost: only one in flight inside the killed process")
		}

		procs[v] = startScaleProc(top, bin, v)
		procs[v].await(t, "node up", 20*time.Second)
		if env.Server == servertest.Ejabberd {
			procs[v].await(t, "public up", 20*time.Second)
		} else {
			// Until another process's retry takes the domain over,
			// Prosody answers wait/remote-server-timeout.
			require.Eventually(t, func() bool {
				r := alice.Call("get", env.Comp, `<echo xmlns='urn:example:echo'>takeover</echo>`, 2*time.Second)
				return r.Type == "result"
			}, 10*time.Second, 50*time.Millisecond, "the public domain taken over")
		}
		byNode, failed = callPublic(t, 150, 10*time.Second)
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
