package goxmppiq_test

// The integration tests run against a real server, Prosody or ejabberd,
// and a third-party client (slixmpp), exactly as the repository's
// integration package does, with the same environment: start a server with
// scripts/prosody.sh start or scripts/ejabberd.sh start and load its env
// file first. Without it the tests that need a server are skipped, saying
// so, unless IQ_REQUIRE_INTEGRATION=1, which makes that a failure (as in
// CI). Their results are never cached (see noCache).

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// The servers the scripts start, as IQ_XMPP_SERVER names them.
const (
	prosody  = "prosody"
	ejabberd = "ejabberd"
)

type serverEnv struct {
	server  string // prosody or ejabberd
	c2sAddr string
	domain  string
	users   map[string]string
}

var (
	env        serverEnv
	skipReason string // why there is no server; "" when there is one
	envOnce    sync.Once
)

// loadEnv reads the server's environment. It runs inside the first test
// that needs a server, never in TestMain: go test keys its cache only on
// the variables a test reads while tests run, so a result read from
// TestMain's environment would be replayed from the cache after the
// environment changed.
func loadEnv() {
	env = serverEnv{
		server:  os.Getenv("IQ_XMPP_SERVER"),
		c2sAddr: os.Getenv("IQ_XMPP_C2S_ADDR"),
		domain:  os.Getenv("IQ_XMPP_DOMAIN"),
		users:   map[string]string{},
	}
	for _, u := range strings.Fields(os.Getenv("IQ_XMPP_USERS")) {
		name, pass, _ := strings.Cut(u, ":")
		env.users[name] = pass
	}
	if env.c2sAddr == "" || env.domain == "" {
		skipReason = "no XMPP server configured (IQ_XMPP_C2S_ADDR and IQ_XMPP_DOMAIN unset): " +
			"run scripts/prosody.sh start or scripts/ejabberd.sh start and load its env file"
	}
}

// noCachePath is a file every run opens and TestMain touches as the
// process ends: go test refuses to cache a result when a file inside the
// module that the test opened changed less than two seconds before it
// hashes the test's inputs, so no run of this package is ever replayed as
// "ok (cached)", even without -count=1. (The file is git-ignored.)
const noCachePath = ".nocache"

var noCacheOnce sync.Once

// noCache records noCachePath as an input of this run. It fails the test
// when the file cannot be written and a server is configured or required.
func noCache(t *testing.T) {
	t.Helper()
	var err error
	noCacheOnce.Do(func() {
		err = os.WriteFile(noCachePath, []byte("touched by every integration test run so that go test never caches it\n"), 0o644)
		if err == nil {
			var f *os.File
			if f, err = os.Open(noCachePath); err == nil {
				err = f.Close()
			}
		}
	})
	if err != nil && (skipReason == "" || os.Getenv("IQ_REQUIRE_INTEGRATION") == "1") {
		t.Fatalf("goxmppiq: cannot make this run uncacheable: %v", err)
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	// After the tests, so the file is newer than the cache's cutoff when
	// go test looks at it (skipped runs too: a skip must not be replayed
	// once a server is configured).
	now := time.Now()
	_ = os.Chtimes(noCachePath, now, now)
	if skipReason != "" {
		fmt.Fprintln(os.Stderr, "goxmppiq: integration tests SKIPPED:", skipReason)
	}
	if code == 0 {
		if err := goleak.Find(ignoreClose); err != nil {
			fmt.Fprintln(os.Stderr, "goxmppiq: goroutines leaked:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// needServer loads the environment and skips the test when no server is
// configured, or fails it when IQ_REQUIRE_INTEGRATION=1 (read here, inside
// the test, for the same reason as loadEnv).
func needServer(t *testing.T) {
	t.Helper()
	envOnce.Do(loadEnv)
	noCache(t)
	if skipReason != "" {
		if os.Getenv("IQ_REQUIRE_INTEGRATION") == "1" {
			t.Fatal("IQ_REQUIRE_INTEGRATION=1:", skipReason)
		}
		t.Skip(skipReason)
	}
	switch env.server {
	case prosody, ejabberd:
	default:
		t.Fatalf("IQ_XMPP_SERVER is %q, want %q or %q (the scripts' env files set it)", env.server, prosody, ejabberd)
	}
}

// per returns the value for the server the tests run against.
func per[T any](onProsody, onEjabberd T) T {
	if env.server == ejabberd {
		return onEjabberd
	}
	return onProsody
}

func (e serverEnv) password(t *testing.T, user string) string {
	t.Helper()
	p, ok := e.users[user]
	if !ok {
		t.Fatalf("no account %q in IQ_XMPP_USERS", user)
	}
	return p
}
