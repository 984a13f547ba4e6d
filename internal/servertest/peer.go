package servertest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Scripts returns the repository's scripts directory, found from the
// package under test's directory (go test's working directory) upward, so
// that a test in any module of the repository finds it.
func Scripts(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("servertest: %v", err)
	}
	for {
		s := filepath.Join(dir, "scripts")
		if _, err := os.Stat(filepath.Join(s, "slixpeer.py")); err == nil {
			return s
		}
		up := filepath.Dir(dir)
		if up == dir {
			t.Fatalf("servertest: no scripts/slixpeer.py above the test's directory")
		}
		dir = up
	}
}

// Peer is a third-party XMPP client: Debian's slixmpp, driven by
// scripts/slixpeer.py over its JSON line protocol.
type Peer struct {
	JID string // the full JID the server bound

	t     *testing.T
	cmd   *exec.Cmd
	stdin io.WriteCloser

	mu        sync.Mutex
	responses map[string]chan Line
	requests  chan Line
	exited    chan struct{}
}

// Line is one line the peer writes: an event, with the fields that event
// carries.
type Line struct {
	Event     string `json:"event"`
	JID       string `json:"jid"`
	ID        string `json:"id"`
	From      string `json:"from"`
	NS        string `json:"ns"`
	Name      string `json:"name"`
	Type      string `json:"type"`
	Payload   string `json:"payload"`
	ErrorType string `json:"error_type"`
	Condition string `json:"condition"`
	Text      string `json:"text"`
	AppNS     string `json:"app_ns"`
	AppName   string `json:"app_name"`
	Error     string `json:"error"`
}

// StartPeer logs user in on e's server with a resource unique to the test
// and waits until it is bound and available. The peer stops when the test
// ends.
func StartPeer(t *testing.T, e Env, user string) *Peer {
	t.Helper()
	pass := e.Password(t, user)
	res := fmt.Sprintf("%s-%d", strings.ReplaceAll(t.Name(), "/", "-"), time.Now().UnixNano())
	full := user + "@" + e.Domain + "/" + res
	cmd := exec.Command("/usr/bin/python3", filepath.Join(Scripts(t), "slixpeer.py"),
		"--jid", full, "--password", pass, "--addr", e.C2SAddr)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatalf("servertest: peer %s: %v", full, err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("servertest: peer %s: %v", full, err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("servertest: peer %s: %v", full, err)
	}
	p := &Peer{
		t: t, JID: full, cmd: cmd, stdin: stdin,
		responses: make(map[string]chan Line),
		requests:  make(chan Line, 64),
		exited:    make(chan struct{}),
	}
	ready := make(chan Line, 1)
	go func() {
		defer close(p.exited)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var l Line
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				continue
			}
			switch l.Event {
			case "ready", "error", "disconnected":
				select {
				case ready <- l:
				default:
				}
			case "request":
				select {
				case p.requests <- l:
				default:
				}
			case "response":
				p.mu.Lock()
				ch := p.responses[l.ID]
				p.mu.Unlock()
				if ch != nil {
					ch <- l
				}
			}
		}
		_ = cmd.Wait()
	}()
	t.Cleanup(p.stop)
	select {
	case l := <-ready:
		if l.Event != "ready" {
			t.Fatalf("servertest: peer %s failed: %s (event %q)", full, l.Error, l.Event)
		}
		p.JID = l.JID
	case <-time.After(20 * time.Second):
		t.Fatalf("peer %s not ready after 20 s", full)
	}
	return p
}

// Call makes the peer send a get or set (op) with payload to to, and
// returns its one response line.
func (p *Peer) Call(op, to, payload string, timeout time.Duration) Line {
	p.t.Helper()
	id := fmt.Sprintf("peer-%d", time.Now().UnixNano())
	ch := make(chan Line, 1)
	p.mu.Lock()
	p.responses[id] = ch
	p.mu.Unlock()
	line, err := json.Marshal(map[string]any{"op": op, "to": to, "id": id, "xml": payload, "timeout": timeout.Seconds()})
	if err != nil {
		p.t.Fatalf("servertest: peer %s: %v", p.JID, err)
	}
	if _, err = p.stdin.Write(append(line, '\n')); err != nil {
		p.t.Fatalf("servertest: peer %s: %v", p.JID, err)
	}
	select {
	case l := <-ch:
		return l
	case <-time.After(timeout + 10*time.Second):
		p.t.Fatalf("peer %s: no response to %s", p.JID, id)
		return Line{}
	}
}

func (p *Peer) stop() {
	_ = p.stdin.Close()
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}
