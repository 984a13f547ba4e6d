#!/usr/bin/env bash
# Runs every fuzz target for a while each (default 10m): scripts/fuzz.sh [DURATION]
# Crashers land in testdata/fuzz/<Target>/ (commit them with their fix);
# `go test ./...` runs the seed corpora as ordinary tests.
set -euo pipefail
cd "$(dirname "$0")/.."
time="${1:-10m}"
targets=(
	".:FuzzIQUnmarshal"
	".:FuzzElementRoundTrip"
	".:FuzzStanzaError"
	".:FuzzParseElement"
	".:FuzzName"
	".:FuzzParseJIDFastPaths"
	".:FuzzDecodeStruct"
	".:FuzzWriteAppendEscaped"
	".:FuzzEncodersAgree"
	".:FuzzIQFromTokens"
	"./stream:FuzzConnRead"
	"./internal/xmldec:FuzzDifferential"
	# A test module of its own (it needs mellium); go.work lets go test
	# reach it from here.
	"./tests/jidcompat:FuzzDifferential"
)
failed=()
for t in "${targets[@]}"; do
	pkg="${t%%:*}" name="${t##*:}"
	echo "==> $name ($pkg) for $time"
	# A short minimisation keeps new-coverage inputs from stalling the run.
	corpus="$pkg/testdata/fuzz/$name"
	before=$(ls "$corpus" 2>/dev/null | sort)
	if ! go test "$pkg" -timeout 0 -run '^$' -fuzz "^${name}\$" -fuzztime "$time" -fuzzminimizetime 5s -parallel "${FUZZ_PARALLEL:-1}"; then
		after=$(ls "$corpus" 2>/dev/null | sort)
		if [ "$before" = "$after" ]; then
			# Go 1.26's coordinator can fail a run with "context deadline
			# exceeded" as -fuzztime ends (golang/go#75804): no input was
			# written, so nothing failed.
			echo "fuzz: $name ended on Go's fuzztime deadline race, no failing input written"
		else
			failed+=("$name")
		fi
	fi
done
if [ ${#failed[@]} -gt 0 ]; then
	echo "fuzz: failures in: ${failed[*]}"; exit 1
fi
echo "fuzz: all targets ran $time without a failure"
