package signature

import (
	"fmt"
	"testing"
	"time"
)

// TestParseCompactTimeMatchesTimeDate checks the hand-made calendar against
// time.Date over every day of years around the edges of the Gregorian rules
// (year 0, century and 400-year leap rules, the epoch, 9999) and times of day.
func TestParseCompactTimeMatchesTimeDate(t *testing.T) {
	for _, year := range []int{0, 1, 4, 99, 100, 400, 1600, 1700, 1899, 1900, 1969, 1970, 1971, 2000, 2024, 2026, 2100, 2400, 9999} {
		for month := 1; month <= 12; month++ {
			for day := 1; day <= 32; day++ {
				for _, clock := range [][3]int{{0, 0, 0}, {12, 34, 56}, {23, 59, 59}} {
					s := fmt.Sprintf("%04d%02d%02dT%02d%02d%02dZ", year, month, day, clock[0], clock[1], clock[2])
					want := time.Date(year, time.Month(month), day, clock[0], clock[1], clock[2], 0, time.UTC)
					wantOK := want.Day() == day
					got, ok := parseCompactTime(s)
					if ok != wantOK {
						t.Fatalf("parseCompactTime(%q) ok = %v, want %v", s, ok, wantOK)
					}
					if ok && (got != want || got.Location() != time.UTC) {
						t.Fatalf("parseCompactTime(%q) = %v, want %v", s, got, want)
					}
				}
			}
		}
	}
}
