//go:build race

package xmldec

// raceEnabled is set under the race detector, which makes the exhaustive
// name-table sweeps (single-goroutine table lookups, nothing for it to find)
// five times slower: they then take a sample, and the plain go test run
// sweeps every code point.
const raceEnabled = true
