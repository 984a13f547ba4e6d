#!/usr/bin/env bash
# Runs the benchmark module (bench/) COUNT times (default 6), interleaved: each
# round runs every benchmark once, so that drift of the machine hits all of
# them alike. Prints a benchstat table and the ratios the project's targets
# are stated in. Usage: scripts/bench.sh [COUNT] [BENCH-REGEXP]
set -euo pipefail
cd "$(dirname "$0")/.."
count="${1:-6}"
filter="${2:-.}"
export PATH="/usr/local/go/bin:$(go env GOPATH)/bin:$PATH"
command -v benchstat >/dev/null 2>&1 || go install golang.org/x/perf/cmd/benchstat@latest

out="$(mktemp /tmp/iq-bench.XXXXXX)"
(cd bench && go test -c -o "$out.test" .)
for i in $(seq 1 "$count"); do
	echo "round $i/$count" >&2
	"$out.test" -test.run '^$' -test.bench "$filter" -test.benchmem -test.count 1 -test.timeout 30m >>"$out"
done
rm -f "$out.test"

echo "== machine"
echo "$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(go version)"
echo
echo "== benchstat ($count interleaved rounds; raw output in $out)"
benchstat "$out"
echo
echo "== ratios (medians)"
python3 - "$out" <<'PY'
import re, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    m = re.match(r'^(Benchmark\S+?)(-\d+)?\s+\d+\s+(.*)$', line)
    if not m:
        continue
    name, rest = m.group(1), m.group(3)
    vals = dict((u, float(v)) for v, u in re.findall(r'([\d.]+) (\S+)', rest))
    for u, v in vals.items():
        runs.setdefault((name, u), []).append(v)
def med(name, unit):
    v = runs.get((name, unit))
    return statistics.median(v) if v else None
def ratio(label, a, b, target, better="lower"):
    if a is None or b is None:
        print(f"{label}: n/a"); return
    r = a / b
    print(f"{label}: {r:.2f}  (target {target})")
rt = "BenchmarkRoundTrip/"
ratio("round trip seq, mellium time / iq time", med(rt+"mellium/seq", "ns/op"), med(rt+"iq/seq", "ns/op"), ">= 4")
ratio("round trip seq, iq time / encoding-xml floor", med(rt+"iq/seq", "ns/op"), med("BenchmarkFloor/encoding-xml", "ns/op"), "<= 0.7")
print(f"round trip seq, iq allocs/op: {med(rt+'iq/seq', 'allocs/op')}  (target <= 40)")
ratio("64 in flight, mellium time / iq time (= req/s ratio)", med(rt+"mellium/inflight64", "ns/op"), med(rt+"iq/inflight64", "ns/op"), ">= 4")
print(f"Caller bookkeeping seq: {med('BenchmarkCaller/seq', 'ns/op')} ns, {med('BenchmarkCaller/seq', 'allocs/op')} allocs  (target <= 300 ns, <= 2 allocs)")
print(f"Caller bookkeeping par: {med('BenchmarkCaller/par', 'ns/op')} ns, {med('BenchmarkCaller/par', 'allocs/op')} allocs")
for n in ("100000", "1000000"):
    print(f"pending n={n}: {med('BenchmarkPending/n='+n, 'B/pending')} B each  (target <= 512 at 1,000,000)")
for size in ("1KB", "64KB"):
    for op in ("encode", "decode"):
        ratio(f"{op} {size}, iq MB/s / encoding-xml MB/s", med(f"BenchmarkPayload/{op}/iq/{size}", "MB/s"), med(f"BenchmarkPayload/{op}/encoding-xml/{size}", "MB/s"), ">= 2")
PY
