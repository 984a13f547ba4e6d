package integration_test

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xmpp-iq/iq"
)

// silentListener accepts connections and never writes a byte.
func silentListener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return ln.Addr().String()
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// privateServer starts a server of the test's own, of the kind the tests
// run against, with scripts/prosody.sh or scripts/ejabberd.sh, so that
// killing it disturbs no other test, and returns its environment.
func privateServer(t *testing.T) map[string]string {
	t.Helper()
	dir := filepath.Join(os.TempDir(), "iq-"+env.server+"-kill-"+strconv.Itoa(os.Getpid()))
	vars := os.Environ()
	switch env.server {
	case prosody:
		vars = append(vars,
			"IQ_PROSODY_DIR="+dir,
			"IQ_C2S_PORT="+strconv.Itoa(freePort(t)),
			"IQ_COMPONENT_PORT="+strconv.Itoa(freePort(t)))
	case ejabberd:
		vars = append(vars,
			"IQ_EJABBERD_DIR="+dir,
			"IQ_EJABBERD_C2S_PORT="+strconv.Itoa(freePort(t)),
			"IQ_EJABBERD_COMPONENT_PORT="+strconv.Itoa(freePort(t)),
			"IQ_EJABBERD_DIST_PORT="+strconv.Itoa(freePort(t)))
	}
	script := "../scripts/" + env.server + ".sh"
	start := exec.Command("bash", script, "start")
	start.Env = vars
	out, err := start.CombinedOutput()
	require.NoError(t, err, "%s start: %s", script, out)
	t.Cleanup(func() {
		stop := exec.Command("bash", script, "stop")
		stop.Env = vars
		_ = stop.Run()
		_ = os.RemoveAll(dir)
	})
	f, err := os.Open(filepath.Join(dir, "env"))
	require.NoError(t, err)
	defer f.Close()
	m := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimPrefix(sc.Text(), "export ")
		if k, v, ok := strings.Cut(line, "="); ok {
			m[k] = strings.Trim(v, `"'`)
		}
	}
	return m
}

// TestServerKilledFailsPendingWithErrClosed kills the server (SIGKILL)
// under 50 pending requests: every one ends with ErrClosed within a second.
func TestServerKilledFailsPendingWithErrClosed(t *testing.T) {
	needServer(t)
	priv := privateServer(t)
	saved := env
	env.compAddr = priv["IQ_XMPP_COMPONENT_ADDR"]
	defer func() { env = saved }()

	release := make(chan struct{})
	defer close(release)
	dialComponent(t, priv["IQ_XMPP_COMPONENT"], priv["IQ_XMPP_COMPONENT_SECRET"], func(ep *iq.Endpoint) {
		ep.Callee.Get(nsEcho, "block", func(ctx context.Context, req *iq.IQ) (*iq.Element, error) {
			select {
			case <-release:
			case <-ctx.Done():
			}
			return nil, nil
		})
	})
	caller, _, served := dialComponent(t, priv["IQ_XMPP_COMPONENT2"], priv["IQ_XMPP_COMPONENT2_SECRET"], nil)

	const n = 50
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			_, err := caller.Caller.Get(context.Background(), priv["IQ_XMPP_COMPONENT"], iq.NewElement(nsEcho, "block"))
			errs <- err
		}()
	}
	require.Eventually(t, func() bool { return caller.Caller.Pending() == n }, 5*time.Second, 10*time.Millisecond)

	pid, err := strconv.Atoi(priv[per("IQ_PROSODY_PID", "IQ_EJABBERD_PID")])
	require.NoError(t, err)
	killed := time.Now()
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))

	for i := 0; i < n; i++ {
		select {
		case err := <-errs:
			assert.ErrorIs(t, err, iq.ErrClosed)
		case <-time.After(time.Until(killed.Add(time.Second))):
			t.Fatalf("only %d of %d requests ended within a second of the kill", i, n)
		}
	}
	t.Logf("all %d pending requests failed with ErrClosed %v after the kill", n, time.Since(killed))
	select {
	case <-served:
	case <-time.After(time.Second):
		t.Fatal("Serve did not return after the server died")
	}
	assert.Equal(t, 0, caller.Caller.Pending())
}
