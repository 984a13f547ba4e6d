package goxmppiq_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// slixPeer is a third-party XMPP client: Debian's slixmpp, driven by
// scripts/slixpeer.py over its JSON line protocol (as in the repository's
// integration package).
type slixPeer struct {
	t     *testing.T
	jid   string
	cmd   *exec.Cmd
	stdin io.WriteCloser

	mu        sync.Mutex
	responses map[string]chan peerLine
	requests  chan peerLine
	exited    chan struct{}
}

type peerLine struct {
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

// startPeer logs user in with a resource unique to the test and waits
// until it is bound and available.
func startPeer(t *testing.T, user string) *slixPeer {
	t.Helper()
	pass := env.password(t, user)
	res := fmt.Sprintf("%s-%d", strings.ReplaceAll(t.Name(), "/", "-"), time.Now().UnixNano())
	full := user + "@" + env.domain + "/" + res
	cmd := exec.Command("/usr/bin/python3", "../../scripts/slixpeer.py",
		"--jid", full, "--password", pass, "--addr", env.c2sAddr)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	p := &slixPeer{
		t: t, jid: full, cmd: cmd, stdin: stdin,
		responses: make(map[string]chan peerLine),
		requests:  make(chan peerLine, 64),
		exited:    make(chan struct{}),
	}
	ready := make(chan peerLine, 1)
	go func() {
		defer close(p.exited)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var l peerLine
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
		require.Equal(t, "ready", l.Event, "peer %s failed: %s", full, l.Error)
		p.jid = l.JID
	case <-time.After(20 * time.Second):
		t.Fatalf("peer %s not ready after 20 s", full)
	}
	return p
}

// call makes the peer send a get or set and returns its one response line.
func (p *slixPeer) call(op, to, payload string, timeout time.Duration) peerLine {
	p.t.Helper()
	id := fmt.Sprintf("peer-%d", time.Now().UnixNano())
	ch := make(chan peerLine, 1)
	p.mu.Lock()
	p.responses[id] = ch
	p.mu.Unlock()
	line, err := json.Marshal(map[string]any{"op": op, "to": to, "id": id, "xml": payload, "timeout": timeout.Seconds()})
	require.NoError(p.t, err)
	_, err = p.stdin.Write(append(line, '\n'))
	require.NoError(p.t, err)
	select {
	case l := <-ch:
		return l
	case <-time.After(timeout + 10*time.Second):
		p.t.Fatalf("peer %s: no response to %s", p.jid, id)
		return peerLine{}
	}
}

func (p *slixPeer) stop() {
	_ = p.stdin.Close()
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// waitCtx is a context for one step of a test.
func waitCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
