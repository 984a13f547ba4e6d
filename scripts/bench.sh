#!/usr/bin/env bash
# Runs the benchmark module (bench/) in ROUNDS interleaved rounds (default 6):
# each round runs every group once, with -bench.full, so that drift of the
# machine hits all of them alike. Prints the load average before and after
# each round, a benchstat table over all rounds, and for each measure the
# project's targets are stated in, its spread over the rounds (min, median,
# max of the per-round value) beside the target.
#
# Usage: scripts/bench.sh [ROUNDS] [GROUP-REGEXP]
#   GROUP-REGEXP picks groups by their whole name (RoundTrip, Typed, Size,
#   PendingLatency, Caller, Payload, Pending), 'RoundTrip|Typed' say;
#   default all but Pending.
# Raw output stays in /tmp/iq-bench.XXXXXX.d (one file per round);
# scripts/bench.sh report DIR prints the tables again from it.
#
# BENCH_BASE=DIR scripts/bench.sh [ROUNDS] [GROUP-REGEXP]
#   Compares against the library in DIR (another worktree: /work/main,
#   say), built with these same benchmark sources: every group runs on
#   both in each round, in turn, and benchstat shows the difference.
#   A round takes twice as long. With BENCH_BASE_SOURCES=own, the base
#   is built with its own benchmark sources instead (for a base that
#   these sources do not build against); rows it lacks show as missing.
# A full run of 6 rounds takes about 12 minutes on 2 cores.
#
# Usage: scripts/bench.sh profile ROW [BENCHTIME]
#   CPU profile of one row (RoundTrip/iq/pipe/inflight=1, say; BENCHTIME
#   3s by default): pprof's top functions, then the share of CPU time by
#   area (decoding, encoding, pipe hand-offs, socket I/O, Callee, Caller,
#   scheduler, GC...), each with the part spent allocating.
#
# Usage: scripts/bench.sh bounds [ROUNDS]
#   What bounds the targets still missed (BENCHMARKS.md, "What bounds the
#   targets still missed"), in ROUNDS interleaved rounds (default 3): the
#   goroutine structure alone (BenchmarkStructure) with 2 Ps and with 1;
#   the one-at-a-time round trips of iq, mellium, net/rpc and the floor
#   with 2 Ps and with 1; the 10 KB payload round trip with the collector
#   at GOGC=100 (the default) and 400. Medians per row and setting.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$(go env GOPATH)/bin:$PATH"

# Everything is in functions, read whole before anything runs: editing
# this file while a run goes on does not break it.

load() { uptime | sed 's/.*load average: //'; }

# cpu_model names the host's processor: figures from different hosts do
# not compare (BENCHMARKS.md's runs q and g differ by 3x over TCP).
cpu_model() { grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2 | xargs || echo '?'; }

# Each group with the -benchtime that keeps a round near two minutes. The
# Pending group is left out by default: PendingLatency reports the same
# B/pending from its own fill of a million requests, and filling them
# twice a round would double the round's slowest part. Name it in
# GROUP-REGEXP to run it (once a round: the fill is the measure).
groups=(
	"RoundTrip 0.3s"
	"Typed 0.3s"
	"Size 0.3s"
	"PendingLatency 0.3s"
	"Caller 0.2s"
	"Payload 0.2s"
	"Pending 1x"
)

