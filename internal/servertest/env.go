// Package servertest is the support the integration tests of this
// repository share: the integration package and the mellium adapter's
// module both run against a real server, Prosody or ejabberd, started with
// scripts/prosody.sh or scripts/ejabberd.sh, and a third-party client
// (slixmpp, driven by scripts/slixpeer.py). It reads the server's
// IQ_XMPP_* environment, skips or fails a test without a server, keeps
// every run out of go test's cache, drives the slixmpp peer and starts
// private servers that a test may kill or restart.
//
// It is for tests only, and depends on the standard library alone so that
// the core module gains no dependency from it.
package servertest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// The servers the scripts start, as IQ_XMPP_SERVER names them.
const (
	Prosody  = "prosody"
	Ejabberd = "ejabberd"
)

// Env is a server's environment, as its env file exports it.
type Env struct {
	Server                    string // Prosody or Ejabberd
	C2SAddr, CompAddr, Domain string
	Comp, CompSecret          string
	Comp2, Comp2Secret        string
	Spare, SpareSecret        string
	Nodes                     []Component // per-process component domains (docs/components-at-scale.md)
	// C2SAddrs and CompAddrs are every cluster node's addresses, the
	// first node's first (IQ_XMPP_CLUSTER_C2S_ADDRS and
	// IQ_XMPP_CLUSTER_COMPONENT_ADDRS, from scripts/ejabberd-cluster.sh);
	// for a single server, its C2SAddr and CompAddr alone.
	C2SAddrs, CompAddrs []string
	Users               map[string]string // account name to password
}

// Component is a component domain and its secret.
type Component struct{ Domain, Secret string }

// Load reads the environment from the IQ_XMPP_* variables, and says why
// it names no server ("" when it does). Call it inside a test, as Need
// does, never in TestMain: go test keys its cache only on the variables
// read while tests run, so a result that depended on TestMain's
// environment would be replayed from the cache after the environment
// changed.
func Load() (e Env, missing string) {
	e = Env{
		Server:  os.Getenv("IQ_XMPP_SERVER"),
		C2SAddr: os.Getenv("IQ_XMPP_C2S_ADDR"), CompAddr: os.Getenv("IQ_XMPP_COMPONENT_ADDR"),
		Domain: os.Getenv("IQ_XMPP_DOMAIN"),
		Comp:   os.Getenv("IQ_XMPP_COMPONENT"), CompSecret: os.Getenv("IQ_XMPP_COMPONENT_SECRET"),
		Comp2: os.Getenv("IQ_XMPP_COMPONENT2"), Comp2Secret: os.Getenv("IQ_XMPP_COMPONENT2_SECRET"),
		Spare: os.Getenv("IQ_XMPP_SPARE_COMPONENT"), SpareSecret: os.Getenv("IQ_XMPP_SPARE_SECRET"),
		Users: map[string]string{},
	}
	for _, u := range strings.Fields(os.Getenv("IQ_XMPP_USERS")) {
		name, pass, _ := strings.Cut(u, ":")
		e.Users[name] = pass
	}
	for _, n := range strings.Fields(os.Getenv("IQ_XMPP_NODE_COMPONENTS")) {
		domain, secret, _ := strings.Cut(n, ":")
		e.Nodes = append(e.Nodes, Component{Domain: domain, Secret: secret})
	}
	e.C2SAddrs = strings.Fields(os.Getenv("IQ_XMPP_CLUSTER_C2S_ADDRS"))
	e.CompAddrs = strings.Fields(os.Getenv("IQ_XMPP_CLUSTER_COMPONENT_ADDRS"))
	if len(e.C2SAddrs) == 0 || len(e.CompAddrs) == 0 {
		e.C2SAddrs, e.CompAddrs = []string{e.C2SAddr}, []string{e.CompAddr}
	}
	if e.C2SAddr == "" || e.CompAddr == "" || e.Domain == "" {
		missing = "no XMPP server configured (IQ_XMPP_C2S_ADDR, IQ_XMPP_COMPONENT_ADDR or IQ_XMPP_DOMAIN unset): " +
			"run scripts/prosody.sh start or scripts/ejabberd.sh start and load its env file"
	}
	return e, missing
}

