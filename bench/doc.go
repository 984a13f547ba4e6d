// Package bench measures iq beside mellium.im/xmpp, net/rpc (gob) and a
// plain encoding/xml floor, in one go test run; it holds no code of its
// own, only benchmarks and the tests that check every peer they measure
// answers correctly.
//
// The groups, each in a file of its own:
//
//   - RoundTrip/{iq,mellium,netrpc}/{pipe,tcp}/inflight=N: an echo of a
//     small element (net/rpc: of as many bytes, with gob), N requests
//     outstanding at once; RoundTrip/floor/{pipe,tcp}/inflight=1 is the
//     same exchange written with encoding/xml alone.
//   - Typed/{iq,mellium}/{pipe,tcp}/inflight=N: a struct sent, decoded by
//     the responder, sent back and decoded again.
//   - Size/{iq,mellium,netrpc}/{pipe,tcp}/size=S: an echo of a payload of
//     S bytes, with its throughput both ways in MB/s.
//   - PendingLatency/pending=N: one round trip while N other requests wait.
//   - Caller, Pending, Payload: the Caller's own bookkeeping, the heap a
//     pending request holds, and payload encoding and decoding alone.
//   - Structure/{pipe,tcp}/S: what iq's goroutine structure costs by
//     itself, an echo of bytes with or without its hand-offs.
//
// The rows that take long (1,000,000 pending, 500 KB payloads, 512 in
// flight) run only with -bench.full, which scripts/bench.sh passes; the
// default run is the quick smoke run CI makes.
package bench
