package limits

import (
	"context"
	"testing"
	"time"

	"github.com/accessauth/caddy-access-auth/store"
)

// nodes makes n limiters sharing fs, as n Caddy nodes sharing one Redis.
func nodes(fs *fakeStore, n int) []*Limiter {
	ls := make([]*Limiter, n)
	for i := range ls {
		ls[i] = New(Config{Plans: fs, Counts: fs, Shared: fs, Node: string(rune('a' + i))})
		ls[i].nodes.Store(int64(n))
	}
	return ls
}

// offer sends requests at rate (per second, spread evenly) for d, round
// robin over the nodes, and counts the allowed ones.
func offer(ls []*Limiter, b Budget, start time.Time, perSecond int, d time.Duration) (allowed, total int) {
	ctx := context.Background()
	gap := time.Second / time.Duration(perSecond)
	for at := time.Duration(0); at < d; at += gap {
		if ls[total%len(ls)].Take(ctx, b, start.Add(at)).Verdict == Allowed {
			allowed++
		}
		total++
	}
	return allowed, total
}

func TestSharedAccuracy(t *testing.T) {
	for _, tc := range []struct {
		name       string
		plan       store.Plan
		nodes      int
		perSecond  int
		d          time.Duration
		lo, hi     int
		maxLeasesP float64 // Lease calls per offered request
	}{
		// The figures: a quota of 1,000 against 3,000 requests over
		// two nodes; 200/s for 10 s under 1,000/s.
		{"quota 1000, 2 nodes", quotaPlan("p", 1000, store.PeriodDay), 2, 1000, 3 * time.Second, 1000, 1010, 0.1},
		{"quota 1000, 5 nodes", quotaPlan("p", 1000, store.PeriodDay), 5, 1000, 3 * time.Second, 1000, 1010, 0.1},
		{"rate 200/s, 2 nodes", ratePlan("p", 200, store.PerSecond, 0), 2, 1000, 10 * time.Second, 1800, 2200, 0.1},
		{"rate 200/s, 3 nodes", ratePlan("p", 200, store.PerSecond, 0), 3, 1000, 10 * time.Second, 1800, 2200, 0.1},
		{"rate 100/m, 2 nodes", ratePlan("p", 100, store.PerMinute, 0), 2, 50, 5 * time.Minute, 450, 550, 0.1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := newFakeStore(tc.plan)
			ls := nodes(fs, tc.nodes)
			start := newClock().add(300 * time.Millisecond)
			allowed, total := offer(ls, Budget{AuthorizationID: "a", Plan: "p"}, start, tc.perSecond, tc.d)
			if allowed < tc.lo || allowed > tc.hi {
				t.Errorf("%d of %d allowed, want %d..%d", allowed, total, tc.lo, tc.hi)
			}
			if per := float64(fs.leases) / float64(total); per > tc.maxLeasesP {
				t.Errorf("%d leases for %d requests (%.3f a request), want ≤ %.2f", fs.leases, total, per, tc.maxLeasesP)
			}
			t.Logf("%d of %d allowed with %d leases", allowed, total, fs.leases)
		})
	}
}

// A quota in Redis is never exceeded while Redis answers, and tokens a
// node leased but did not spend go back when it closes.
func TestSharedQuotaGivesBackUnspentTokens(t *testing.T) {
	ctx := context.Background()
	fs := newFakeStore(quotaPlan("p", 1000, store.PeriodDay))
	ls := nodes(fs, 1)
	now := newClock().t
	b := Budget{AuthorizationID: "a", Plan: "p"}
	for range 3 {
		ls[0].Take(ctx, b, now)
	}
	const name = "quota/a/day/2026-03-10"
	if got := fs.count(name); got <= 3 {
		t.Fatalf("counter = %d after a lease, want the leased block (> 3)", got)
	}
	ls[0].Close(ctx)
	if got := fs.count(name); got != 3 {
		t.Errorf("counter = %d after Close, want the 3 spent", got)
	}
}

