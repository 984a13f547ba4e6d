//go:build !race

package xmldec

const raceEnabled = false
