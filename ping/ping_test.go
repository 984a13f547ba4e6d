package ping_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/iqtest"
	"github.com/xmpp-iq/iq/ping"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestPing(t *testing.T) {
	tests := []struct {
		name    string
		opts    []iqtest.Option
		setup   func(c *iq.Callee)
		timeout time.Duration
		wantErr error
	}{
		{"answered", nil, func(c *iq.Callee) { ping.Register(c) }, 0, nil},
		{"feature-not-implemented is alive", nil, func(*iq.Callee) {}, 0, nil},
		{"service-unavailable is alive",
			[]iqtest.Option{iqtest.WithEndpointOptions(iq.WithUnknownNamespaceCondition(iq.ServiceUnavailable))},
			func(*iq.Callee) {}, 0, nil},
		{"forbidden is an error", nil,
			func(c *iq.Callee) { ping.Register(c, iq.Allow(iq.JIDs("admin@example.com"))) },
			0, &iq.StanzaError{Type: iq.Auth, Condition: iq.Forbidden}},
		{"lost", []iqtest.Option{iqtest.WithDrop(func(*iq.IQ) bool { return true })},
			func(c *iq.Callee) { ping.Register(c) }, 20 * time.Millisecond, iq.ErrTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := iqtest.NewPair("juliet@example.com/balcony", "example.com", tt.opts...)
			defer p.Close()
			tt.setup(p.B.Callee)
			ctx := context.Background()
			if tt.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			err := ping.Ping(ctx, p.A.Caller, p.BJID)
			if tt.wantErr == nil {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, tt.wantErr)
			}
		})
	}
}

func TestRegister(t *testing.T) {
	rec := iqtest.NewRecorder()
	c := iq.NewCallee(rec)
	defer c.Close()
	ping.Register(c)
	assert.Equal(t, []string{ping.NS}, c.Namespaces())
	reply := c.Reply(context.Background(), iqtest.NewRequest(
		`<iq from='capulet.lit' to='juliet@capulet.lit/balcony' id='s2c1' type='get'><ping xmlns='urn:xmpp:ping'/></iq>`))
	require.NotNil(t, reply)
	assert.Equal(t, `<iq type="result" id="s2c1" to="capulet.lit" from="juliet@capulet.lit/balcony"/>`, reply.String())
	assert.Panics(t, func() { ping.Register(c) }, "registered twice")
}

func ExamplePing() {
	p := iqtest.NewPair("juliet@capulet.lit/balcony", "capulet.lit")
	defer p.Close()
	ping.Register(p.B.Callee)

	err := ping.Ping(context.Background(), p.A.Caller, p.BJID)
	fmt.Println("ping:", err)
	// Output:
	// ping: <nil>
}
