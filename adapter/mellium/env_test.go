package melliumiq_test

// The integration tests run against a real server, Prosody or ejabberd,
// and a third-party client (slixmpp), exactly as the repository's
// integration package does, with the same environment and the same
// support (internal/servertest): start a server with scripts/prosody.sh
// start or scripts/ejabberd.sh start and load its env file first. Without
// it the tests that need a server are skipped, saying so, unless
// IQ_REQUIRE_INTEGRATION=1, which makes that a failure (as in CI). Their
// results are never cached (see servertest.NoCache).

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/xmpp-iq/iq/internal/servertest"
)

// env is the server's environment, set by needServer.
var env servertest.Env

// needServer loads the environment into env, skipping or failing the test
// without a server (see servertest.Need).
func needServer(t *testing.T) {
	t.Helper()
	env = servertest.Need(t)
}

func TestMain(m *testing.M) {
	code := servertest.Run(m, "melliumiq")
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "melliumiq: goroutines leaked:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// per returns the value for the server the tests run against.
func per[T any](onProsody, onEjabberd T) T { return servertest.Per(env.Server, onProsody, onEjabberd) }

// startPeer starts a slixmpp client logged in as user.
func startPeer(t *testing.T, user string) *servertest.Peer { return servertest.StartPeer(t, env, user) }

// waitCtx is a context for one step of a test.
func waitCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
