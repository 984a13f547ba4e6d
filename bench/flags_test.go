package bench

import "flag"

// full turns on the rows that take long; scripts/bench.sh passes it, the
// CI smoke run does not.
var full = flag.Bool("bench.full", false,
	"also run the slow rows: 1,000,000 pending, 500 KB payloads, 512 in flight")

// inFlightCounts is how many requests the RoundTrip rows keep outstanding.
func inFlightCounts() []int {
	if *full {
		return []int{1, 8, 64, 512}
	}
	return []int{1, 8, 64}
}

// payloadSize is one row of the Size group: the payload's encoded size,
// nominal (the built payload is at least this long and at most one item
// longer).
type payloadSize struct {
	name  string
	bytes int
}

func payloadSizes() []payloadSize {
	s := []payloadSize{{"100B", 100}, {"10KB", 10 << 10}}
	if *full {
		s = append(s, payloadSize{"500KB", 500 << 10})
	}
	return s
}

// pendingCounts is how many requests wait during PendingLatency's round
// trips and the Pending group's heap measure.
func pendingCounts() []int {
	if *full {
		return []int{10, 1_000_000}
	}
	return []int{10}
}