run() {
	local rounds="${1:-6}" pick="${2:-RoundTrip|Typed|Size|PendingLatency|Caller|Payload}"
	command -v benchstat >/dev/null 2>&1 || go install golang.org/x/perf/cmd/benchstat@latest
	local dir sides=(head)
	dir="$(mktemp -d /tmp/iq-bench.XXXXXX.d)"
	mkdir "$dir/head"
	(cd bench && go test -c -o "$dir/head.test" .)
	if [[ -n "${BENCH_BASE:-}" ]]; then
		# These benchmark sources, built against the library in BENCH_BASE.
		local base
		base="$(cd "$BENCH_BASE" && pwd)"
		mkdir "$dir/base" "$dir/gowork"
		# The base's adapter too, for the rows that go through it
		# (RoundTrip/iq-mellium).
		printf 'go 1.26.0\n\nuse (\n\t%s\n\t%s\n\t%s\n)\n\nreplace github.com/xmpp-iq/iq v0.0.0 => %s\n\nreplace github.com/xmpp-iq/iq/adapter/mellium v0.0.0 => %s\n' \
			"$base" "$base/adapter/mellium" "$PWD/bench" "$base" "$base/adapter/mellium" >"$dir/gowork/go.work"
		if [[ "${BENCH_BASE_SOURCES:-}" == own ]]; then
			# The base's own benchmark sources: for a base these sources
			# do not build against (an API they use is newer); the rows
			# both have are compared.
			(cd "$base/bench" && go test -c -o "$dir/base.test" .)
		else
			(cd bench && GOWORK="$dir/gowork/go.work" go test -c -o "$dir/base.test" .)
		fi
		sides=(base head)
	fi
	echo "== machine"
	echo "$(nproc) cores, $(cpu_model), $(go version | cut -d' ' -f3-)"
	echo "head: $PWD at $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo ' (modified)')"
	if [[ -n "${BENCH_BASE:-}" ]]; then
		echo "base: $base at $(git -C "$base" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$base" diff --quiet 2>/dev/null || echo ' (modified)')"
	fi
	echo
	echo "== rounds (load average 1, 5, 15 min)"
	local start=$SECONDS i g name benchtime side order
	for i in $(seq 1 "$rounds"); do
		echo "round $i/$rounds before: $(load)"
		# With a base, every group runs on both sides, in turn, the side
		# that goes first alternating from round to round.
		order=("${sides[@]}")
		if ((${#sides[@]} == 2 && i % 2 == 0)); then order=(head base); fi
		for g in "${groups[@]}"; do
			read -r name benchtime <<<"$g"
			[[ "$name" =~ ^($pick)$ ]] || continue
			for side in "${order[@]}"; do
				"$dir/$side.test" -test.run '^$' -test.bench "^Benchmark$name\$" -test.benchtime "$benchtime" \
					-test.benchmem -test.count 1 -test.timeout 30m -bench.full >>"$dir/$side/round$i.txt"
			done
		done
		echo "round $i/$rounds after:  $(load)  ($((SECONDS - start)) s so far)"
	done
	rm -f "$dir"/*.test
	report "$dir"
}

# report DIR prints the benchstat table and the targets of a run: DIR holds
# head/ (and base/, for a run with BENCH_BASE) with one file per round.
report() {
	local dir="${1:?usage: scripts/bench.sh report DIR}"
	local sides=() side rounds
	if [[ ! -d "$dir/head" && -e "$dir/round1.txt" ]]; then
		ln -s . "$dir/head" # a run from before the head/ and base/ layout
	fi
	for side in base head; do
		if [[ -d "$dir/$side" ]]; then sides+=("$side"); fi
	done
	for side in "${sides[@]}"; do
		cat $(ls "$dir/$side"/round*.txt | sort -V) >"$dir/$side.txt"
	done
	rounds=$(ls "$dir/head"/round*.txt | wc -l)
	echo
	echo "== benchstat ($rounds interleaved rounds; raw output in $dir)"
	(cd "$dir" && benchstat "${sides[@]/%/.txt}")
	for side in "${sides[@]}"; do
		echo
		echo "== targets ($side): per-round values, min / median / max over $rounds rounds"
		targets "$dir/$side"
	done
}

targets() {
	python3 - "$1" <<'PY'
import re, statistics, sys

import glob

d = sys.argv[1]
rounds = len(glob.glob(f"{d}/round*.txt"))

def parse(path):
    vals = {}
    for line in open(path):
        m = re.match(r'^Benchmark(\S+?)(-\d+)?\s+\d+\s+(.*)$', line)
        if m:
            for v, unit in re.findall(r'([\d.e+-]+) (\S+)', m.group(3)):
                vals[(m.group(1), unit)] = float(v)
    return vals

per_round = []
for i in range(1, rounds + 1):
    try:
        per_round.append(parse(f"{d}/round{i}.txt"))
    except FileNotFoundError:
        pass

def series(f):
    out = []
    for r in per_round:
        try:
            v = f(r)
        except (KeyError, ZeroDivisionError):
            continue
        out.append(v)
    return out

rows = []
def row(label, f, target):
    rows.append((label, series(f), target))

ns = lambda name: (lambda r: r[(name, "ns/op")])
def ratio(a, b):
    return lambda r: a(r) / b(r)
def metric(name, unit):
    return lambda r: r[(name, unit)]

RT = "RoundTrip/"
for tr, n, target in (("pipe", 1, ">= 4"), ("pipe", 64, ">= 4"), ("tcp", 1, "(1.2-1.3 before)"), ("tcp", 64, ">= 2.5")):
    row(f"round trip {tr} inflight={n}: mellium time / iq time",
        ratio(ns(f"{RT}mellium/{tr}/inflight={n}"), ns(f"{RT}iq/{tr}/inflight={n}")), target)
for tr, n in (("pipe", 8), ("pipe", 512), ("tcp", 8), ("tcp", 512)):
    row(f"round trip {tr} inflight={n}: mellium time / iq time",
        ratio(ns(f"{RT}mellium/{tr}/inflight={n}"), ns(f"{RT}iq/{tr}/inflight={n}")), "(no target)")
for tr, n in (("pipe", 1), ("pipe", 64), ("tcp", 1), ("tcp", 64)):
    row(f"typed {tr} inflight={n}: mellium time / iq time",
        ratio(ns(f"Typed/mellium/{tr}/inflight={n}"), ns(f"Typed/iq/{tr}/inflight={n}")), ">= 3")
for tr, n, target in (("pipe", 1, "<= 1.0"), ("pipe", 64, "<= 1.0"), ("tcp", 1, "(no target)"), ("tcp", 64, "(no target)")):
    row(f"net/rpc {tr} inflight={n}: iq time / net/rpc time",
        ratio(ns(f"{RT}iq/{tr}/inflight={n}"), ns(f"{RT}netrpc/{tr}/inflight={n}")), target)
for tr, n in (("pipe", 1), ("pipe", 64), ("tcp", 1), ("tcp", 64)):
    row(f"iq through melliumiq {tr} inflight={n}: its time / mellium's own",
        ratio(ns(f"{RT}iq-mellium/{tr}/inflight={n}"), ns(f"{RT}mellium/{tr}/inflight={n}")), "(no target)")
for tr, n in (("pipe", 1), ("pipe", 64), ("tcp", 1), ("tcp", 8), ("tcp", 64)):
    row(f"component.Pool {tr} inflight={n}: Pool of 1 time / stream.Conn time",
        ratio(ns(f"{RT}iq-pool1/{tr}/inflight={n}"), ns(f"{RT}iq/{tr}/inflight={n}")), "(no target)")
    row(f"component.Pool {tr} inflight={n}: Pool of 4 time / Pool of 1 time",
        ratio(ns(f"{RT}iq-pool4/{tr}/inflight={n}"), ns(f"{RT}iq-pool1/{tr}/inflight={n}")), "(no target)")
for tr in ("pipe", "tcp"):
    row(f"floor {tr} inflight=1: iq time / encoding/xml reused-encoder time",
        ratio(ns(f"{RT}iq/{tr}/inflight=1"), ns(f"{RT}floor/{tr}/inflight=1")), "<= 0.7")
for size, kb in (("10KB", 10), ("500KB", 500)):
    for tr in ("pipe", "tcp"):
        row(f"payload {size} {tr}: iq MB/s (both ways)", metric(f"Size/iq/{tr}/size={size}", "MB/s"), ">= 150")
        row(f"payload {size} {tr}: iq allocs per KB", lambda r, n=f"Size/iq/{tr}/size={size}", kb=kb: r[(n, "allocs/op")] / kb, "<= 10")
        row(f"payload {size} {tr}: iq-release MB/s (opt-in)", metric(f"Size/iq-release/{tr}/size={size}", "MB/s"), ">= 150")
        row(f"payload {size} {tr}: iq-release allocs per KB", lambda r, n=f"Size/iq-release/{tr}/size={size}", kb=kb: r[(n, "allocs/op")] / kb, "<= 10")
        row(f"payload {size} {tr}: iq-typed MB/s (GetAs into a struct)", metric(f"Size/iq-typed/{tr}/size={size}", "MB/s"), "(no target)")
        row(f"payload {size} {tr}: iq-typed-release MB/s (opt-in)", metric(f"Size/iq-typed-release/{tr}/size={size}", "MB/s"), "(no target)")
    row(f"payload {size} pipe: mellium MB/s (both ways)", metric(f"Size/mellium/pipe/size={size}", "MB/s"), "(reference)")
    row(f"payload {size} pipe: iq through melliumiq MB/s", metric(f"Size/iq-mellium/pipe/size={size}", "MB/s"), "(no target)")
    row(f"payload {size} pipe: net/rpc MB/s (both ways)", metric(f"Size/netrpc/pipe/size={size}", "MB/s"), "(reference)")
for tr in ("pipe", "tcp"):
    row(f"allocs per Element round trip, {tr} (both ends)", metric(f"{RT}iq/{tr}/inflight=1", "allocs/op"), "<= 8")
row("pending request memory at 1,000,000 (B each)", metric("PendingLatency/pending=1000000", "B/pending"), "<= 400")
row("latency with 1,000,000 pending / with 10", ratio(ns("PendingLatency/pending=1000000"), ns("PendingLatency/pending=10")), "flat (~1)")

w = max(len(r[0]) for r in rows)
print(f"{'measure':<{w}}  {'min':>8} {'median':>8} {'max':>8}  {'n':>2}  target")
for label, s, target in rows:
    if not s:
        print(f"{label:<{w}}  {'n/a':>8} {'n/a':>8} {'n/a':>8}  {0:>2}  {target}")
        continue
    fmt = (lambda v: f"{v:8.0f}") if max(s) >= 100 else (lambda v: f"{v:8.2f}")
    print(f"{label:<{w}}  {fmt(min(s))} {fmt(statistics.median(s))} {fmt(max(s))}  {len(s):>2}  {target}")
PY
}

profile() {
	local row="${1:?usage: scripts/bench.sh profile ROW [BENCHTIME]}" benchtime="${2:-3s}"
	local dir re
	dir="$(mktemp -d /tmp/iq-profile.XXXXXX.d)"
	(cd bench && go test -c -o "$dir/bench.test" .)
	# RoundTrip/iq/pipe/inflight=1 → ^BenchmarkRoundTrip$/^iq$/^pipe$/^inflight=1$
	re="$(awk -F/ '{ s = "^Benchmark" $1 "$"; for (i = 2; i <= NF; i++) s = s "/^" $i "$"; print s }' <<<"$row")"
	echo "== profile of $row ($benchtime), load before: $(load)"
	"$dir/bench.test" -test.run '^$' -test.bench "$re" -test.benchtime "$benchtime" -test.benchmem \
		-bench.full -test.cpuprofile "$dir/cpu.prof" | grep '^Benchmark'
	echo "load after: $(load); profile in $dir/cpu.prof"
	echo
	go tool pprof -top -nodecount=25 "$dir/bench.test" "$dir/cpu.prof" 2>/dev/null | sed -n '/flat%/,$p'
	echo
	local classify
	classify="$(cat <<'PY'
import re, sys
# Each sample goes to the area of the frame nearest its leaf that names
# one (allocation counts for the area that allocates); GC work (background
# marking, assists, sweeping) goes to GC; a stack with no area frame in a
# scheduler function is the scheduler (idle included).
areas = [
    ("pipe hand-offs (net.Pipe)", r"^net\.\(\*pipe"),
    ("socket I/O (TCP)", r"^(internal/poll\.|net\.\(\*conn\)|net\.\(\*netFD\)|syscall\.|runtime\.netpoll)"),
    ("decoding", r"(iq/internal/xmldec\.|iq\.\(\*ElementBuilder\)|iq\.ParseElement|iq\.IQFromElement|iq\.IQFromTokens|iq\.decodeElement|iq\.\(\*IQ\)\.fromElement|iq/stream\.\(\*Conn\)\.ReadElement|^encoding/xml\.\(\*Decoder\)|iq\.\(\*Element\)\.Decode|^encoding/xml\.Unmarshal)"),
    ("encoding", r"(iq\.append|iq\.\(\*Element\)\.AppendXML|iq\.\(\*IQ\)\.Append|iq\.MarshalElement|^encoding/xml\.\(\*Encoder\)|^encoding/xml\.Marshal)"),
    ("Callee", r"(iq\.\(\*Callee\)|iq\.HandlerFunc|iq\.typedHandler|iq\.handleTyped)"),
    ("Caller", r"(iq\.\(\*Caller\)|iq\.\(\*Call\)|iq\.GetAs|iq\.requestAs|iq\.\(\*Endpoint\))"),
    ("stream (other: write path, read loop)", r"iq/stream\."),
    ("component (Pool, Supervisor)", r"iq/component\."),
    ("JIDs (parsing, comparing)", r"(iq\.ParseJID|iq\.norm|iq\.plain|iq\.JID\.|iq\.ipLiteral)"),
    ("melliumiq (the adapter)", r"iq/adapter/mellium\."),
    ("mellium", r"^mellium\.im/"),
    ("net/rpc, gob", r"^(net/rpc\.|encoding/gob\.)"),
    ("benchmark driver", r"iq/bench\."),
]
gc = re.compile(r"^runtime\.(gcBgMarkWorker|gcAssistAlloc|bgsweep|bgscavenge|gcStart|gcMarkDone|gcMarkTermination)")
sched = re.compile(r"^runtime\.(schedule|findRunnable|park_m|mcall|goschedImpl|gosched_m|gopreempt_m|stopm|mstart|goexit0|exitsyscall|entersyscall|wakep|startm|handoffp|injectglist|usleep|futex|notesleep|osyield|sysmon)")
alloc = re.compile(r"^runtime\.(mallocgc|newobject|makeslice|growslice|makemap|rawstring|rawbyteslice|makechan|slicebytetostring|concatstring)")
# Waking, parking and locking, whatever area it happens in.
handoff = re.compile(r"^(runtime\.(chansend|chanrecv|selectgo|gopark|goready|ready|lock2|unlock2|semacquire|semrelease|futex|runqput|wakep|notewakeup|casgstatus|park_m|schedule|findRunnable|mcall|usleep|osyield|netpoll)|internal/sync\.|sync\.\(\*Mutex\)|sync\.\(\*RWMutex\))")
total, by, by_alloc, by_frame, handoffs = 0, {}, {}, {}, 0
def add(d, k, v):
    d[k] = d.get(k, 0) + v
def flush(ms, stack):
    global total, handoffs
    if not stack or not ms:
        return
    total += ms
    for f in stack:  # the runtime and sync frames nearest the leaf
        if handoff.search(f):
            handoffs += ms
            break
        if not (f.startswith("runtime.") or f.startswith("internal/runtime/") or f.startswith("sync.") or f.startswith("internal/sync.")):
            break
    area, frame, allocating = None, None, False
    if any(gc.search(f) for f in stack):
        area = "GC"
    else:
        for f in stack:  # leaf first
            if alloc.search(f):
                allocating = True
            for name, pat in areas:
                if re.search(pat, f):
                    area, frame = name, f
                    break
            if area:
                break
    if area is None:
        area = "scheduler (idle included)" if any(sched.search(f) for f in stack) else "runtime (other)"
        allocating = False
    add(by, area, ms)
    if allocating:
        add(by_alloc, area, ms)
    if frame:
        add(by_frame, (area, re.sub(r"^github\.com/xmpp-iq/", "", frame)), ms)
unit = {"ns": 1e-6, "us": 1e-3, "µs": 1e-3, "ms": 1, "s": 1e3}
ms, stack = 0, []
for line in sys.stdin:
    if line.startswith("-----------+"):
        flush(ms, stack)
        ms, stack = 0, []
        continue
    m = re.match(r"^\s+([\d.]+)(ns|us|µs|ms|s)\s+(\S+)", line)
    if m:
        flush(ms, stack)
        ms, stack = float(m.group(1)) * unit[m.group(2)], [m.group(3)]
        continue
    m = re.match(r"^\s+(\S+)", line)
    if m and ms:
        stack.append(m.group(1))
flush(ms, stack)
print(f"CPU by area ({total:.0f} ms sampled), with the part spent allocating and the frames that place it there:")
for a, v in sorted(by.items(), key=lambda kv: -kv[1]):
    al = by_alloc.get(a, 0)
    extra = f"  (allocating {100*al/total:4.1f} %)" if al else ""
    print(f"  {a:<40} {100*v/total:5.1f} %{extra}")
    frames = sorted(((f, w) for (ar, f), w in by_frame.items() if ar == a), key=lambda kv: -kv[1])[:3]
    for f, w in frames:
        print(f"      {100*w/total:5.1f} %  {f}")
print(f"hand-offs and scheduling in all areas (channels, locks, parking, waking, idle): {100*handoffs/total:.1f} %")
PY
)"
	go tool pprof -traces "$dir/bench.test" "$dir/cpu.prof" 2>/dev/null | python3 -c "$classify"
}

bounds() {
	local rounds="${1:-3}" dir i p g
	dir="$(mktemp -d /tmp/iq-bounds.XXXXXX.d)"
	(cd bench && go test -c -o "$dir/bench.test" .)
	echo "== machine: $(nproc) cores, $(cpu_model), $(go version | cut -d' ' -f3-), $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
	for i in $(seq 1 "$rounds"); do
		echo "round $i/$rounds before: $(load)"
		for p in 2 1; do
			GOMAXPROCS=$p "$dir/bench.test" -test.run '^$' -test.bench 'Structure/tcp' \
				-test.benchtime 20000x | sed -n "s/^Benchmark\([^ 	]*\)-*[0-9]*[ 	].* \([0-9.]*\) ns\/op.*/P=$p \1 \2/p" >>"$dir/raw.txt"
			GOMAXPROCS=$p "$dir/bench.test" -test.run '^$' \
				-test.bench 'RoundTrip/(iq|mellium|netrpc|floor)/(pipe|tcp)/inflight=1$|Typed/(iq|mellium)/(pipe|tcp)/inflight=1$' \
				-test.benchtime 0.5s | sed -n "s/^Benchmark\([^ 	]*\)-*[0-9]*[ 	].* \([0-9.]*\) ns\/op.*/P=$p \1 \2/p" >>"$dir/raw.txt"
		done
		for g in 100 400; do
			GOGC=$g "$dir/bench.test" -test.run '^$' -test.bench 'Size/iq/pipe/size=10KB$' \
				-test.benchtime 1s | sed -n "s/^Benchmark\([^ 	]*\)-*[0-9]*[ 	].* \([0-9.]*\) MB\/s.*/GOGC=$g \1 \2MB\/s/p" >>"$dir/raw.txt"
		done
		echo "round $i/$rounds after: $(load)"
	done
	echo "== medians over $rounds rounds (ns/op, or MB/s; raw in $dir/raw.txt)"
	python3 - "$dir/raw.txt" <<'PY'
import sys, re, statistics, collections
rows = collections.defaultdict(dict)
for line in open(sys.argv[1]):
    setting, name, v = line.split()
    rows[re.sub(r"-[0-9]+$", "", name)].setdefault(setting, []).append(float(v.replace("MB/s", "")))
def med(vs):
    return f"{statistics.median(vs):9.0f}" if vs else f"{'-':>9}"
print(f"{'row':<46} {'2 Ps':>9} {'1 P':>9}   (ns/op)")
for name in sorted(n for n in rows if not n.startswith("Size/")):
    r = rows[name]
    print(f"{name:<46} {med(r.get('P=2'))} {med(r.get('P=1'))}")
print(f"{'row':<46} {'GOGC=100':>9} {'GOGC=400':>9}   (MB/s)")
for name in sorted(n for n in rows if n.startswith("Size/")):
    r = rows[name]
    print(f"{name:<46} {med(r.get('GOGC=100'))} {med(r.get('GOGC=400'))}")
PY
}

main() {
	case "${1:-}" in
	profile) shift; profile "$@" ;;
	bounds) shift; bounds "$@" ;;
	report) shift; report "$@" ;;
	*) run "$@" ;;
	esac
}

main "$@"
exit
