package iq_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"golang.org/x/net/idna"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/iqtest"
)

const hardeningNS = "urn:example:hardening"

// The addresses of the spoofing matrix. The peer is juliet@capulet.example
// (resource balcony); we are me@example.com/res (a client of example.com)
// or comp.example.com (a component of example.com).
var (
	spoofHomograph     = "capul\u0435t.example" // Cyrillic e: looks like capulet.example
	spoofHomographPuny = mustToASCII(spoofHomograph)
)

func mustToASCII(s string) string {
	a, err := idna.Lookup.ToASCII(s)
	if err != nil {
		panic(err)
	}
	return a
}

// spoofSender is one row of the matrix: a sender, spelled for each mode.
type spoofSender struct {
	name              string
	client, component string
}

var spoofSenders = []spoofSender{
	{"peer full (the right one)", "juliet@capulet.example/balcony", "juliet@capulet.example/balcony"},
	{"peer bare", "juliet@capulet.example", "juliet@capulet.example"},
	{"peer domain", "capulet.example", "capulet.example"},
	{"peer other resource", "juliet@capulet.example/chamber", "juliet@capulet.example/chamber"},
	{"other user, peer's domain", "nurse@capulet.example/kitchen", "nurse@capulet.example/kitchen"},
	{"other user", "romeo@montague.example/garden", "romeo@montague.example/garden"},
	{"peer full, case of local+domain", "Juliet@CAPULET.Example/balcony", "Juliet@CAPULET.Example/balcony"},
	{"peer full, case of resource", "juliet@capulet.example/Balcony", "juliet@capulet.example/Balcony"},
	{"peer full, trailing dot", "juliet@capulet.example./balcony", "juliet@capulet.example./balcony"},
	{"peer bare, case", "JULIET@capulet.example", "JULIET@capulet.example"},
	{"peer domain, case+dot", "Capulet.Example.", "Capulet.Example."},
	{"peer full, homograph", "juliet@" + spoofHomograph + "/balcony", "juliet@" + spoofHomograph + "/balcony"},
	{"peer full, homograph punycode", "juliet@" + spoofHomographPuny + "/balcony", "juliet@" + spoofHomographPuny + "/balcony"},
	{"peer domain, homograph punycode", spoofHomographPuny, spoofHomographPuny},
	{"peer full, malformed", "juliet@@capulet.example/balcony", "juliet@@capulet.example/balcony"},
	{"our full", "me@example.com/res", "comp.example.com"},
	{"our other resource", "me@example.com/evil", "comp.example.com/evil"},
	{"our bare", "me@example.com", "comp.example.com"},
	{"our bare, case", "ME@Example.COM", "COMP.Example.COM"},
	{"our full, case of resource", "me@example.com/RES", "comp.example.com/RES"},
	{"our domain, trailing dot", "example.com.", "comp.example.com."},
	{"user at our domain", "eve@example.com/x", "eve@comp.example.com/x"},
	{"our server", "example.com", "example.com"},
	{"no from", "", ""},
}

// spoofTarget is one column: where the request goes.
type spoofTarget struct {
	name              string
	client, component string
}

var spoofTargets = []spoofTarget{
	{"full", "juliet@capulet.example/balcony", "juliet@capulet.example/balcony"},
	{"bare", "juliet@capulet.example", "juliet@capulet.example"},
	{"domain", "capulet.example", "capulet.example"},
	{"own bare", "me@example.com", "comp.example.com"},
	{"no to", "", ""},
}

// The rule, spelled out by hand: which senders resolve a request, per mode
// and target. Everything else must be dropped.
var (
	spoofAlwaysClient = []string{"our full", "our bare", "our bare, case", "our domain, trailing dot", "our server", "no from"}
	// A component's own address is its domain: its server (example.com)
	// is not ours to trust.
	spoofAlwaysComponent = []string{"our full", "our bare", "our bare, case", "our domain, trailing dot", "no from"}
	spoofPeerByTarget    = map[string][]string{
		"full": {"peer full (the right one)", "peer bare", "peer domain", "peer full, case of local+domain",
			"peer full, trailing dot", "peer bare, case", "peer domain, case+dot"},
		"bare":   {"peer bare", "peer domain", "peer bare, case", "peer domain, case+dot"},
		"domain": {"peer domain", "peer domain, case+dot"},
		// our own bare JID: our bare (already always) and our domain.
		"own bare": {},
		"no to":    {},
	}
)

