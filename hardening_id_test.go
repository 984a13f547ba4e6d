package iq_test

import (
	"encoding/base64"
	"encoding/binary"
	"flag"
	"math"
	"math/bits"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/xmpp-iq/iq"
)

var hardeningIDsN = flag.Int("ids.n", 100_000, "how many ids TestHardeningIDs* generate (CI: 1000000)")

const hardIDAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// hardIDRaw checks an id's form and returns its 12 bytes.
func hardIDRaw(t *testing.T, id string) (raw [12]byte) {
	t.Helper()
	if len(id) != 16 {
		t.Fatalf("id %q has %d characters, want 16", id, len(id))
	}
	for i := 0; i < len(id); i++ {
		if !hardIDAlphabetSet[id[i]] {
			t.Fatalf("id %q has %q, outside [A-Za-z0-9_-]", id, id[i])
		}
	}
	n, err := base64.RawURLEncoding.Decode(raw[:], []byte(id))
	if err != nil || n != 12 {
		t.Fatalf("id %q does not decode to 12 bytes: %d, %v", id, n, err)
	}
	return raw
}

var hardIDAlphabetSet = func() (s [256]bool) {
	for i := 0; i < len(hardIDAlphabet); i++ {
		s[hardIDAlphabet[i]] = true
	}
	return s
}()

// TestHardeningIDsUnique generates -ids.n ids on four goroutines at
// once: all distinct, all 16 characters of [A-Za-z0-9_-] that decode to
// 96 bits.
func TestHardeningIDsUnique(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	n := *hardeningIDsN
	const workers = 4
	raws := make([][12]byte, n)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				raws[i] = hardIDRawQuiet(iq.NewID())
			}
		}()
	}
	wg.Wait()
	// The form, checked with t on this goroutine for a sample and fully
	// by hardIDRawQuiet (a zero value marks a malformed id).
	for range 1000 {
		hardIDRaw(t, iq.NewID())
	}
	seen := make(map[[12]byte]struct{}, n)
	var zero [12]byte
	for i, r := range raws {
		require.NotEqual(t, zero, r, "id %d malformed or all-zero", i)
		_, dup := seen[r]
		require.False(t, dup, "id %d repeats an earlier one", i)
		seen[r] = struct{}{}
	}
	assert.Len(t, seen, n)
	t.Logf("%d ids, %d distinct, 16 chars of [A-Za-z0-9_-], 96 bits each", n, len(seen))
}

// hardIDRawQuiet is hardIDRaw for worker goroutines: a malformed id
// yields the zero value, which the test rejects.
func hardIDRawQuiet(id string) (raw [12]byte) {
	if len(id) != 16 {
		return raw
	}
	for i := 0; i < len(id); i++ {
		if !hardIDAlphabetSet[id[i]] {
			return raw
		}
	}
	if n, err := base64.RawURLEncoding.Decode(raw[:], []byte(id)); err != nil || n != 12 {
		return [12]byte{}
	}
	return raw
}

// hardIDStats measures what would betray a sequence rather than random
// draws, over consecutive ids.
type hardIDStats struct {
	n             int
	longPrefix    int     // consecutive pairs sharing ≥ 4 leading characters
	smallDelta    int     // consecutive pairs whose 96-bit difference is < 2^64
	worstBitDev   float64 // max over the 96 bit positions of |P(1) − 0.5|
	meanHamming   float64 // mean bits differing between consecutive ids
	ones          [96]int // per bit position
	maxPrefixSeen int     // longest common prefix seen
}

