package limits

import (
	"context"
	"testing"

	"github.com/accessauth/caddy-access-auth/store"
)

// peekPlans are the plans Peek is tested on, with the requests each lets
// through at one instant on one node and on several.
var peekPlans = []struct {
	name             string
	plan             store.Plan
	oneNode, several int
}{
	{"rate 2/s burst 1", ratePlan("p", 2, store.PerSecond, 1), 3, 2}, // several: the window holds the rate only
	{"quota 3/day", quotaPlan("p", 3, store.PeriodDay), 3, 3},
	{"rate and quota", store.Plan{Name: "p", Rate: &store.PlanRate{Requests: 5, Per: store.PerSecond},
		Quota: &store.PlanQuota{Requests: 2, Period: store.PeriodDay}}, 2, 2},
}

// peekLimiter is a limiter over fs on one node or, shared, as one of
// several.
func peekLimiter(fs *fakeStore, shared bool) *Limiter {
	if shared {
		return nodes(fs, 1)[0]
	}
	return New(Config{Plans: fs, Counts: fs})
}

// Peeking any number of times spends nothing: the store's counters do not
// move and the requests after still get the whole budget.
func TestPeekSpendsNothing(t *testing.T) {
	ctx := context.Background()
	b := Budget{AuthorizationID: "a", Plan: "p"}
	for _, tc := range peekPlans {
		for _, shared := range []bool{false, true} {
			want := tc.oneNode
			if shared {
				want = tc.several
			}
			t.Run(tc.name+topologyName(shared), func(t *testing.T) {
				fs := newFakeStore(tc.plan)
				l := peekLimiter(fs, shared)
				now := newClock().t
				for i := range 10 {
					if r := l.Peek(ctx, b, now); r.Verdict != Allowed || !r.Applied {
						t.Fatalf("peek %d: %+v, want allowed", i, r)
					}
				}
				if countsSum(fs) != 0 {
					t.Fatalf("peeking moved the store's counters: %v", fs.counts)
				}
				allowed := 0
				for range want + 3 {
					if l.Take(ctx, b, now).Verdict == Allowed {
						allowed++
					}
				}
				if allowed != want {
					t.Errorf("after 10 peeks %d requests allowed, want the whole budget %d", allowed, want)
				}
			})
		}
	}
}

// Peek says what the next Take decides, with the same headers on a
// refusal, and the next request finds one token more than Take leaves.
func TestPeekAgreesWithTake(t *testing.T) {
	ctx := context.Background()
	b := Budget{AuthorizationID: "a", Plan: "p"}
	for _, tc := range peekPlans {
		for _, shared := range []bool{false, true} {
			t.Run(tc.name+topologyName(shared), func(t *testing.T) {
				fs := newFakeStore(tc.plan)
				l := peekLimiter(fs, shared)
				now := newClock().t
				refused := 0
				for i := range 6 {
					peek := l.Peek(ctx, b, now)
					took := l.Take(ctx, b, now)
					if peek.Verdict != took.Verdict || peek.Limit != took.Limit {
						t.Fatalf("request %d: peek %+v, take %+v: want the same verdict and limit", i, peek, took)
					}
					if took.Verdict != Allowed {
						refused++
						if peek.Result != took {
							t.Errorf("request %d refused: peek %+v, take %+v, want the same", i, peek, took)
						}
					} else if peek.Remaining != took.Remaining+1 {
						t.Errorf("request %d: peek found %d remaining, take left %d", i, peek.Remaining, took.Remaining)
					}
				}
				if refused == 0 {
					t.Error("no request refused: the test saw no spent budget")
				}
			})
		}
	}
}

// Peek shows each budget it checked: what is left and when it is whole.
func TestPeekGauges(t *testing.T) {
	ctx := context.Background()
	b := Budget{AuthorizationID: "a", Plan: "p"}
	fs := newFakeStore(peekPlans[2].plan) // 5/s and 2/day
	l := New(Config{Plans: fs, Counts: fs})
	now := newClock().t // noon: the day's quota resets in 12h
	const day = 12 * 3600
	for _, tc := range []struct {
		name        string
		takes       int
		want        Verdict
		rate, quota Gauge
	}{
		{"untouched", 0, Allowed, Gauge{true, 5, 0}, Gauge{true, 2, day}},
		{"one spent", 1, Allowed, Gauge{true, 4, 1}, Gauge{true, 1, day}},
		{"quota spent", 1, QuotaExceeded, Gauge{true, 3, 1}, Gauge{true, 0, day}},
	} {
		for range tc.takes {
			l.Take(ctx, b, now)
		}
		st := l.Peek(ctx, b, now)
		if st.Verdict != tc.want || st.RateLeft != tc.rate || st.QuotaLeft != tc.quota {
			t.Errorf("%s: %v, rate %+v, quota %+v; want %v, rate %+v, quota %+v", tc.name,
				st.Verdict, st.RateLeft, st.QuotaLeft, tc.want, tc.rate, tc.quota)
		}
		if st.Rate == nil || st.Rate.Requests != 5 || st.Quota == nil || st.Quota.Requests != 2 {
			t.Errorf("%s: the plan's shape is missing: %+v, %+v", tc.name, st.Rate, st.Quota)
		}
	}
}

// A peek that finds no plan applies none, as Take.
func TestPeekWithoutPlan(t *testing.T) {
	l := New(Config{Plans: newFakeStore()})
	if r := l.Peek(context.Background(), Budget{AuthorizationID: "a", Plan: "gone"}, newClock().t); r.Applied {
		t.Errorf("peek of a missing plan: %+v, want not applied", r)
	}
}

func topologyName(shared bool) string {
	if shared {
		return ", several nodes"
	}
	return ", one node"
}

func countsSum(fs *fakeStore) int64 {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	var n int64
	for _, c := range fs.counts {
		n += c
	}
	return n
}
