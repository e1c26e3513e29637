package limits

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/accessauth/caddy-access-auth/store"
)

func TestBucket(t *testing.T) {
	start := time.Unix(1000, 0)
	for _, tc := range []struct {
		name     string
		capacity float64
		interval time.Duration
		at       []time.Duration // offsets of the takes from start
		want     []bool
	}{
		{"full at first", 3, time.Second, []time.Duration{0, 0, 0, 0}, []bool{true, true, true, false}},
		{"refills one per interval", 1, 100 * time.Millisecond, []time.Duration{0, 50 * time.Millisecond, 100 * time.Millisecond, 150 * time.Millisecond}, []bool{true, false, true, false}},
		{"never above capacity", 2, time.Millisecond, []time.Duration{0, 0, time.Hour, time.Hour, time.Hour}, []bool{true, true, true, true, false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bucket
			b.reshape(tc.capacity, tc.interval, start)
			for i, off := range tc.at {
				ok, wait := b.ready(start.Add(off))
				if ok != tc.want[i] {
					t.Fatalf("take %d at +%s: %v, want %v", i, off, ok, tc.want[i])
				}
				if ok {
					b.take()
				} else if wait <= 0 || wait > tc.interval {
					t.Errorf("take %d refused with wait %s, want (0, %s]", i, wait, tc.interval)
				}
			}
		})
	}
}

func TestBucketReshapeKeepsTokens(t *testing.T) {
	now := time.Unix(1000, 0)
	var b bucket
	b.reshape(10, time.Second, now)
	for range 8 {
		b.take()
	}
	b.reshape(5, time.Second, now)
	if got := b.remaining(); got != 2 {
		t.Errorf("after reshape to 5: %d tokens, want the 2 left", got)
	}
	b.reshape(1, time.Second, now)
	if got := b.remaining(); got != 1 {
		t.Errorf("after reshape to 1: %d tokens, want 1 (capacity)", got)
	}
}

func TestTake(t *testing.T) {
	ctx := context.Background()
	auth := Budget{AuthorizationID: "auth-1", Plan: "p"}
	for _, tc := range []struct {
		name string
		plan store.Plan
		// steps: advance the clock, then take n times; want the verdicts'
		// counts.
		steps []step
	}{
		{"5/s burst 0: 5 of 20 at once", ratePlan("p", 5, store.PerSecond, 0),
			[]step{{0, 20, 5, RateLimited}}},
		{"5/s refills one per 200ms", ratePlan("p", 5, store.PerSecond, 0),
			[]step{{0, 5, 5, Allowed}, {200 * time.Millisecond, 3, 1, RateLimited}, {time.Second, 10, 5, RateLimited}}},
		{"burst adds to the bucket", ratePlan("p", 5, store.PerSecond, 3),
			[]step{{0, 20, 8, RateLimited}}},
		{"per minute", ratePlan("p", 60, store.PerMinute, 0),
			[]step{{0, 100, 60, RateLimited}, {time.Second, 5, 1, RateLimited}}},
		{"quota 10 a day: the 11th is refused", quotaPlan("p", 10, store.PeriodDay),
			[]step{{0, 11, 10, QuotaExceeded}, {time.Hour, 1, 0, QuotaExceeded}}},
		{"quota starts over the next day", quotaPlan("p", 10, store.PeriodDay),
			[]step{{0, 10, 10, Allowed}, {12 * time.Hour, 3, 3, Allowed}}},
		{"rate and quota: the quota refuses", store.Plan{Name: "p", Rate: &store.PlanRate{Requests: 100, Per: store.PerSecond},
			Quota: &store.PlanQuota{Requests: 3, Period: store.PeriodMonth}},
			[]step{{0, 5, 3, QuotaExceeded}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			l := New(Config{Plans: newFakeStore(tc.plan)})
			for i, s := range tc.steps {
				now := clk.add(s.advance)
				allowed := 0
				for range s.takes {
					r := l.Take(ctx, auth, now)
					if !r.Applied {
						t.Fatalf("step %d: plan not applied", i)
					}
					if r.Verdict == Allowed {
						allowed++
						continue
					}
					if r.Verdict != s.refusal {
						t.Errorf("step %d: refused %v, want %v", i, r.Verdict, s.refusal)
					}
					if r.RetryAfter < 1 || r.Remaining != 0 {
						t.Errorf("step %d: refusal %+v: want Retry-After ≥ 1 and nothing remaining", i, r)
					}
				}
				if allowed != s.allowed {
					t.Errorf("step %d: %d of %d allowed, want %d", i, allowed, s.takes, s.allowed)
				}
			}
		})
	}
}

type step struct {
	advance time.Duration
	takes   int
	allowed int
	refusal Verdict
}

