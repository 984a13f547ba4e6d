package iq_test

import (
	"context"
	"encoding/xml"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/iqtest"
)

const guarNS = "urn:test:guarantees"

// TestBugNilSenderPanicsAtConstruction: NewEndpoint(nil) (and NewCaller,
// NewCallee) returned a value that failed at its first request, far from
// the mistake. Each now panics at once, naming itself.
func TestBugNilSenderPanicsAtConstruction(t *testing.T) {
	var nilFunc iq.SenderFunc
	cases := []struct {
		name string
		new  func()
		want string
	}{
		{"NewEndpoint", func() { iq.NewEndpoint(nil) }, "iq: NewEndpoint: nil Sender"},
		{"NewCaller", func() { iq.NewCaller(nil) }, "iq: NewCaller: nil Sender"},
		{"NewCallee", func() { iq.NewCallee(nil) }, "iq: NewCallee: nil Sender"},
		{"NewEndpoint nil SenderFunc", func() { iq.NewEndpoint(nilFunc) }, "iq: NewEndpoint: nil SenderFunc"},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			assert.PanicsWithValue(t, tt.want, tt.new)
		})
	}
}

// TestBugNilContextPanicsOnCallersGoroutine: Callee.Receive(nil, req)
// handed the nil context to a worker goroutine, whose panic killed the
// process. Every entry point that takes a context now panics on the
// calling goroutine, where recover and the stack trace can see the
// mistake, and nothing is sent.
func TestBugNilContextPanicsOnCallersGoroutine(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	rec := iqtest.NewRecorder()
	ep := iq.NewEndpoint(rec)
	defer ep.Close()
	ep.Callee.Get(guarNS, "q", func(context.Context, *iq.IQ) (*iq.Element, error) { return nil, nil })
	get := func() *iq.IQ {
		return &iq.IQ{Type: iq.TypeGet, ID: "g1", From: "a@b/c", Payload: iq.NewElement(guarNS, "q")}
	}
	var nilCtx context.Context
	cases := []struct {
		name string
		call func()
		want string
	}{
		{"Callee.Receive", func() { ep.Callee.Receive(nilCtx, get()) }, "iq: Callee.Receive: nil Context"},
		{"Callee.Reply", func() { ep.Callee.Reply(nilCtx, get()) }, "iq: Callee.Reply: nil Context"},
		{"Endpoint.Receive get", func() { ep.Receive(nilCtx, get()) }, "iq: Endpoint.Receive: nil Context"},
		{"Endpoint.Receive result", func() { ep.Receive(nilCtx, &iq.IQ{Type: iq.TypeResult, ID: "r"}) }, "iq: Endpoint.Receive: nil Context"},
		{"Caller.Request", func() { _, _ = ep.Caller.Request(nilCtx, get()) }, "iq: Caller.Request: nil Context"},
		{"Caller.Go", func() { ep.Caller.Go(nilCtx, get(), nil) }, "iq: Caller.Go: nil Context"},
		{"Caller.Get", func() { _, _ = ep.Caller.Get(nilCtx, "b", iq.NewElement(guarNS, "q")) }, "iq: Caller.Get: nil Context"},
		{"Caller.Set", func() { _, _ = ep.Caller.Set(nilCtx, "b", iq.NewElement(guarNS, "q")) }, "iq: Caller.Set: nil Context"},
		{"GetAs", func() { _, _ = iq.GetAs[iq.Element](nilCtx, ep.Caller, "b", iq.NewElement(guarNS, "q")) }, "iq: GetAs: nil Context"},
		{"SetAs", func() { _, _ = iq.SetAs[iq.Element](nilCtx, ep.Caller, "b", iq.NewElement(guarNS, "q")) }, "iq: SetAs: nil Context"},
		{"GetAs nil Caller", func() { _, _ = iq.GetAs[iq.Element](context.Background(), nil, "b", iq.NewElement(guarNS, "q")) }, "iq: GetAs: nil Caller"},
		{"HandleGet nil Callee", func() {
			iq.HandleGet(nil, func(context.Context, *guarQuery) (*guarQuery, error) { return nil, nil })
		}, "iq: HandleGet: nil Callee"},
		{"HandleSet nil Callee", func() {
			iq.HandleSet(nil, func(context.Context, *guarQuery) (*guarQuery, error) { return nil, nil })
		}, "iq: HandleSet: nil Callee"},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			assert.PanicsWithValue(t, tt.want, tt.call)
		})
	}
	assert.Zero(t, rec.Len(), "nothing is sent for a call that panicked")
	assert.Zero(t, ep.Callee.InFlight())
	require.Zero(t, ep.Caller.Pending())
}

type guarQuery struct {
	XMLName xml.Name `xml:"urn:test:guarantees q"`
}
