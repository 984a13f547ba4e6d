package iqotel

import (
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/xmpp-iq/iq"
)

// The attributes of a measurement or a span depend, besides the request's
// id and addresses, only on its payload's name (its method), its type and
// how it ended. Building them for every request cost most of what the
// instrumentation did per request: an attribute.Set is sorted and
// allocated, the method's Clark name is concatenated, and every option and
// the slice that passes it to the instrument is allocated, all of it even
// with the no-op providers a program gets when it configures none. So
// they are made once per method and outcome, and kept.
//
// What is kept is bounded: methods are the payloads a program's handlers
// and requests name, and outcomes and conditions are the iq package's
// (an unknown condition is read as undefined-condition). Past maxMethods
// methods, or maxOutcomes outcomes of one method, attributes are built for
// each measurement, as they were before, rather than kept: a program that
// names payloads without bound pays per request, not in memory.
const (
	maxMethods  = 1024
	maxOutcomes = 64
)

// methodKey names a method: its payload's namespace and local name.
type methodKey struct{ space, local string }

// methodAttrs is what is made once for a method.
type methodAttrs struct {
	method    string             // "{space}local", rpc.method
	methodKV  attribute.KeyValue // rpc.method as an attribute
	spanNames [2]string          // "get {space}local", "set {space}local"
	// add carries rpc.system.name and rpc.method, for the instruments
	// that count requests in flight or pending.
	add []metric.AddOption

	outcomes  sync.Map // outcomeKey → *outcomeAttrs
	noutcomes atomic.Int32
}

// outcomeKey names how a request of a method ended.
type outcomeKey struct {
	outcome iq.Outcome
	cond    iq.Condition
}

// outcomeAttrs is what is made once for a method and outcome: the
// attributes of the count of requests and of their duration.
type outcomeAttrs struct {
	add    []metric.AddOption
	record []metric.RecordOption
}

// attrCache holds the methodAttrs made so far. It is safe for concurrent
// use.
type attrCache struct {
	methods sync.Map // methodKey → *methodAttrs
	n       atomic.Int32
}

// method returns space and local's methodAttrs, made now if need be.
func (c *attrCache) method(space, local string) *methodAttrs {
	return loadOrMake(&c.methods, &c.n, maxMethods, methodKey{space, local},
		func() *methodAttrs { return newMethodAttrs(space, local) })
}

// loadOrMake returns what m holds for k, or what make makes, which m then
// holds too unless it holds max values already (n counts them, reserving
// a place before storing, so that goroutines racing to store never take
// it past max).
func loadOrMake[K comparable, V any](m *sync.Map, n *atomic.Int32, max int32, k K, make func() V) V {
	if v, ok := m.Load(k); ok {
		return v.(V)
	}
	v := make()
	if n.Add(1) > max {
		n.Add(-1)
		return v
	}
	if old, loaded := m.LoadOrStore(k, v); loaded {
		n.Add(-1)
		return old.(V)
	}
	return v
}

func newMethodAttrs(space, local string) *methodAttrs {
	method := "{" + space + "}" + local
	kv := attrRPCMethod.String(method)
	return &methodAttrs{
		method:    method,
		methodKV:  kv,
		spanNames: [2]string{spanName(iq.TypeGet, method), spanName(iq.TypeSet, method)},
		add:       []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(systemXMPP, kv))},
	}
}

// spanName returns the name of a span for a request of type t.
func (m *methodAttrs) spanName(t iq.Type) string {
	switch t {
	case iq.TypeGet:
		return m.spanNames[0]
	case iq.TypeSet:
		return m.spanNames[1]
	}
	return spanName(t, m.method)
}

// outcome returns the attributes of a request of this method that ended
// with outcome and cond, made now if need be.
func (m *methodAttrs) outcome(outcome iq.Outcome, cond iq.Condition) *outcomeAttrs {
	return loadOrMake(&m.outcomes, &m.noutcomes, maxOutcomes, outcomeKey{outcome, cond}, func() *outcomeAttrs {
		set := metric.WithAttributeSet(outcomeSet(m.methodKV, outcome, cond))
		return &outcomeAttrs{add: []metric.AddOption{set}, record: []metric.RecordOption{set}}
	})
}

// outcomeSet is the attribute set of a request's end.
func outcomeSet(method attribute.KeyValue, outcome iq.Outcome, cond iq.Condition) attribute.Set {
	attrs := make([]attribute.KeyValue, 0, 5)
	attrs = append(attrs, systemXMPP, method, AttrOutcome.String(string(outcome)))
	switch {
	case outcome == iq.OutcomeError:
		attrs = append(attrs, AttrCondition.String(string(cond)), attrErrorType.String(string(cond)))
	case outcome != iq.OutcomeResult:
		attrs = append(attrs, attrErrorType.String(string(outcome)))
	}
	return attribute.NewSet(attrs...)
}
