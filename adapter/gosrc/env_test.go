package gosrciq_test

// The integration tests run against a real server, Prosody or ejabberd,
// and a third-party client (slixmpp), with the repository's shared test
// support (internal/servertest): start a server with scripts/prosody.sh
// start or scripts/ejabberd.sh start and load its env file first. Without
// it the tests that need a server are skipped, saying so, unless
// IQ_REQUIRE_INTEGRATION=1, which makes that a failure (as in CI). Their
// results are never cached (see servertest.NoCache).

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/xmpp-iq/iq/internal/servertest"
)

func TestMain(m *testing.M) {
	os.Exit(servertest.Run(m, "gosrciq", func() error { return goleak.Find() }))
}

// env is the server's environment, which needServer loads (see
// servertest.Need); per picks the value for it.
var env servertest.Env

func needServer(t *testing.T) { t.Helper(); env = servertest.Need(t) }

func per[T any](onProsody, onEjabberd T) T { return servertest.Per(env.Server, onProsody, onEjabberd) }