// Password returns user's password, failing the test when IQ_XMPP_USERS
// has no such account.
func (e Env) Password(t testing.TB, user string) string {
	t.Helper()
	p, ok := e.Users[user]
	if !ok {
		t.Fatalf("no account %q in IQ_XMPP_USERS", user)
	}
	return p
}

// Per returns the value for server: onEjabberd for ejabberd, onProsody
// otherwise. Tests use it where the two servers behave differently, to
// assert each one's own behaviour rather than skip one.
func Per[T any](server string, onProsody, onEjabberd T) T {
	if server == Ejabberd {
		return onEjabberd
	}
	return onProsody
}

var (
	loadOnce sync.Once
	env      Env
	missing  string // why there is no server; "" when there is one
)

// Need returns the server's environment, loaded once per test binary. It
// makes the run uncacheable (see NoCache), then skips the test when no
// server is configured, or fails it when IQ_REQUIRE_INTEGRATION=1 (read
// here, inside the test, for the same reason as Load), and fails it when
// IQ_XMPP_SERVER names neither server.
func Need(t *testing.T) Env {
	t.Helper()
	loadOnce.Do(func() { env, missing = Load() })
	NoCache(t)
	if missing != "" {
		if os.Getenv("IQ_REQUIRE_INTEGRATION") == "1" {
			t.Fatal("IQ_REQUIRE_INTEGRATION=1:", missing)
		}
		t.Skip(missing)
	}
	switch env.Server {
	case Prosody, Ejabberd:
	default:
		t.Fatalf("IQ_XMPP_SERVER is %q, want %q or %q (the scripts' env files set it)", env.Server, Prosody, Ejabberd)
	}
	return env
}

// NoCachePath is a file, relative to the package under test, that every
// run opens and Run touches as the process ends. go test refuses to cache
// a result when a file inside the tested module that the test opened
// changed less than two seconds before it hashes the test's inputs, so no
// run is ever replayed as "ok (cached)", even without -count=1. A file
// outside the module is not looked at: go test runs a test in its
// package's directory, so this path lies in each tested module (and is
// git-ignored there).
const NoCachePath = ".nocache"

var (
	noCacheOnce sync.Once
	noCacheErr  error
)

// NoCache records NoCachePath as an input of this run. It fails the test
// when the file cannot be written and a server is configured or required:
// a cached result would then be possible.
func NoCache(t *testing.T) {
	t.Helper()
	noCacheOnce.Do(func() {
		noCacheErr = os.WriteFile(NoCachePath, []byte("touched by every integration test run so that go test never caches it\n"), 0o644)
		if noCacheErr == nil {
			var f *os.File
			if f, noCacheErr = os.Open(NoCachePath); noCacheErr == nil {
				noCacheErr = f.Close()
			}
		}
	})
	if noCacheErr != nil && (missing == "" || os.Getenv("IQ_REQUIRE_INTEGRATION") == "1") {
		t.Fatalf("servertest: cannot make this run uncacheable: %v", noCacheErr)
	}
}

// Run runs the tests for TestMain and returns their exit code. After the
// tests it touches NoCachePath, so the file is newer than the cache's
// cutoff when go test looks at it (skipped runs too: a skip must not be
// replayed once a server is configured), and says on stderr, prefixed by
// name, when the tests were skipped for want of a server. When they passed
// and leaks is not nil, it fails the run if leaks reports goroutines left
// behind (the caller passes its leak checker, so that this package needs
// none).
func Run(m *testing.M, name string, leaks func() error) int {
	code := m.Run()
	now := time.Now()
	_ = os.Chtimes(NoCachePath, now, now)
	if missing != "" {
		fmt.Fprintln(os.Stderr, name+": integration tests SKIPPED:", missing)
	}
	if code == 0 && leaks != nil {
		if err := leaks(); err != nil {
			fmt.Fprintln(os.Stderr, name+": goroutines leaked:", err)
			code = 1
		}
	}
	return code
}

// Ctx returns a context for one step of a test, ending after d or with
// the test.
func Ctx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