func spoofExpected(mode, target string) map[string]bool {
	want := map[string]bool{}
	always := spoofAlwaysClient
	if mode == "component" {
		always = spoofAlwaysComponent
	}
	for _, s := range always {
		want[s] = true
	}
	for _, s := range spoofPeerByTarget[target] {
		want[s] = true
	}
	return want
}

// TestHardeningSpoofMatrix sends a request to each kind of address and
// answers it from each kind of sender, on a client's Caller and on a
// component's, and checks exactly which answers resolve it.
func TestHardeningSpoofMatrix(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	// Every expected name must be a row, or a typo would pass silently.
	rows := map[string]bool{}
	for _, s := range spoofSenders {
		rows[s.name] = true
	}
	for _, names := range append([][]string{spoofAlwaysClient, spoofAlwaysComponent}, spoofPeerByTarget["full"], spoofPeerByTarget["bare"], spoofPeerByTarget["domain"]) {
		for _, n := range names {
			require.True(t, rows[n], "expected sender %q is not a row", n)
		}
	}
	require.NotEqual(t, spoofHomograph, "capulet.example")
	require.True(t, strings.HasPrefix(spoofHomographPuny, "xn--"), spoofHomographPuny)

	modes := []struct {
		name  string
		local string
	}{
		{"client", "me@example.com/res"},
		{"component", "comp.example.com"},
	}
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			sink := iqtest.NewRecorder()
			c := iq.NewCaller(sink, iq.WithLocalJID(mode.local))
			defer c.Close()

			got := map[[2]string]bool{}
			for _, target := range spoofTargets {
				to := target.client
				if mode.name == "component" {
					to = target.component
				}
				want := spoofExpected(mode.name, target.name)
				for _, sender := range spoofSenders {
					from := sender.client
					if mode.name == "component" {
						from = sender.component
					}
					t.Run("to "+target.name+" from "+sender.name, func(t *testing.T) {
						done := make(chan *iq.Call, 1)
						call := c.Go(context.Background(), &iq.IQ{Type: iq.TypeGet, To: to, Payload: iq.NewElement(hardeningNS, "q")}, done)
						require.NoError(t, call.Err)
						req := sink.Last()
						require.NotNil(t, req)
						require.Equal(t, 1, c.Pending())

						resolved := c.Receive(&iq.IQ{Type: iq.TypeResult, ID: req.ID, From: from, To: mode.local})
						got[[2]string{target.name, sender.name}] = resolved
						if want[sender.name] {
							assert.True(t, resolved, "from %q to %q must resolve", from, to)
							select {
							case got := <-done:
								assert.Same(t, call, got)
								assert.NoError(t, got.Err)
								require.NotNil(t, got.Response)
								assert.Equal(t, from, got.Response.From)
							default:
								t.Error("call not delivered")
							}
						} else {
							assert.False(t, resolved, "from %q to %q must be dropped", from, to)
							assert.Len(t, done, 0)
							assert.Equal(t, 1, c.Pending())
							// End it the legitimate way: no from is our server.
							require.True(t, c.Receive(&iq.IQ{Type: iq.TypeResult, ID: req.ID}))
							<-done
						}
						assert.Zero(t, c.Pending())
					})
				}
			}
			t.Log(spoofMatrixString(mode.name, mode.local, got))
		})
	}
}