// While Redis fails a node admits its share of what it last knew remained,
// on top of the block it holds, and the tokens it spent reach the counter
// once Redis is back.
func TestSharedOutage(t *testing.T) {
	ctx := context.Background()
	const name = "quota/a/day/2026-03-10"
	for _, tc := range []struct {
		name        string
		nodes       int64
		preset      int64 // the counter before
		takeBefore  bool  // a request before the outage (the node leases a block and learns the count)
		wantAllowed int   // during the outage
		wantCount   int64 // once Redis is back
	}{
		{"one node, nothing known", 1, 0, false, 100, 100},
		{"two nodes, nothing known", 2, 0, false, 50, 50},
		// 1 request leases 16 of (100-20)/4: 15 held; share (100-36)/2 = 32.
		{"two nodes, 20 used elsewhere", 2, 20, true, 15 + 32, 20 + 16 + 32},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := newFakeStore(quotaPlan("p", 100, store.PeriodDay))
			fs.nodes, fs.counts[name] = tc.nodes, tc.preset
			l := New(Config{Plans: fs, Counts: fs, Shared: fs})
			l.heartbeat(ctx)
			clk := newClock()
			b := Budget{AuthorizationID: "a", Plan: "p"}
			l.plans.get(ctx, "p", clk.t)
			if tc.takeBefore && l.Take(ctx, b, clk.t).Verdict != Allowed {
				t.Fatal("the request before the outage was refused")
			}
			fs.setDown(true)
			allowed := 0
			for range 300 {
				r := l.Take(ctx, b, clk.add(10*time.Millisecond))
				if !r.Applied {
					t.Fatal("plan not applied during the outage")
				}
				if r.Verdict == Allowed {
					allowed++
				}
			}
			if allowed != tc.wantAllowed {
				t.Errorf("%d allowed during the outage, want %d", allowed, tc.wantAllowed)
			}
			if fs.leases > 1+3+1 { // 3 s of outage: a try a second
				t.Errorf("%d lease calls: a failing Redis is asked more than once a second", fs.leases)
			}
			l.flush(ctx)
			fs.setDown(false)
			l.flush(ctx)
			if got := fs.count(name); got != tc.wantCount {
				t.Errorf("counter = %d after Redis came back, want %d", got, tc.wantCount)
			}
		})
	}
}

// A request that ends while its budget is read from the store is no
// outage: the store's answer still counts.
func TestStoreRequestsOutliveTheRequest(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	now := newClock().t
	b := Budget{AuthorizationID: "a", Plan: "p"}
	for _, tc := range []struct {
		name   string
		shared bool
	}{{"one node", false}, {"several", true}} {
		t.Run(tc.name, func(t *testing.T) {
			fs := newFakeStore(quotaPlan("p", 10, store.PeriodDay))
			fs.counts["quota/a/day/2026-03-10"] = 10
			cfg := Config{Plans: fs, Counts: fs}
			if tc.shared {
				cfg.Shared = fs
			}
			l := New(cfg)
			l.plans.get(context.Background(), "p", now)
			if r := l.Take(ctx, b, now); r.Verdict != QuotaExceeded {
				t.Errorf("a spent quota read for an ended request: %v, want quota_exceeded", r.Verdict)
			}
		})
	}
}

// A count the embedded store could not give is asked again by the next
// request, not taken as 0.
func TestCountReadAgainAfterAFailure(t *testing.T) {
	ctx := context.Background()
	now := newClock().t
	fs := newFakeStore(quotaPlan("p", 10, store.PeriodDay))
	fs.counts["quota/a/day/2026-03-10"] = 9
	l := New(Config{Plans: fs, Counts: fs})
	b := Budget{AuthorizationID: "a", Plan: "p"}
	l.plans.get(ctx, "p", now)
	fs.setDown(true)
	l.Take(ctx, b, now) // counted locally: 1
	fs.setDown(false)
	if r := l.Take(ctx, b, now); r.Verdict != QuotaExceeded {
		t.Errorf("after the store answered 9 and 1 was counted here: %v, want quota_exceeded", r.Verdict)
	}
}

// An idle budget is dropped with the tokens it held given back.
func TestSweepGivesBackHeldTokens(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	fs := newFakeStore(quotaPlan("p", 1000, store.PeriodDay))
	l := nodes(fs, 1)[0]
	l.Take(ctx, Budget{AuthorizationID: "a", Plan: "p"}, clk.t)
	l.sweep(clk.add(3 * time.Hour))
	l.flush(ctx)
	if len(l.budgets) != 0 || fs.count("quota/a/day/2026-03-10") != 1 {
		t.Errorf("%d budgets left, counter %d; want none and the 1 spent", len(l.budgets), fs.count("quota/a/day/2026-03-10"))
	}
}
