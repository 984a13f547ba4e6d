package integration_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBugIntegrationResultCached: go test served this package's result
// from its cache, as "ok (cached)", because the environment was read in
// TestMain, where the cache does not see it: a skipped run was replayed
// once a server was configured, and with IQ_REQUIRE_INTEGRATION=1 and no
// server. Runs go test on this package twice per case, without -count=1
// (GOFLAGS cleared): a required run without a server fails every time, and
// no run is ever cached. It needs a server like the others (a few seconds
// per go test run is too slow for a newcomer's go test ./...).
func TestBugIntegrationResultCached(t *testing.T) {
	needServer(t)
	goCmd, err := exec.LookPath("go")
	require.NoError(t, err, "the go command is needed to run go test")

	// A child runs one quick test that needs a server (and only that one,
	// so this test does not run itself).
	const child = "^TestComponent_HandshakeFailures$/^wrong_secret"
	base := make([]string, 0, len(os.Environ()))
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "IQ_XMPP_") || k == "IQ_REQUIRE_INTEGRATION" || k == "GOFLAGS" {
			continue
		}
		base = append(base, kv)
	}
	base = append(base, "GOFLAGS=-buildvcs=false")
	withServer := append([]string(nil), base...)
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "IQ_XMPP_") {
			withServer = append(withServer, kv)
		}
	}
	required := func(vars []string) []string {
		return append(append([]string(nil), vars...), "IQ_REQUIRE_INTEGRATION=1")
	}

	type run struct {
		env    []string
		wantOK bool
	}
	cases := []struct {
		name string
		runs []run
	}{
		{"required without a server fails every time", []run{
			{required(base), false},
			{required(base), false},
		}},
		{"skipped without a server, then required, fails", []run{
			{base, true},
			{required(base), false},
		}},
		{"with a server, the second run runs again", []run{
			{required(withServer), true},
			{required(withServer), true},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for i, r := range tc.runs {
				cmd := exec.Command(goCmd, "test", "-vet=off", "-run", child, ".")
				cmd.Env = r.env
				out, err := cmd.CombinedOutput()
				assert.NotContains(t, string(out), "(cached)", "run %d was served from the cache:\n%s", i+1, out)
				if r.wantOK {
					assert.NoError(t, err, "run %d:\n%s", i+1, out)
				} else {
					assert.Error(t, err, "run %d passed:\n%s", i+1, out)
					assert.Contains(t, string(out), "IQ_REQUIRE_INTEGRATION=1", "run %d:\n%s", i+1, out)
				}
			}
		})
	}
}