func spoofMatrixString(mode, local string, got map[[2]string]bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n%s (local JID %s): Y = resolves, . = dropped\n", mode, local)
	fmt.Fprintf(&b, "%-34s", "sender \\ to")
	for _, tg := range spoofTargets {
		fmt.Fprintf(&b, " %-9s", tg.name)
	}
	b.WriteByte('\n')
	for _, s := range spoofSenders {
		fmt.Fprintf(&b, "%-34s", s.name)
		for _, tg := range spoofTargets {
			mark := "."
			if got[[2]string{tg.name, s.name}] {
				mark = "Y"
			}
			fmt.Fprintf(&b, " %-9s", mark)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// TestHardeningSpoofIDN checks that IDN spellings of the peer's domain
// compare as the domain (RFC 7622: IDNA2008 mapping, A-label = U-label)
// while look-alikes do not.
func TestHardeningSpoofIDN(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	const to = "juliet@café.example/balcony"
	cases := []struct {
		name string
		from string
		want bool
	}{
		{"exact U-label", "juliet@café.example/balcony", true},
		{"A-label (punycode)", "juliet@xn--caf-dma.example/balcony", true},
		{"A-label upper case", "juliet@XN--CAF-DMA.example/balcony", true},
		{"U-label upper case", "juliet@CAFÉ.example/balcony", true},
		{"decomposed é (NFD)", "juliet@cafe\u0301.example/balcony", true},
		{"bare A-label", "juliet@xn--caf-dma.example", true},
		{"domain A-label, trailing dot", "xn--caf-dma.example.", true},
		{"no accent", "juliet@cafe.example/balcony", false},
		{"other accent", "juliet@cafè.example/balcony", false},
		{"punycode of no accent look-alike", "juliet@xn--caf-8la.example/balcony", false},
		{"Cyrillic а", "juliet@c\u0430fé.example/balcony", false},
		{"broken punycode", "juliet@xn--.example/balcony", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			sink := iqtest.NewRecorder()
			c := iq.NewCaller(sink, iq.WithLocalJID("me@example.com/res"))
			defer c.Close()
			done := make(chan *iq.Call, 1)
			call := c.Go(context.Background(), &iq.IQ{Type: iq.TypeGet, To: to, Payload: iq.NewElement(hardeningNS, "q")}, done)
			require.NoError(t, call.Err)
			id := sink.Last().ID
			assert.Equal(t, tc.want, c.Receive(&iq.IQ{Type: iq.TypeResult, ID: id, From: tc.from}))
			assert.Equal(t, tc.want, len(done) == 1)
		})
	}
}

// TestHardeningSpoofRequestTypeNeverResolves sends, with a pending
// request's id and from its right sender, stanzas that are not a result
// or an error: none may end the request. Through an Endpoint, a get or set
// goes to the Callee, which answers it, and the request stays pending.
func TestHardeningSpoofRequestTypeNeverResolves(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	const peer = "juliet@capulet.example/balcony"
	cases := []struct {
		name      string
		typ       iq.Type
		wantReply bool // the Callee answers it (bad-request or feature-not-implemented)
	}{
		{"get", iq.TypeGet, true},
		{"set", iq.TypeSet, true},
		{"no type", "", true},
		{"RESULT upper case", "RESULT", true},
		{"Error mixed case", "Error", true},
		{"result with space", "result ", true},
		{"unknown type", "headline", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			sink := iqtest.NewRecorder()
			ep := iq.NewEndpoint(sink, iq.WithLocalJID("me@example.com/res"))
			defer ep.Close()
			done := make(chan *iq.Call, 1)
			call := ep.Caller.Go(context.Background(), &iq.IQ{Type: iq.TypeGet, To: peer, Payload: iq.NewElement(hardeningNS, "q")}, done)
			require.NoError(t, call.Err)
			id := sink.Last().ID
			require.Equal(t, 1, sink.Len())

			spoof := &iq.IQ{Type: tc.typ, ID: id, From: peer, Payload: iq.NewElement(hardeningNS, "q")}
			assert.False(t, ep.Caller.Receive(spoof), "Caller.Receive took a %q", tc.typ)
			ep.Receive(context.Background(), spoof)
			assert.Len(t, done, 0)
			assert.Equal(t, 1, ep.Caller.Pending())
			if tc.wantReply {
				// Answered by the Callee with an error, never taken as ours.
				require.Eventually(t, func() bool { return sink.Len() == 2 }, hardWait, hardTick)
				reply := sink.Last()
				assert.Equal(t, iq.TypeError, reply.Type)
				assert.Equal(t, id, reply.ID)
				assert.Equal(t, peer, reply.To)
			}
			// The real answer still resolves it.
			require.True(t, ep.Caller.Receive(&iq.IQ{Type: iq.TypeResult, ID: id, From: peer}))
			got := <-done
			assert.NoError(t, got.Err)
			assert.Zero(t, ep.Caller.Pending())
		})
	}
}
