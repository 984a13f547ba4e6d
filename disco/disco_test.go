package disco_test

import (
	"context"
	"encoding/xml"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/disco"
	"github.com/xmpp-iq/iq/iqtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func features(vars ...string) []disco.Feature {
	out := make([]disco.Feature, len(vars))
	for i, v := range vars {
		out[i] = disco.Feature{Var: v}
	}
	return out
}

func TestInfoVer(t *testing.T) {
	tests := []struct {
		name string
		info disco.Info
		want string
	}{
		{
			// XEP-0115 §5.2: the simple generation example.
			"XEP-0115 5.2",
			disco.Info{
				Identities: []disco.Identity{{Category: "client", Type: "pc", Name: "Exodus 0.9.1"}},
				Features:   features(disco.NSCaps, disco.NSInfo, disco.NSItems, "http://jabber.org/protocol/muc"),
			},
			"QgayPKawpkPSDYmwT/WM94uAlu0=",
		},
		{
			"XEP-0115 5.2 in another order",
			disco.Info{
				Identities: []disco.Identity{{Category: "client", Type: "pc", Name: "Exodus 0.9.1"}},
				Features:   features("http://jabber.org/protocol/muc", disco.NSItems, disco.NSCaps, disco.NSInfo),
			},
			"QgayPKawpkPSDYmwT/WM94uAlu0=",
		},
		{
			// XEP-0115 §5.3's identities and features, without its form:
			// identities sorted by xml:lang. Computed independently:
			// base64(sha1("client/pc/el/Ψ 0.11<client/pc/en/Psi 0.11<http://jabber.org/protocol/caps<…muc<")).
			"identities by lang",
			disco.Info{
				Identities: []disco.Identity{
					{Category: "client", Type: "pc", Lang: "en", Name: "Psi 0.11"},
					{Category: "client", Type: "pc", Lang: "el", Name: "Ψ 0.11"},
				},
				Features: features(disco.NSCaps, disco.NSInfo, disco.NSItems, "http://jabber.org/protocol/muc"),
			},
			"2ZC2Fe8xb+Ln321QG0/AaqNEfBU=",
		},
		{"empty", disco.Info{}, "2jmj7l5rSw0yVb/vlWAYkK/YBwk="}, // SHA-1 of ""
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := fmt.Sprint(tt.info)
			assert.Equal(t, tt.want, tt.info.Ver())
			assert.Equal(t, before, fmt.Sprint(tt.info), "Ver must not modify info")
		})
	}
}

func TestServerVerMatchesXEP0115(t *testing.T) {
	c := iq.NewCallee(iqtest.NewRecorder())
	defer c.Close()
	s := disco.Register(c, disco.Identity{Category: "client", Type: "pc", Name: "Exodus 0.9.1"})
	// disco#info comes from the routing table; muc from a handler too.
	c.Get("http://jabber.org/protocol/muc", "query", func(context.Context, *iq.IQ) (*iq.Element, error) { return nil, nil })
	s.AddFeature(disco.NSCaps, disco.NSItems, disco.NSCaps)
	assert.Equal(t, "QgayPKawpkPSDYmwT/WM94uAlu0=", s.Ver())
	caps := s.Caps()
	assert.Equal(t, disco.Caps{Hash: "sha-1", Node: disco.DefaultNode, Ver: "QgayPKawpkPSDYmwT/WM94uAlu0="}, caps)
	assert.Equal(t, `<c xmlns="http://jabber.org/protocol/caps" hash="sha-1" node="https://github.com/xmpp-iq/iq" ver="QgayPKawpkPSDYmwT/WM94uAlu0="/>`,
		caps.Element().String())
}

func TestServerFollowsRoutingTable(t *testing.T) {
	c := iq.NewCallee(iqtest.NewRecorder())
	defer c.Close()
	s := disco.Register(c, disco.Identity{Category: "component", Type: "generic"})
	vars := func() []string {
		var out []string
		for _, f := range s.Info().Features {
			out = append(out, f.Var)
		}
		return out
	}
	assert.Equal(t, []string{disco.NSInfo}, vars())
	ver0 := s.Ver()

	c.Get("urn:xmpp:ping", "ping", func(context.Context, *iq.IQ) (*iq.Element, error) { return nil, nil })
	c.Set("jabber:iq:roster", "query", func(context.Context, *iq.IQ) (*iq.Element, error) { return nil, nil })
	assert.Equal(t, []string{disco.NSInfo, "jabber:iq:roster", "urn:xmpp:ping"}, vars())
	assert.NotEqual(t, ver0, s.Ver(), "a new handler changes the ver")

	s.HideFeature("jabber:iq:roster")
	s.AddFeature("urn:xmpp:receipts", "")
	assert.Equal(t, []string{disco.NSInfo, "urn:xmpp:ping", "urn:xmpp:receipts"}, vars())
	s.HideFeature("urn:xmpp:receipts")
	assert.Equal(t, []string{disco.NSInfo, "urn:xmpp:ping"}, vars())

	s.AddIdentity(disco.Identity{Category: "automation", Type: "command-list"}, disco.Identity{Category: "component", Type: "generic"})
	assert.Equal(t, []disco.Identity{{Category: "automation", Type: "command-list"}, {Category: "component", Type: "generic"}},
		s.Info().Identities, "sorted, without duplicates")
}

