package store

import (
	"testing"
	"time"
)

func TestQuotaCounterPeriods(t *testing.T) {
	at := time.Date(2026, 12, 3, 21, 30, 0, 0, time.FixedZone("x", -5*3600)) // 2026-12-04 02:30 UTC, a Friday
	for _, tc := range []struct {
		period, group, name, resets string
	}{
		{PeriodDay, "", "quota/az-1/day/2026-12-04", "2026-12-05"},
		{PeriodWeek, "pay", "quota/az-1/pay/week/2026-11-30", "2026-12-07"},
		{PeriodMonth, "", "quota/az-1/month/2026-12-01", "2027-01-01"},
	} {
		name, resets := QuotaCounter("az-1", tc.group, PlanQuota{Requests: 10, Period: tc.period}, at)
		if name != tc.name || resets.Format(time.DateOnly) != tc.resets || resets.Location() != time.UTC {
			t.Errorf("%s: got %s resetting %s, want %s resetting %s", tc.period, name, resets, tc.name, tc.resets)
		}
	}
	// A Monday starts its own week.
	if name, _ := QuotaCounter("a", "", PlanQuota{Period: PeriodWeek}, time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)); name != "quota/a/week/2026-11-30" {
		t.Errorf("monday: %s", name)
	}
}

func TestDailyUsageCounter(t *testing.T) {
	name, exp := DailyUsageCounter("ak-1", "pay", true, time.Date(2026, 12, 3, 23, 59, 0, 0, time.UTC))
	if name != "usage/ak-1/2026-12-03/pay/limited" || !exp.Equal(time.Date(2027, 3, 4, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("got %s expiring %s", name, exp)
	}
}
