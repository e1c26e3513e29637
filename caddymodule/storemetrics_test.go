package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/accessauth/caddy-access-auth/store"
)

func TestStoreFailed(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{fmt.Errorf("key: %w", store.ErrNotFound), false},
		{store.ErrNameTaken, false},
		{store.ErrKeyInUse, false},
		{store.ErrAuthorizationExists, false},
		{store.ErrGroupNotFound, false},
		{&store.InvalidArgumentError{Field: "name", Message: "required"}, false},
		{fmt.Errorf("%w: redis: dial tcp: connection refused", store.ErrUnavailable), true},
		{context.DeadlineExceeded, true},
		{errors.New("disk full"), true},
	}
	for _, tt := range tests {
		if got := storeFailed(tt.err); got != tt.want {
			t.Errorf("storeFailed(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

// failingBackend answers Get with err; the rest of Backend is unused.
type failingBackend struct {
	store.Backend
	err error
}

func (b failingBackend) Get(context.Context, string, string) ([]byte, error) { return nil, b.err }

func TestMeteredBackendCounts(t *testing.T) {
	ok, failed := storeOps[opGet].ok, storeOps[opGet].failed
	okBefore, failedBefore := metricValue(t, ok).GetCounter().GetValue(), metricValue(t, failed).GetCounter().GetValue()
	durations := storeOps[opGet].duration.(prometheus.Histogram)
	samples := metricValue(t, durations).GetHistogram().GetSampleCount()

	ctx := context.Background()
	errs := new(storeErrorLog)
	meteredBackend{failingBackend{}, errs}.Get(ctx, "credentials", "K")
	meteredBackend{failingBackend{err: store.ErrNotFound}, errs}.Get(ctx, "credentials", "K")
	meteredBackend{failingBackend{err: store.ErrUnavailable}, errs}.Get(ctx, "credentials", "K")

	if got := metricValue(t, ok).GetCounter().GetValue() - okBefore; got != 2 {
		t.Errorf("ok count grew by %v, want 2 (found and not found)", got)
	}
	if got := metricValue(t, failed).GetCounter().GetValue() - failedBefore; got != 1 {
		t.Errorf("error count grew by %v, want 1", got)
	}
	if got := metricValue(t, durations).GetHistogram().GetSampleCount() - samples; got != 3 {
		t.Errorf("%d durations observed, want 3", got)
	}
}

func TestObservePropagation(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	feed := make(chan store.Change, 2)
	out := observePropagation(ctx, feed)
	before := metricValue(t, propagationLag).GetHistogram().GetSampleCount()
	feed <- store.Change{Revision: 1, APIKeys: []string{"K"}, At: time.Now().Add(-20 * time.Millisecond)}
	feed <- store.Change{Revision: 2, Reset: true} // no commit time: not observed
	for want := uint64(1); want <= 2; want++ {
		if c := <-out; c.Revision != want {
			t.Fatalf("relayed revision %d, want %d", c.Revision, want)
		}
	}
	if got := metricValue(t, propagationLag).GetHistogram().GetSampleCount() - before; got != 1 {
		t.Errorf("%d lags observed, want 1", got)
	}
	close(feed)
	if _, ok := <-out; ok {
		t.Error("the relay stays open after the feed closed")
	}
}

// metricValue reads the single metric of a collector.
func metricValue(t *testing.T, c prometheus.Metric) *dto.Metric {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return &m
}

// countingBackend keeps counters in memory; the rest of Backend is unused.
type countingBackend struct {
	store.Backend
	counts map[string]int64
}

func (b countingBackend) AddCounts(_ context.Context, deltas []store.CountDelta) error {
	for _, d := range deltas {
		b.counts[d.Name] += d.Delta
	}
	return nil
}

func (b countingBackend) Counts(_ context.Context, names []string) ([]int64, error) {
	values := make([]int64, len(names))
	for i, n := range names {
		values[i] = b.counts[n]
	}
	return values, nil
}

// TestMeteredBackendPassesCountersOn: the Store over a metered backend
// keeps the counters of the backend under it, metered as op count, and
// says so when that backend has none.
func TestMeteredBackendPassesCountersOn(t *testing.T) {
	ctx := context.Background()
	ok := storeOps[opCount].ok
	before := metricValue(t, ok).GetCounter().GetValue()
	m := meteredBackend{countingBackend{counts: map[string]int64{}}, new(storeErrorLog)}
	if err := m.AddCounts(ctx, []store.CountDelta{{Name: "a", Delta: 2}}); err != nil {
		t.Fatal(err)
	}
	if got, err := m.Counts(ctx, []string{"a", "b"}); err != nil || got[0] != 2 || got[1] != 0 {
		t.Errorf("Counts = %v, %v; want [2 0]", got, err)
	}
	if got := metricValue(t, ok).GetCounter().GetValue() - before; got != 2 {
		t.Errorf("count ops grew by %v, want 2", got)
	}
	none := meteredBackend{failingBackend{}, new(storeErrorLog)}
	if err := none.AddCounts(ctx, nil); !errors.Is(err, store.ErrNoCounters) {
		t.Errorf("AddCounts over a backend without counters = %v", err)
	}
	if _, err := none.Counts(ctx, []string{"a"}); !errors.Is(err, store.ErrNoCounters) {
		t.Errorf("Counts over a backend without counters = %v", err)
	}
}

// One operation failing keeps another's failures from being hidden: each
// has its own line a second, which counts the failures it did not log.
func TestStoreErrorLogByOperation(t *testing.T) {
	var l storeErrorLog
	at := time.Unix(1_800_000_000, 0)
	for _, step := range []struct {
		op        string
		after     time.Duration
		logged    bool
		notLogged int64
	}{
		{opCount, 0, true, 0},
		{opGet, 10 * time.Millisecond, true, 0}, // another op: its own line
		{opCount, 20 * time.Millisecond, false, 0},
		{opGet, 30 * time.Millisecond, false, 0},
		{opGet, 40 * time.Millisecond, false, 0},
		{opGet, 1010 * time.Millisecond, true, 2},
		{opCount, 1010 * time.Millisecond, true, 1},
		{opCount, 1500 * time.Millisecond, false, 0},
	} {
		notLogged, logged := l.admit(step.op, at.Add(step.after))
		if logged != step.logged || notLogged != step.notLogged {
			t.Errorf("%s failing at +%v: logged %v (%d not logged before), want %v (%d)",
				step.op, step.after, logged, notLogged, step.logged, step.notLogged)
		}
	}
}