func TestHandleInfo(t *testing.T) {
	p := iqtest.NewPair("juliet@example.com/balcony", "service.example.com")
	defer p.Close()
	s := disco.Register(p.B.Callee,
		disco.Identity{Category: "component", Type: "generic", Name: "Service", Lang: "en"},
		disco.Identity{Category: "component", Type: "generic", Name: "Dienst", Lang: "de"})
	s.SetNode("urn:example:node")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	tests := []struct {
		name     string
		node     string
		wantNode string
		wantErr  error
	}{
		{"no node", "", "", nil},
		{"caps node", "urn:example:node#" + s.Ver(), "urn:example:node#" + s.Ver(), nil},
		{"stale caps node", "urn:example:node#AAAA", "", &iq.StanzaError{Type: iq.Cancel, Condition: iq.ItemNotFound}},
		{"other node", "http://jabber.org/protocol/commands", "", &iq.StanzaError{Condition: iq.ItemNotFound}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, err := disco.Get(ctx, p.A.Caller, p.BJID, tt.node)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				assert.Nil(t, info)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.wantNode, info.Node)
			assert.Equal(t, s.Ver(), info.Ver(), "what crossed the wire hashes the same")
			require.Len(t, info.Identities, 2)
			assert.Equal(t, "de", info.Identities[0].Lang, "xml:lang survives the wire")
			assert.Equal(t, features(disco.NSInfo), info.Features)
		})
	}
}

func TestInfoXML(t *testing.T) {
	c := iq.NewCallee(iqtest.NewRecorder())
	defer c.Close()
	disco.Register(c, disco.Identity{Category: "client", Type: "bot", Name: "R&D", Lang: "en"})
	reply := c.Reply(context.Background(), iqtest.NewRequest(
		`<iq type='get' id='d1' from='a@b/c'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`))
	require.Equal(t, iq.TypeResult, reply.Type)
	assert.Equal(t, `<query xmlns="http://jabber.org/protocol/disco#info">`+
		`<identity category="client" type="bot" name="R&amp;D" xml:lang="en"/>`+
		`<feature var="http://jabber.org/protocol/disco#info"/></query>`, reply.Payload.String())
	var back disco.Info
	require.NoError(t, xml.Unmarshal([]byte(reply.Payload.String()), &back))
	assert.Equal(t, "en", back.Identities[0].Lang)
}

func TestServerConcurrent(t *testing.T) {
	p := iqtest.NewPair("juliet@example.com/balcony", "service.example.com")
	defer p.Close()
	s := disco.Register(p.B.Callee, disco.Identity{Category: "component", Type: "generic"})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := range 50 {
			s.AddFeature(fmt.Sprintf("urn:example:f%d", i))
			p.B.Callee.Get(fmt.Sprintf("urn:example:h%d", i), "q", func(context.Context, *iq.IQ) (*iq.Element, error) { return nil, nil })
		}
	}()
	go func() {
		defer wg.Done()
		for range 20 {
			_, err := disco.Get(context.Background(), p.A.Caller, p.BJID, "")
			assert.NoError(t, err)
		}
	}()
	wg.Wait()
	info, err := disco.Get(context.Background(), p.A.Caller, p.BJID, "")
	require.NoError(t, err)
	assert.Len(t, info.Features, 101)
}

func ExampleRegister() {
	callee := iq.NewCallee(iqtest.NewRecorder())
	info := disco.Register(callee, disco.Identity{Category: "client", Type: "pc", Name: "Exodus 0.9.1"})
	// Handlers registered before or after are advertised.
	callee.Get("http://jabber.org/protocol/muc", "query", func(context.Context, *iq.IQ) (*iq.Element, error) { return nil, nil })
	// So are features handled elsewhere, declared by hand.
	info.AddFeature(disco.NSCaps, disco.NSItems)

	reply := callee.Reply(context.Background(), iqtest.NewRequest(
		`<iq type='get' id='d1' from='romeo@montague.lit/orchard'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`))
	for f := range reply.Payload.Children() {
		fmt.Println(f.Name.Local, f.AttrValue("category")+f.AttrValue("var"))
	}
	fmt.Println(info.Caps().Ver) // XEP-0115 §5.2
	// Output:
	// identity client
	// feature http://jabber.org/protocol/caps
	// feature http://jabber.org/protocol/disco#info
	// feature http://jabber.org/protocol/disco#items
	// feature http://jabber.org/protocol/muc
	// QgayPKawpkPSDYmwT/WM94uAlu0=
}

// TestFeatureLeavesWithItsHandler checks that a namespace whose last
// handler is unregistered leaves the features and the caps ver at once,
// and comes back with a new handler.
func TestFeatureLeavesWithItsHandler(t *testing.T) {
	const ns = "urn:example:gone"
	c := iq.NewCallee(iqtest.NewRecorder())
	s := disco.Register(c, disco.Identity{Category: "client", Type: "bot"})
	ok := func(context.Context, *iq.IQ) (*iq.Element, error) { return nil, nil }
	c.Get(ns, "a", ok)
	c.Set(ns, "a", ok)
	with := s.Ver()
	assert.Contains(t, s.Info().Features, disco.Feature{Var: ns})

	require.True(t, c.Unregister(iq.TypeGet, ns, "a"))
	assert.Contains(t, s.Info().Features, disco.Feature{Var: ns}, "the set handler is still there")
	assert.Equal(t, with, s.Ver())

	require.True(t, c.Unregister(iq.TypeSet, ns, "a"))
	assert.NotContains(t, s.Info().Features, disco.Feature{Var: ns})
	without := s.Ver()
	assert.NotEqual(t, with, without, "ver still counts the feature")
	assert.Equal(t, features(disco.NSInfo), s.Info().Features)

	// The caps node#ver of before is no longer answered.
	_, err := s.HandleInfo(context.Background(), &disco.Info{Node: disco.DefaultNode + "#" + with})
	var serr *iq.StanzaError
	require.ErrorAs(t, err, &serr)
	assert.Equal(t, iq.ItemNotFound, serr.Condition)

	c.Get(ns, "a", ok)
	assert.Equal(t, with, s.Ver(), "the feature is back")
}
