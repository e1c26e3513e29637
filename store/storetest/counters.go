package storetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/accessauth/caddy-access-auth/store"
)

// counts reads counters through the env's Store.
func (e *env) counts(names ...string) []int64 {
	e.t.Helper()
	return get(e.s.Counts(e.ctx, names)).must(e.t)
}

// testCounters checks store.Counters: batches add, missing and expired
// counters read 0, an expired counter starts again from 0, and a counter
// without expiry stays.
func testCounters(t *testing.T, newBackend func(t *testing.T) store.Backend) {
	e := newEnv(t, newBackend)
	if _, ok := e.backend.(store.Counters); !ok {
		t.Fatalf("%T keeps no counters", e.backend)
	}
	now := time.Now()
	later := now.Add(time.Hour)
	quotaName, _ := store.QuotaCounter("az-1", "pay", store.PlanQuota{Requests: 10, Period: store.PeriodDay}, now)
	usage, _ := store.DailyUsageCounter("ak-1", "pay", false, now)
	tests := []struct {
		name   string
		deltas []store.CountDelta
		read   []string
		want   []int64
	}{
		{"missing counters read 0", nil, []string{quotaName, usage}, []int64{0, 0}},
		{"one batch adds every delta, twice the same name too",
			[]store.CountDelta{{Name: quotaName, Delta: 3, ExpiresAt: later}, {Name: usage, Delta: 1, ExpiresAt: later}, {Name: quotaName, Delta: 4, ExpiresAt: later}},
			[]string{quotaName, usage, "unknown"}, []int64{7, 1, 0}},
		{"a later batch adds to them", []store.CountDelta{{Name: usage, Delta: 5, ExpiresAt: later}},
			[]string{usage, quotaName}, []int64{6, 7}},
		{"negative deltas subtract", []store.CountDelta{{Name: quotaName, Delta: -2, ExpiresAt: later}},
			[]string{quotaName}, []int64{5}},
		{"an expiry in the past hides the counter", []store.CountDelta{{Name: usage, Delta: 1, ExpiresAt: now.Add(-time.Second)}},
			[]string{usage, quotaName}, []int64{0, 5}},
		{"an expired counter starts again from 0", []store.CountDelta{{Name: usage, Delta: 2, ExpiresAt: later}},
			[]string{usage}, []int64{2}},
		{"no expiry keeps the counter", []store.CountDelta{{Name: "forever", Delta: 9}},
			[]string{"forever"}, []int64{9}},
		{"an empty read reads nothing", nil, []string{}, []int64{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			noErr(t, e.s.AddCounts(e.ctx, tc.deltas))
			if got := e.counts(tc.read...); !slices.Equal(got, tc.want) {
				t.Errorf("counts of %v = %v, want %v", tc.read, got, tc.want)
			}
		})
	}
}

// testConcurrentCounts adds from several writers at once, as the nodes of
// one Redis do: no increment is lost.
func testConcurrentCounts(t *testing.T, newBackend func(t *testing.T) store.Backend) {
	e := newEnv(t, newBackend)
	const writers, batches = 4, 25
	names := []string{"usage/a/2026-03-01/g/allowed", "usage/b/2026-03-01/g/allowed", "quota/az-1/day/2026-03-01"}
	expires := time.Now().Add(time.Hour)
	var wg sync.WaitGroup
	errs := make(chan error, writers*batches)
	for w := range writers {
		s := e.open(masterKey1) // a Store per writer, as per node
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range batches {
				deltas := make([]store.CountDelta, len(names))
				for i, name := range names {
					deltas[i] = store.CountDelta{Name: name, Delta: int64(i + 1), ExpiresAt: expires}
				}
				if err := s.AddCounts(e.ctx, deltas); err != nil {
					errs <- fmt.Errorf("writer %d: %w", w, err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	want := []int64{writers * batches, 2 * writers * batches, 3 * writers * batches}
	if got := e.counts(names...); !slices.Equal(got, want) {
		t.Errorf("counts = %v, want %v", got, want)
	}
}
