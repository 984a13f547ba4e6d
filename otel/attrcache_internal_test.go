package iqotel

import (
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"

	"github.com/xmpp-iq/iq"
)

// TestAttrCacheMadeOnce checks that a method's attributes are made once
// and are the method's: its Clark name, its span names, and an outcome's
// set as the package documentation lists it.
func TestAttrCacheMadeOnce(t *testing.T) {
	var c attrCache
	m := c.method("urn:xmpp:ping", "ping")
	require.Same(t, m, c.method("urn:xmpp:ping", "ping"), "made again")
	assert.Equal(t, "{urn:xmpp:ping}ping", m.method)
	assert.Equal(t, attrRPCMethod.String("{urn:xmpp:ping}ping"), m.methodKV)
	assert.Equal(t, "get {urn:xmpp:ping}ping", m.spanName(iq.TypeGet))
	assert.Equal(t, "set {urn:xmpp:ping}ping", m.spanName(iq.TypeSet))
	assert.Equal(t, "result {urn:xmpp:ping}ping", m.spanName(iq.TypeResult))

	for _, tc := range []struct {
		name    string
		outcome iq.Outcome
		cond    iq.Condition
		want    []attribute.KeyValue
	}{
		{"result", iq.OutcomeResult, "", nil},
		{"error", iq.OutcomeError, iq.ItemNotFound, []attribute.KeyValue{
			AttrCondition.String("item-not-found"), attrErrorType.String("item-not-found")}},
		{"timeout", iq.OutcomeTimeout, "", []attribute.KeyValue{attrErrorType.String("timeout")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := m.outcome(tc.outcome, tc.cond)
			require.Same(t, o, m.outcome(tc.outcome, tc.cond), "made again")
			want := append([]attribute.KeyValue{systemXMPP, m.methodKV, AttrOutcome.String(string(tc.outcome))}, tc.want...)
			wantSet, got := attribute.NewSet(want...), outcomeSet(m.methodKV, tc.outcome, tc.cond)
			assert.Equal(t, wantSet.ToSlice(), got.ToSlice())
			assert.Len(t, o.add, 1)
			assert.Len(t, o.record, 1)
		})
	}
}

// TestAttrCacheBounded checks that a program naming methods (or one
// method's outcomes) without bound makes the cache keep no more than its
// bounds, while every measurement still gets its own attributes.
func TestAttrCacheBounded(t *testing.T) {
	var c attrCache
	for i := range maxMethods + 100 {
		local := "q" + strconv.Itoa(i)
		m := c.method("urn:example:many", local)
		require.Equal(t, "{urn:example:many}"+local, m.method)
	}
	assert.EqualValues(t, maxMethods, c.n.Load())
	kept := 0
	c.methods.Range(func(any, any) bool { kept++; return true })
	assert.Equal(t, maxMethods, kept)
	over := c.method("urn:example:many", "q"+strconv.Itoa(maxMethods+1))
	assert.NotSame(t, over, c.method("urn:example:many", "q"+strconv.Itoa(maxMethods+1)), "kept past the bound")

	m := c.method("urn:example:many", "q0")
	for i := range maxOutcomes + 10 {
		cond := iq.Condition("made-up-" + strconv.Itoa(i))
		o := m.outcome(iq.OutcomeError, cond)
		require.Len(t, o.add, 1)
	}
	assert.EqualValues(t, maxOutcomes, m.noutcomes.Load())
}

// TestAttrCacheBoundUnderRace makes methods past the bound from many
// goroutines at once: the cache keeps exactly its bound, not one more.
func TestAttrCacheBoundUnderRace(t *testing.T) {
	var c attrCache
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range maxMethods / 8 {
				c.method("urn:example:race", strconv.Itoa(g)+"-"+strconv.Itoa(i))
			}
		})
	}
	wg.Wait()
	kept := 0
	c.methods.Range(func(any, any) bool { kept++; return true })
	assert.Equal(t, maxMethods, kept)
	assert.EqualValues(t, maxMethods, c.n.Load())
}
