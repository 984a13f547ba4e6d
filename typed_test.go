package iq_test

import (
	"context"
	"encoding/xml"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/iqtest"
)

const typedNS = "urn:example:typed"

type typedEcho struct {
	XMLName xml.Name `xml:"urn:example:typed echo"`
	Text    string   `xml:",chardata"`
	N       int      `xml:"n,attr,omitempty"`
}

type typedOther struct {
	XMLName xml.Name `xml:"urn:example:typed other"`
}

type typedNoName struct {
	Text string `xml:",chardata"`
}

type typedNoSpace struct {
	XMLName xml.Name `xml:"echo"`
}

type typedRuntimeName struct {
	XMLName xml.Name
}

// typedPair returns a connected Pair, closed when the test ends, with an
// echo handler on B: a typedEcho with the same text and n+1, an empty
// result for text "empty", a typedOther for "other", and item-not-found
// for "missing". The caller closes it.
func typedPair() *iqtest.Pair {
	p := iqtest.NewPair("juliet@example.com/balcony", "service.example.com")
	h := func(ctx context.Context, req *typedEcho) (*typedEcho, error) {
		switch req.Text {
		case "empty":
			return nil, nil
		case "missing":
			return nil, iq.NewError(iq.Cancel, iq.ItemNotFound, "")
		}
		return &typedEcho{Text: req.Text, N: req.N + 1}, nil
	}
	iq.HandleGet(p.B.Callee, h)
	iq.HandleSet(p.B.Callee, func(ctx context.Context, req *typedEcho) (*typedOther, error) {
		return &typedOther{}, nil
	})
	return p
}

