package store

import (
	"context"
	"errors"
	"time"
)

// Counters are named int64 counters kept beside the data set: the counts of
// quota budgets (so they survive a restart and are shared by the nodes of
// one Redis) and the daily usage of each key. They are not part of a write
// transaction and are not audited; a node adds to them in batches.
//
// A Backend that keeps counters implements Counters. In Redis a counter is
// a plain integer at the key <prefix>count:<name>, one key per counter (so
// it lives in one Cluster slot and a script may INCRBY it atomically).
type Counters interface {
	// AddCounts adds every delta in one batch (one transaction, one
	// pipeline) and sets each counter's expiry.
	AddCounts(ctx context.Context, deltas []CountDelta) error
	// Counts reads counters; a missing or expired one is 0.
	Counts(ctx context.Context, names []string) ([]int64, error)
}

// CountDelta adds Delta to the counter Name, which expires at ExpiresAt
// (zero: never).
type CountDelta struct {
	Name      string
	Delta     int64
	ExpiresAt time.Time
}

// ErrNoCounters is returned by Store's counter methods over a backend
// without Counters.
var ErrNoCounters = errors.New("store: the backend keeps no counters")

// AddCounts adds deltas to the store's counters in one batch.
func (s *Store) AddCounts(ctx context.Context, deltas []CountDelta) error {
	c, ok := s.backend.(Counters)
	if !ok {
		return ErrNoCounters
	}
	if len(deltas) == 0 {
		return nil
	}
	return c.AddCounts(ctx, deltas)
}

// Counts reads the store's counters.
func (s *Store) Counts(ctx context.Context, names []string) ([]int64, error) {
	c, ok := s.backend.(Counters)
	if !ok {
		return nil, ErrNoCounters
	}
	return c.Counts(ctx, names)
}

// QuotaCounter names the counter of a quota budget in the period that holds
// t, and says when that period ends (UTC calendar day, ISO week from
// Monday, or month). An authorization's own budget has group ""; a
// binding's budget is its group's. The name changes with the period, so a
// new period starts from 0, and the counter is kept a day past its end.
func QuotaCounter(authorizationID, group string, q PlanQuota, t time.Time) (name string, resetsAt time.Time) {
	t = t.UTC()
	day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	start := day
	switch q.Period {
	case PeriodWeek:
		start = day.AddDate(0, 0, -(int(day.Weekday())+6)%7)
		resetsAt = start.AddDate(0, 0, 7)
	case PeriodMonth:
		start = time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
		resetsAt = start.AddDate(0, 1, 0)
	default: // PeriodDay
		resetsAt = start.AddDate(0, 0, 1)
	}
	name = "quota/" + authorizationID
	if group != "" {
		name += "/" + group
	}
	return name + "/" + q.Period + "/" + start.Format(time.DateOnly), resetsAt
}

// DailyUsageCounter names the counter of one key's requests to one group on
// t's UTC day: "allowed" ones (they passed every step) or "limited" ones
// (refused 429 by a plan). Kept 90 days, plus one.
func DailyUsageCounter(accessKeyID, group string, limited bool, t time.Time) (name string, expiresAt time.Time) {
	t = t.UTC()
	day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	kind := "allowed"
	if limited {
		kind = "limited"
	}
	return "usage/" + accessKeyID + "/" + day.Format(time.DateOnly) + "/" + group + "/" + kind,
		day.AddDate(0, 0, UsageDays+1)
}

// UsageDays is how many days of daily usage the store keeps and a key's
// usage shows.
const UsageDays = 90