func hardIDMeasure(t *testing.T, n int, gen func() string) hardIDStats {
	t.Helper()
	s := hardIDStats{n: n}
	prev := gen()
	prevRaw := hardIDRaw(t, prev)
	var hamming int
	for i := 1; i < n; i++ {
		id := gen()
		raw := hardIDRaw(t, id)
		p := 0
		for p < 16 && id[p] == prev[p] {
			p++
		}
		if p >= 4 {
			s.longPrefix++
		}
		s.maxPrefixSeen = max(s.maxPrefixSeen, p)
		// |a − b| as 96-bit big-endian integers.
		ah, al := uint64(binary.BigEndian.Uint32(raw[:4])), binary.BigEndian.Uint64(raw[4:])
		bh, bl := uint64(binary.BigEndian.Uint32(prevRaw[:4])), binary.BigEndian.Uint64(prevRaw[4:])
		if ah < bh || (ah == bh && al < bl) {
			ah, al, bh, bl = bh, bl, ah, al
		}
		_, borrow := bits.Sub64(al, bl, 0)
		if ah-bh-borrow == 0 {
			s.smallDelta++
		}
		for b := range 96 {
			if raw[b/8]&(0x80>>(b%8)) != 0 {
				s.ones[b]++
			}
		}
		for k := range 12 {
			hamming += bits.OnesCount8(raw[k] ^ prevRaw[k])
		}
		prev, prevRaw = id, raw
	}
	for b := range 96 {
		dev := float64(s.ones[b])/float64(n-1) - 0.5
		if dev < 0 {
			dev = -dev
		}
		s.worstBitDev = max(s.worstBitDev, dev)
	}
	s.meanHamming = float64(hamming) / float64(n-1)
	return s
}

// random reports whether the stats look like independent uniform draws.
// The bounds are far from chance: for n = 10^6 pairs, ≥ 4 shared leading
// characters has expectation n/64^4 ≈ 0.06, a difference under 2^64 has
// probability 2^-31 per pair, the per-bit frequency's standard deviation
// is 0.0005 (the bound is 6 of them), and the mean Hamming distance's
// is 0.005 (the bound is 200 of them).
func (s hardIDStats) random() (bool, string) {
	switch {
	case s.longPrefix > 3+s.n/1_000_000:
		return false, "consecutive ids share ≥ 4 leading characters " + strconv.Itoa(s.longPrefix) + " times"
	case s.smallDelta > 0:
		return false, "consecutive ids are numerically close " + strconv.Itoa(s.smallDelta) + " times"
	case s.worstBitDev > 3/math.Sqrt(float64(s.n-1)): // 6 standard deviations
		return false, "a bit position is biased by " + strconv.FormatFloat(s.worstBitDev, 'f', 4, 64)
	case s.meanHamming < 47 || s.meanHamming > 49:
		return false, "mean Hamming distance " + strconv.FormatFloat(s.meanHamming, 'f', 2, 64)
	}
	return true, ""
}

// TestHardeningIDsNotSequential measures consecutive ids from NewID, and,
// to show the measure can fail, from a counter and from a clock-like
// sequence, which it must reject.
func TestHardeningIDsNotSequential(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	counterGen := func(step uint64) func() string {
		var c uint64
		return func() string {
			c += step
			var raw [12]byte
			binary.BigEndian.PutUint64(raw[4:], c)
			return base64.RawURLEncoding.EncodeToString(raw[:])
		}
	}
	n := *hardeningIDsN
	cases := []struct {
		name       string
		n          int
		gen        func() string
		wantRandom bool
	}{
		{"iq.NewID", n, iq.NewID, true},
		{"counter (Smack, QXmpp)", min(n, 100_000), counterGen(1), false},
		{"counter with a large odd step", min(n, 100_000), counterGen(0x9E3779B97F4A7C15), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := hardIDMeasure(t, tc.n, tc.gen)
			ok, why := s.random()
			t.Logf("%s: %d ids; pairs with ≥4 shared leading chars: %d (longest %d); numerically close pairs: %d; worst bit bias: %.5f; mean Hamming distance: %.3f bits",
				tc.name, s.n, s.longPrefix, s.maxPrefixSeen, s.smallDelta, s.worstBitDev, s.meanHamming)
			assert.Equal(t, tc.wantRandom, ok, why)
		})
	}
}