func TestGetAs(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	p := typedPair()
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	tests := []struct {
		name    string
		req     any
		want    typedEcho
		wantErr error
	}{
		{"value", typedEcho{Text: "hi", N: 1}, typedEcho{XMLName: xml.Name{Space: typedNS, Local: "echo"}, Text: "hi", N: 2}, nil},
		{"pointer", &typedEcho{Text: "ptr"}, typedEcho{XMLName: xml.Name{Space: typedNS, Local: "echo"}, Text: "ptr", N: 1}, nil},
		{"element", iq.NewElement(typedNS, "echo").AppendText("el"), typedEcho{XMLName: xml.Name{Space: typedNS, Local: "echo"}, Text: "el", N: 1}, nil},
		{"runtime name", &typedRuntimeName{XMLName: xml.Name{Space: typedNS, Local: "echo"}}, typedEcho{XMLName: xml.Name{Space: typedNS, Local: "echo"}, N: 1}, nil},
		{"empty result is the zero value", typedEcho{Text: "empty"}, typedEcho{}, nil},
		{"stanza error", typedEcho{Text: "missing"}, typedEcho{}, &iq.StanzaError{Type: iq.Cancel, Condition: iq.ItemNotFound}},
		{"unrouted", typedOther{}, typedEcho{}, &iq.StanzaError{Condition: iq.FeatureNotImplemented}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := iq.GetAs[typedEcho](ctx, p.A.Caller, p.BJID, tt.req)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
			} else {
				require.NoError(t, err)
			}
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestGetAsDecodeError(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	p := typedPair()
	defer p.Close()
	ctx := context.Background()

	// The set handler answers <other/>, which is not a typedEcho.
	got, err := iq.SetAs[typedEcho](ctx, p.A.Caller, p.BJID, typedEcho{})
	require.ErrorIs(t, err, iq.ErrDecode)
	assert.Contains(t, err.Error(), "typedEcho")
	assert.Equal(t, typedEcho{}, got)

	// An Element takes any payload; a type without XMLName any too.
	el, err := iq.SetAs[iq.Element](ctx, p.A.Caller, p.BJID, typedEcho{})
	require.NoError(t, err)
	assert.Equal(t, xml.Name{Space: typedNS, Local: "other"}, el.Name)
	_, err = iq.SetAs[typedNoName](ctx, p.A.Caller, p.BJID, typedEcho{})
	require.NoError(t, err)
}

func TestGetAsRequestErrors(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	rec := iqtest.NewRecorder()
	caller := iq.NewCaller(rec)
	defer caller.Close()

	tests := []struct {
		name string
		req  any
	}{
		{"nil", nil},
		{"nil element", (*iq.Element)(nil)},
		{"nil pointer", (*typedEcho)(nil)},
		{"no XMLName", typedNoName{Text: "x"}},
		{"no namespace", typedNoSpace{}},
		{"runtime name unset", typedRuntimeName{}},
		{"not a struct", "<echo xmlns='urn:example:typed'/>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := iq.GetAs[typedEcho](context.Background(), caller, "example.com", tt.req)
			require.ErrorIs(t, err, iq.ErrNoXMLName)
			_, err = iq.SetAs[typedEcho](context.Background(), caller, "example.com", tt.req)
			require.ErrorIs(t, err, iq.ErrNoXMLName)
		})
	}
	assert.Zero(t, rec.Len(), "nothing may be sent for a request that does not encode")
}

func TestHandleGet(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	callee := iq.NewCallee(iqtest.NewRecorder())
	defer callee.Close()
	var seen *iq.IQ
	iq.HandleGet(callee, func(ctx context.Context, req *typedEcho) (*typedEcho, error) {
		seen = iq.RequestFromContext(ctx)
		switch req.Text {
		case "empty":
			return nil, nil
		case "fail":
			return nil, errors.New("boom")
		case "gone":
			return nil, iq.NewError(iq.Cancel, iq.Gone, "")
		}
		return &typedEcho{Text: req.Text, N: req.N * 2}, nil
	})

	tests := []struct {
		name     string
		raw      string
		wantType iq.Type
		want     string // the result's payload, or the error's condition
	}{
		{"result", `<iq type='get' id='1' from='a@b/c'><echo xmlns='urn:example:typed' n='21'>x</echo></iq>`,
			iq.TypeResult, `<echo xmlns="urn:example:typed" n="42">x</echo>`},
		{"empty result", `<iq type='get' id='2'><echo xmlns='urn:example:typed'>empty</echo></iq>`, iq.TypeResult, ""},
		{"stanza error", `<iq type='get' id='3'><echo xmlns='urn:example:typed'>gone</echo></iq>`, iq.TypeError, string(iq.Gone)},
		{"other error", `<iq type='get' id='4'><echo xmlns='urn:example:typed'>fail</echo></iq>`, iq.TypeError, string(iq.InternalServerError)},
		{"does not decode", `<iq type='get' id='5'><echo xmlns='urn:example:typed' n='many'/></iq>`, iq.TypeError, string(iq.BadRequest)},
		{"set is not routed", `<iq type='set' id='6'><echo xmlns='urn:example:typed'/></iq>`, iq.TypeError, string(iq.FeatureNotImplemented)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seen = nil
			req := iqtest.NewRequest(tt.raw)
			reply := callee.Reply(context.Background(), req)
			require.NotNil(t, reply)
			require.Equal(t, tt.wantType, reply.Type, "%s", reply)
			if tt.wantType == iq.TypeError {
				assert.Equal(t, iq.Condition(tt.want), reply.Error.Condition)
				if tt.want == string(iq.BadRequest) {
					assert.Nil(t, seen, "the handler must not run")
					assert.Equal(t, iq.Modify, reply.Error.Type)
				}
				return
			}
			assert.Same(t, req, seen, "RequestFromContext gives the request")
			assert.Equal(t, tt.want, reply.Payload.String())
		})
	}
	assert.Nil(t, iq.RequestFromContext(context.Background()))
}