func TestResult(t *testing.T) {
	ctx := context.Background()
	clk := newClock() // 12:00 UTC: the day's quota resets in 12h
	both := store.Plan{Name: "p", Rate: &store.PlanRate{Requests: 10, Per: store.PerSecond}, Burst: 2,
		Quota: &store.PlanQuota{Requests: 100, Period: store.PeriodDay}}
	for _, tc := range []struct {
		name string
		plan store.Plan
		want Result
	}{
		{"rate: capacity and tokens left", ratePlan("p", 10, store.PerSecond, 2),
			Result{Applied: true, Limit: 12, Remaining: 11, Reset: 1}},
		{"quota: the day's limit", quotaPlan("p", 100, store.PeriodDay),
			Result{Applied: true, Limit: 100, Remaining: 99, Reset: 12 * 3600}},
		{"both: the budget closest to running out", both,
			Result{Applied: true, Limit: 12, Remaining: 11, Reset: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := New(Config{Plans: newFakeStore(tc.plan)})
			if got := l.Take(ctx, Budget{AuthorizationID: "a", Plan: "p"}, clk.t); got != tc.want {
				t.Errorf("Take = %+v, want %+v", got, tc.want)
			}
		})
	}
	t.Run("quota refusal waits for the period's end", func(t *testing.T) {
		l := New(Config{Plans: newFakeStore(quotaPlan("p", 1, store.PeriodDay))})
		l.Take(ctx, Budget{AuthorizationID: "a", Plan: "p"}, clk.t)
		want := Result{Applied: true, Verdict: QuotaExceeded, Limit: 1, Reset: 12 * 3600, RetryAfter: 12 * 3600}
		if got := l.Take(ctx, Budget{AuthorizationID: "a", Plan: "p"}, clk.t); got != want {
			t.Errorf("Take = %+v, want %+v", got, want)
		}
	})
}

func TestNoPlanToApply(t *testing.T) {
	ctx := context.Background()
	now := newClock().t
	for _, tc := range []struct {
		name string
		down bool
	}{{"plan missing", false}, {"store down", true}} {
		t.Run(tc.name, func(t *testing.T) {
			fs := newFakeStore()
			fs.setDown(tc.down)
			l := New(Config{Plans: fs})
			for range 3 {
				if r := l.Take(ctx, Budget{AuthorizationID: "a", Plan: "gone"}, now); r.Applied {
					t.Fatalf("Take = %+v, want no plan applied", r)
				}
			}
			if fs.planGets != 1 {
				t.Errorf("%d plan reads for 3 requests, want 1 (remembered)", fs.planGets)
			}
		})
	}
}

// A request that ends while its plan is read does not leave the plan
// unread (unapplied) for the requests after it.
func TestPlanReadOutlivesTheRequest(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	l := New(Config{Plans: ctxPlans{newFakeStore(quotaPlan("p", 1, store.PeriodDay))}})
	now := newClock().t
	if r := l.Take(ctx, Budget{AuthorizationID: "a", Plan: "p"}, now); !r.Applied {
		t.Error("plan not applied to a request that ended while it was read")
	}
}

// ctxPlans gives up when its context ends, as a real store does.
type ctxPlans struct{ *fakeStore }

func (p ctxPlans) GetPlan(ctx context.Context, name string) (store.Plan, error) {
	if err := ctx.Err(); err != nil {
		return store.Plan{}, err
	}
	return p.fakeStore.GetPlan(ctx, name)
}

func TestBudgetsAreSeparate(t *testing.T) {
	ctx := context.Background()
	now := newClock().t
	fs := newFakeStore(quotaPlan("p", 2, store.PeriodDay))
	l := New(Config{Plans: fs, Counts: fs})
	budgets := []Budget{
		{AuthorizationID: "a", Plan: "p"},
		{AuthorizationID: "a", Group: "g1", Plan: "p"},
		{AuthorizationID: "a", Group: "g2", Plan: "p"},
		{AuthorizationID: "b", Plan: "p"},
	}
	for _, b := range budgets {
		for i := range 3 {
			r := l.Take(ctx, b, now)
			if want := i < 2; (r.Verdict == Allowed) != want {
				t.Errorf("%+v take %d: %v, want allowed %v", b, i, r.Verdict, want)
			}
		}
	}
	l.flush(ctx)
	for _, name := range []string{"quota/a/day/2026-03-10", "quota/a/g1/day/2026-03-10", "quota/b/day/2026-03-10"} {
		if got := fs.count(name); got != 2 {
			t.Errorf("counter %s = %d, want 2", name, got)
		}
	}
}

