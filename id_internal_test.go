package iq

import (
	"encoding/base64"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestEncodeIDIsBase64URL holds encodeID to encoding/base64's
// RawURLEncoding on random and on edge inputs (all zero and all one
// bits, which reach both ends of the alphabet).
func TestEncodeIDIsBase64URL(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	inputs := [][idBytes]byte{{}, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}
	for range 1000 {
		var raw [idBytes]byte
		for i := range raw {
			raw[i] = byte(rng.Uint32())
		}
		inputs = append(inputs, raw)
	}
	for _, raw := range inputs {
		var got [idLen]byte
		encodeID(&got, &raw)
		require.Equal(t, base64.RawURLEncoding.EncodeToString(raw[:]), string(got[:]), "encodeID(%x)", raw)
	}
}
