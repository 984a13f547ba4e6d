//go:build race

package stream_test

// raceEnabled reports a -race build, whose sync.Pool drops items at random,
// so that allocation counts mean nothing.
const raceEnabled = true
