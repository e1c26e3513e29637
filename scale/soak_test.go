package scale

import (
	"math"
	"testing"
)

// TestSoakSlope: a series that grows beyond maxSoakGrowth an hour, above
// its noise, is not flat; noise around a level, a shrinking series and a
// slow drift are.
func TestSoakSlope(t *testing.T) {
	series := func(level, perHour, noise float64) []soakSample {
		var s []soakSample
		for i := range 90 { // 15 minutes, a sample each 10 s
			at := float64(i) / 360
			jitter := noise * math.Sin(float64(i)*2.7) // deterministic, zero-mean-ish
			s = append(s, soakSample{at: at, rss: level + perHour*at + jitter})
		}
		return s
	}
	rss := func(p soakSample) float64 { return p.rss }
	for _, tt := range []struct {
		name                  string
		level, perHour, noise float64
		wantFlat              bool
	}{
		{"level", 200, 0, 5, true},
		{"shrinking", 200, -20, 5, true},
		{"slow drift", 200, 10, 0.5, true},
		{"leak", 200, 100, 2, false},
		{"leak in noise", 30, 30, 8, false},
		{"noisy count", 30, 6, 8, true},
	} {
		perHour, flat := soakSlope(series(tt.level, tt.perHour, tt.noise), rss)
		if flat != tt.wantFlat {
			t.Errorf("%s: slope %.1f an hour, flat %v, want %v", tt.name, perHour, flat, tt.wantFlat)
		}
	}
}