// A quota survives a restart: the first limiter's counts reach the store
// by its flush, the next one reads them.
func TestQuotaSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	now := newClock().t
	fs := newFakeStore(quotaPlan("p", 10, store.PeriodDay))
	b := Budget{AuthorizationID: "a", Plan: "p"}
	first := New(Config{Plans: fs, Counts: fs})
	for range 7 {
		first.Take(ctx, b, now)
	}
	first.Close(ctx)
	second := New(Config{Plans: fs, Counts: fs})
	allowed := 0
	for range 5 {
		if second.Take(ctx, b, now).Verdict == Allowed {
			allowed++
		}
	}
	if allowed != 3 {
		t.Errorf("after a restart %d allowed, want the 3 left of 10", allowed)
	}
}

func TestFlushKeepsCountsWhileStoreFails(t *testing.T) {
	ctx := context.Background()
	now := newClock().t
	fs := newFakeStore(quotaPlan("p", 10, store.PeriodDay))
	l := New(Config{Plans: fs, Counts: fs})
	b := Budget{AuthorizationID: "a", Plan: "p"}
	l.Take(ctx, b, now)
	l.Take(ctx, b, now)
	fs.setDown(true)
	l.flush(ctx)
	l.Take(ctx, b, now)
	fs.setDown(false)
	l.flush(ctx)
	if got := fs.count("quota/a/day/2026-03-10"); got != 3 {
		t.Errorf("counter = %d after the store came back, want 3", got)
	}
}

func TestPlanChange(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	fs := newFakeStore(quotaPlan("p", 10, store.PeriodDay))
	l := New(Config{Plans: fs, Counts: fs})
	b := Budget{AuthorizationID: "a", Plan: "p"}
	for range 8 {
		l.Take(ctx, b, clk.t)
	}
	fs.setPlan(quotaPlan("p", 12, store.PeriodDay))
	l.plans.refresh(ctx, clk.t)
	allowed := 0
	for range 6 {
		if l.Take(ctx, b, clk.t).Verdict == Allowed {
			allowed++
		}
	}
	if allowed != 4 {
		t.Errorf("after raising the quota to 12: %d more allowed, want 4 (the count is kept)", allowed)
	}

	fs.setPlan(ratePlan("p", 1, store.PerSecond, 0))
	l.plans.refresh(ctx, clk.t)
	r1, r2 := l.Take(ctx, b, clk.t), l.Take(ctx, b, clk.t)
	if r1.Verdict != Allowed || r2.Verdict != RateLimited {
		t.Errorf("after changing to 1/s: %v then %v, want allowed then rate_limited", r1.Verdict, r2.Verdict)
	}

	before := fs.planGets
	l.plans.refresh(ctx, clk.t)
	if p := l.plans.get(ctx, "p", clk.t); p != l.budgets[budgetKey{"a", ""}].plan {
		t.Error("an unchanged plan read again became a new definition: budgets would start over")
	}
	if fs.planGets != before+1 {
		t.Errorf("refresh read %d plans, want 1", fs.planGets-before)
	}
}

func TestChangedReloadsPlansInRun(t *testing.T) {
	fs := newFakeStore(ratePlan("p", 1, store.PerSecond, 0))
	l := New(Config{Plans: fs})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); l.Run(ctx) }()
	defer func() { cancel(); <-done }()
	b := Budget{AuthorizationID: "a", Plan: "p"}
	now := newClock().t
	l.Take(ctx, b, now)
	fs.setPlan(ratePlan("p", 100, store.PerSecond, 0))
	l.Changed()
	deadline := time.Now().Add(5 * time.Second)
	for l.Take(ctx, b, now).Verdict != Allowed {
		if time.Now().After(deadline) {
			t.Fatal("the plan's new rate never took effect after Changed")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestRateWindowCounter(t *testing.T) {
	got := RateWindowCounter("auth-1/g", store.PerMinute, time.Unix(120, 0))
	if want := "rate/auth-1/g/1m/120"; got != want {
		t.Errorf("RateWindowCounter = %q, want %q", got, want)
	}
}

func TestSweepDropsIdleBudgets(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	fs := newFakeStore(quotaPlan("p", 10, store.PeriodDay))
	l := New(Config{Plans: fs, Counts: fs})
	l.Take(ctx, Budget{AuthorizationID: "a", Plan: "p"}, clk.t)
	l.sweep(clk.add(3 * time.Hour))
	if len(l.budgets) != 1 {
		t.Fatalf("a budget with counts not yet flushed was dropped")
	}
	l.flush(ctx)
	l.sweep(clk.t)
	if len(l.budgets) != 0 {
		t.Errorf("%d budgets left after sweeping idle ones, want 0", len(l.budgets))
	}
}

func ExampleRateWindowCounter() {
	fmt.Println(RateWindowCounter("auth-1", store.PerSecond, time.Unix(1700000000, 0)))
	// Output: rate/auth-1/1s/1700000000
}
