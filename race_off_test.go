//go:build !race

package iq_test

const raceEnabled = false
