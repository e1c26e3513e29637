package limits

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/accessauth/caddy-access-auth/store"
)

var errDown = errors.New("store down")

// fakeStore is the store in memory: plans, counters, and the shared
// counters' lease script, with a switch that makes it unreachable.
type fakeStore struct {
	mu       sync.Mutex
	plans    map[string]store.Plan
	counts   map[string]int64
	down     bool
	leases   int // Lease calls
	nodes    int64
	planGets int
}

func newFakeStore(plans ...store.Plan) *fakeStore {
	f := &fakeStore{plans: map[string]store.Plan{}, counts: map[string]int64{}, nodes: 1}
	for _, p := range plans {
		f.plans[p.Name] = p
	}
	return f
}

func (f *fakeStore) setDown(down bool) {
	f.mu.Lock()
	f.down = down
	f.mu.Unlock()
}

func (f *fakeStore) setPlan(p store.Plan) {
	f.mu.Lock()
	f.plans[p.Name] = p
	f.mu.Unlock()
}

func (f *fakeStore) count(name string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts[name]
}

func (f *fakeStore) GetPlan(_ context.Context, name string) (store.Plan, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.planGets++
	if f.down {
		return store.Plan{}, store.ErrUnavailable
	}
	p, ok := f.plans[name]
	if !ok {
		return store.Plan{}, store.ErrNotFound
	}
	return p, nil
}

func (f *fakeStore) AddCounts(_ context.Context, deltas []store.CountDelta) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return errDown
	}
	for _, d := range deltas {
		f.counts[d.Name] += d.Delta
	}
	return nil
}

func (f *fakeStore) Counts(ctx context.Context, names []string) ([]int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return nil, errDown
	}
	if err := ctx.Err(); err != nil { // as a real client gives up
		return nil, err
	}
	out := make([]int64, len(names))
	for i, n := range names {
		out[i] = f.counts[n]
	}
	return out, nil
}

func (f *fakeStore) Lease(ctx context.Context, name string, want, limit int64, _ time.Time) (int64, int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.leases++
	if f.down {
		return 0, 0, errDown
	}
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}
	used := f.counts[name]
	granted := max(0, min(want, limit-used))
	f.counts[name] = used + granted
	return granted, used + granted, nil
}

func (f *fakeStore) Nodes(context.Context, string, time.Duration) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return 0, errDown
	}
	return f.nodes, nil
}

// clock is a fake clock starting at a fixed instant.
type clock struct{ t time.Time }

func newClock() *clock { return &clock{t: time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)} }

func (c *clock) add(d time.Duration) time.Time { c.t = c.t.Add(d); return c.t }

func ratePlan(name string, requests int64, per string, burst int64) store.Plan {
	return store.Plan{Name: name, Rate: &store.PlanRate{Requests: requests, Per: per}, Burst: burst}
}

func quotaPlan(name string, requests int64, period string) store.Plan {
	return store.Plan{Name: name, Quota: &store.PlanQuota{Requests: requests, Period: period}}
}
