package version_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/iqtest"
	"github.com/xmpp-iq/iq/version"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestGet(t *testing.T) {
	tests := []struct {
		name    string
		v       version.Query
		mw      []func(iq.Handler) iq.Handler
		want    version.Query
		wantErr error
	}{
		{"with os", version.Query{Name: "iq", Version: "1.0", OS: "linux"}, nil,
			version.Query{Name: "iq", Version: "1.0", OS: "linux"}, nil},
		{"without os", version.Query{Name: "iq", Version: "1.0"}, nil,
			version.Query{Name: "iq", Version: "1.0"}, nil},
		{"restricted", version.Query{Name: "iq", Version: "1.0"}, []func(iq.Handler) iq.Handler{iq.Allow(iq.Domains("capulet.lit"))},
			version.Query{}, &iq.StanzaError{Condition: iq.Forbidden}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := iqtest.NewPair("romeo@montague.lit/orchard", "capulet.lit")
			defer p.Close()
			version.Register(p.B.Callee, tt.v, tt.mw...)
			got, err := version.Get(context.Background(), p.A.Caller, p.BJID)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
			} else {
				require.NoError(t, err)
				tt.want.XMLName.Space, tt.want.XMLName.Local = version.NS, "query"
			}
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestRegisterXML(t *testing.T) {
	c := iq.NewCallee(iqtest.NewRecorder())
	defer c.Close()
	version.Register(c, version.Query{Name: "Exodus", Version: "0.7.0.4"})
	// XEP-0092 §3, Example 1.
	reply := c.Reply(context.Background(), iqtest.NewRequest(
		`<iq type='get' from='romeo@montague.net/orchard' to='juliet@capulet.com/balcony' id='version_1'>`+
			`<query xmlns='jabber:iq:version'/></iq>`))
	assert.Equal(t, `<iq type="result" id="version_1" to="romeo@montague.net/orchard" from="juliet@capulet.com/balcony">`+
		`<query xmlns="jabber:iq:version"><name>Exodus</name><version>0.7.0.4</version></query></iq>`, reply.String())
}

func ExampleGet() {
	p := iqtest.NewPair("romeo@montague.lit/orchard", "capulet.lit")
	defer p.Close()
	version.Register(p.B.Callee, version.Query{Name: "Capulet Server", Version: "1.2", OS: "Verona"})

	v, err := version.Get(context.Background(), p.A.Caller, p.BJID)
	fmt.Println(v.Name, v.Version, v.OS, err)
	// Output:
	// Capulet Server 1.2 Verona <nil>
}