func TestHandleGetResponseInNoNamespace(t *testing.T) {
	callee := iq.NewCallee(iqtest.NewRecorder())
	defer callee.Close()
	iq.HandleGet(callee, func(context.Context, *typedEcho) (*typedRuntimeName, error) {
		return &typedRuntimeName{XMLName: xml.Name{Local: "bare"}}, nil
	})
	iq.HandleSet(callee, func(context.Context, *typedEcho) (*iq.Element, error) {
		return iq.NewElement(typedNS, "raw"), nil
	})
	reply := callee.Reply(context.Background(), iqtest.NewRequest(`<iq type='get' id='1'><echo xmlns='urn:example:typed'/></iq>`))
	require.Equal(t, iq.TypeError, reply.Type)
	assert.Equal(t, iq.InternalServerError, reply.Error.Condition)

	reply = callee.Reply(context.Background(), iqtest.NewRequest(`<iq type='set' id='2'><echo xmlns='urn:example:typed'/></iq>`))
	require.Equal(t, iq.TypeResult, reply.Type)
	assert.Equal(t, `<raw xmlns="urn:example:typed"/>`, reply.Payload.String())
}

func TestHandleGetPanics(t *testing.T) {
	ok := func(context.Context, *typedEcho) (*typedEcho, error) { return nil, nil }
	tests := []struct {
		name     string
		register func(c *iq.Callee)
		want     string
	}{
		{"request without XMLName", func(c *iq.Callee) {
			iq.HandleGet(c, func(context.Context, *typedNoName) (*typedEcho, error) { return nil, nil })
		}, "typedNoName"},
		{"request without namespace", func(c *iq.Callee) {
			iq.HandleGet(c, func(context.Context, *typedNoSpace) (*typedEcho, error) { return nil, nil })
		}, "typedNoSpace"},
		{"request named at run time", func(c *iq.Callee) {
			iq.HandleSet(c, func(context.Context, *typedRuntimeName) (*typedEcho, error) { return nil, nil })
		}, "typedRuntimeName"},
		{"request not a struct", func(c *iq.Callee) {
			iq.HandleGet(c, func(context.Context, *string) (*typedEcho, error) { return nil, nil })
		}, "string"},
		{"response without XMLName", func(c *iq.Callee) {
			iq.HandleGet(c, func(context.Context, *typedEcho) (*typedNoName, error) { return nil, nil })
		}, "typedNoName"},
		{"nil handler", func(c *iq.Callee) {
			iq.HandleGet[typedEcho, typedEcho](c, nil)
		}, "nil handler"},
		{"nil middleware", func(c *iq.Callee) { iq.HandleGet(c, ok, nil) }, "nil middleware"},
		{"duplicate", func(c *iq.Callee) { iq.HandleGet(c, ok); iq.HandleGet(c, ok) }, "already registered"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := iq.NewCallee(iqtest.NewRecorder())
			defer c.Close()
			defer func() {
				p := recover()
				require.NotNil(t, p, "want a panic")
				assert.Contains(t, p, tt.want)
			}()
			tt.register(c)
		})
	}
}

func TestHandleGetMiddlewareOrder(t *testing.T) {
	callee := iq.NewCallee(iqtest.NewRecorder())
	defer callee.Close()
	var trace []string
	mark := func(name string) iq.Middleware {
		return func(next iq.Handler) iq.Handler {
			return iq.HandlerFunc(func(ctx context.Context, req *iq.IQ) (*iq.Element, error) {
				trace = append(trace, name)
				return next.HandleIQ(ctx, req)
			})
		}
	}
	callee.Use(mark("use1"))
	iq.HandleGet(callee, func(context.Context, *typedEcho) (*typedEcho, error) {
		trace = append(trace, "handler")
		return nil, nil
	}, mark("own1"), mark("own2"))
	callee.Use(mark("use2")) // after registration: still applies
	reply := callee.Reply(context.Background(), iqtest.NewRequest(`<iq type='get' id='1'><echo xmlns='urn:example:typed'/></iq>`))
	require.Equal(t, iq.TypeResult, reply.Type)
	assert.Equal(t, []string{"use1", "use2", "own1", "own2", "handler"}, trace)
}
