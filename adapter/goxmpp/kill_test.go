package goxmppiq_test

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

// port returns the port the variable name sets, else a free one.
func port(t *testing.T, name string) string {
	t.Helper()
	if p := os.Getenv(name); p != "" {
		return p
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// privateServer starts a server of the test's own, of the kind the tests
// run against, with scripts/prosody.sh or scripts/ejabberd.sh, so that
// killing it disturbs no other test, and returns its environment. Its
// ports are free ones, or those IQ_KILL_C2S_PORT, IQ_KILL_COMPONENT_PORT
// and IQ_KILL_DIST_PORT (ejabberd) set; its directory is a fresh one in
// the temporary directory, or IQ_KILL_DIR (for a machine where each user
// of the servers has ports and directories of its own).
func privateServer(t *testing.T) map[string]string {
	t.Helper()
	dir := os.Getenv("IQ_KILL_DIR")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "iq-goxmpp-"+env.server+"-kill-"+strconv.Itoa(os.Getpid()))
	}
	vars := os.Environ()
	switch env.server {
	case prosody:
		vars = append(vars,
			"IQ_PROSODY_DIR="+dir,
			"IQ_C2S_PORT="+port(t, "IQ_KILL_C2S_PORT"),
			"IQ_COMPONENT_PORT="+port(t, "IQ_KILL_COMPONENT_PORT"))
	case ejabberd:
		vars = append(vars,
			"IQ_EJABBERD_DIR="+dir,
			"IQ_EJABBERD_C2S_PORT="+port(t, "IQ_KILL_C2S_PORT"),
			"IQ_EJABBERD_COMPONENT_PORT="+port(t, "IQ_KILL_COMPONENT_PORT"),
			"IQ_EJABBERD_DIST_PORT="+port(t, "IQ_KILL_DIST_PORT"))
	}
	script := "../../scripts/" + env.server + ".sh"
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

// The server is killed (SIGKILL) under 50 pending requests: every one
// fails with iq.ErrClosed within a second, Serve returns the stream's
// error, and later requests fail at once.
func TestServerKilledFailsPendingWithErrClosed(t *testing.T) {
	needServer(t)
	priv := privateServer(t)
	users := map[string]string{}
	for _, u := range strings.Fields(priv["IQ_XMPP_USERS"]) {
		name, pass, _ := strings.Cut(u, ":")
		users[name] = pass
	}
	addr := priv["IQ_XMPP_C2S_ADDR"]

	bob := loginAt(t, addr, users["bob"], "bob", blocking(t)).serve()
	alice := loginAt(t, addr, users["alice"], "alice", nil).serve()
	caller := alice.a.Endpoint.Caller

	const n = 50
	done := make(chan *iq.Call, n)
	for range n {
		caller.Go(context.Background(), &iq.IQ{Type: iq.TypeGet, To: bob.jid,
			Payload: iq.NewElement(nsTest, "hang")}, done)
	}
	require.Eventually(t, func() bool { return caller.Pending() == n }, 5*time.Second, 10*time.Millisecond)

	pid, err := strconv.Atoi(priv[per("IQ_PROSODY_PID", "IQ_EJABBERD_PID")])
	require.NoError(t, err)
	killed := time.Now()
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))

	for i := range n {
		select {
		case call := <-done:
			assert.ErrorIs(t, call.Err, iq.ErrClosed)
		case <-time.After(time.Until(killed.Add(time.Second))):
			t.Fatalf("only %d of %d requests ended within a second of the kill", i, n)
		}
	}
	t.Logf("all %d pending requests failed with ErrClosed %v after the kill", n, time.Since(killed))
	select {
	case err := <-alice.served:
		alice.served <- err // for stop
		assert.Error(t, err, "Serve returned nil after the server died")
	case <-time.After(time.Second):
		t.Fatal("Serve did not return within a second of the kill")
	}
	assert.Equal(t, 0, caller.Pending())
	_, err = caller.Get(context.Background(), bob.jid, iq.NewElement(nsTest, "hang"))
	assert.ErrorIs(t, err, iq.ErrClosed)
}
