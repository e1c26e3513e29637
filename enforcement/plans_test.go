package enforcement

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/accessauth/caddy-access-auth/cache"
	"github.com/accessauth/caddy-access-auth/limits"
	"github.com/accessauth/caddy-access-auth/signature"
	"github.com/accessauth/caddy-access-auth/store"
)

// recordingLimits answers every Take with verdict and records the budgets.
type recordingLimits struct {
	verdict limits.Verdict
	took    []limits.Budget
}

func (l *recordingLimits) Take(_ context.Context, b limits.Budget, _ time.Time) limits.Result {
	l.took = append(l.took, b)
	return limits.Result{Applied: true, Verdict: l.verdict, Limit: 5, RetryAfter: 3}
}

func (l *recordingLimits) Peek(_ context.Context, b limits.Budget, _ time.Time) limits.Standing {
	l.took = append(l.took, b)
	return limits.Standing{Result: limits.Result{Applied: true, Verdict: l.verdict, Limit: 5, RetryAfter: 3}}
}

// planKeys are keys whose authorization or binding names a plan.
func planKeys() *fakeKeys {
	k := &fakeKeys{entries: make(map[string]*cache.Entry)}
	for apiKey, a := range map[string]*store.CredentialAuthorization{
		"NOPLAN":   {Bindings: []store.Binding{{Group: "orders", Environment: "*"}}},
		"AUTHPLAN": {Plan: "gold", Bindings: []store.Binding{{Group: "orders", Environment: "*"}}},
		"BINDPLAN": {Plan: "gold", Bindings: []store.Binding{{Group: "orders", Environment: "*", Plan: "silver"}}},
		"IPPLAN":   {Plan: "gold", AllowedIPs: []string{"10.0.0.0/8"}, Bindings: []store.Binding{{Group: "orders", Environment: "*"}}},
	} {
		a.ID, a.Enabled = "auth-"+apiKey, true
		k.entries[apiKey] = cache.Compile(&store.Credential{APIKey: apiKey, AccessKeyID: "ak-" + apiKey, Enabled: true,
			Secret: secretOf(apiKey), Authorization: a})
	}
	return k
}

func TestCheckEnforcesPlans(t *testing.T) {
	for _, tt := range []struct {
		name    string
		apiKey  string
		verdict limits.Verdict
		want    Reason
		budget  *limits.Budget // nil: the limiter is not asked
	}{
		{"no plan: not asked", "NOPLAN", limits.Allowed, Allowed, nil},
		{"the authorization's plan: one budget for the key", "AUTHPLAN", limits.Allowed, Allowed,
			&limits.Budget{AuthorizationID: "auth-AUTHPLAN", Plan: "gold"}},
		{"the binding's plan replaces it: the group's budget", "BINDPLAN", limits.Allowed, Allowed,
			&limits.Budget{AuthorizationID: "auth-BINDPLAN", Group: "orders", Plan: "silver"}},
		{"rate limited", "AUTHPLAN", limits.RateLimited, RateLimited,
			&limits.Budget{AuthorizationID: "auth-AUTHPLAN", Plan: "gold"}},
		{"quota exceeded", "AUTHPLAN", limits.QuotaExceeded, QuotaExceeded,
			&limits.Budget{AuthorizationID: "auth-AUTHPLAN", Plan: "gold"}},
		{"refused before the plan: nothing spent", "IPPLAN", limits.Allowed, IPNotAllowed, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			lim := &recordingLimits{verdict: tt.verdict}
			c := newTestChecker(t, planKeys(), func(c *Config) { c.Limits = lim })
			r := signedRequest(t, http.MethodGet, "http://api.example.com/v1/orders/1", "", tt.apiKey, secretOf(tt.apiKey), signature.JDCloud2)
			d := check(c, r, "203.0.113.5")
			if d.Reason != tt.want {
				t.Fatalf("reason = %s, want %s", d.Reason, tt.want)
			}
			if tt.budget == nil {
				if len(lim.took) != 0 || d.Plan.Applied {
					t.Fatalf("limiter asked for %+v (plan %+v), want not asked", lim.took, d.Plan)
				}
				return
			}
			if len(lim.took) != 1 || lim.took[0] != *tt.budget {
				t.Fatalf("limiter asked for %+v, want [%+v]", lim.took, *tt.budget)
			}
			if !d.Plan.Applied {
				t.Error("the decision does not carry the plan's result")
			}
		})
	}
}

func TestPlanAnswers(t *testing.T) {
	for _, tt := range []struct {
		name       string
		d          Decision
		retryAfter string
	}{
		{"rate limited", Decision{Reason: RateLimited, Plan: limits.Result{Applied: true, Verdict: limits.RateLimited, RetryAfter: 2}}, "2"},
		{"quota exceeded", Decision{Reason: QuotaExceeded, Plan: limits.Result{Applied: true, Verdict: limits.QuotaExceeded, RetryAfter: 3600}}, "3600"},
		{"never less than a second", Decision{Reason: RateLimited, Plan: limits.Result{Applied: true}}, "1"},
		{"no Retry-After on other denials", Decision{Reason: NotAuthorized}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w, body := writeDenial(t, tt.d, "r")
			if got := w.Header().Get("Retry-After"); got != tt.retryAfter {
				t.Errorf("Retry-After = %q, want %q", got, tt.retryAfter)
			}
			if tt.retryAfter != "" && (w.Code != http.StatusTooManyRequests || body.Error.Status != "HTTP_TOO_MANY_REQUESTS") {
				t.Errorf("answer %d %s, want 429 HTTP_TOO_MANY_REQUESTS", w.Code, body.Error.Status)
			}
		})
	}
}

func TestSetRateLimitHeaders(t *testing.T) {
	for _, tt := range []struct {
		name string
		plan limits.Result
		want [3]string // Limit, Remaining, Reset
	}{
		{"a plan applied", limits.Result{Applied: true, Limit: 100, Remaining: 42, Reset: 30}, [3]string{"100", "42", "30"}},
		{"spent", limits.Result{Applied: true, Verdict: limits.QuotaExceeded, Limit: 10, Reset: 86400}, [3]string{"10", "0", "86400"}},
		{"no plan: no headers", limits.Result{}, [3]string{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := httptest.NewRecorder().Header()
			SetRateLimitHeaders(h, tt.plan)
			got := [3]string{h.Get("RateLimit-Limit"), h.Get("RateLimit-Remaining"), h.Get("RateLimit-Reset")}
			if got != tt.want {
				t.Errorf("headers %q, want %q", got, tt.want)
			}
		})
	}
}

// A route with plans enforced costs a request without a plan nothing more.
func TestCheckWithoutPlanAllocatesNothingMore(t *testing.T) {
	keys := planKeys()
	lim := limits.New(limits.Config{Plans: noPlans{}})
	c := newTestChecker(t, keys, func(c *Config) { c.Limits = lim })
	plain := newTestChecker(t, keys, nil)
	r := signedRequest(t, http.MethodGet, "http://api.example.com/v1/orders/1", "", "NOPLAN", secretOf("NOPLAN"), signature.JDCloud2)
	orig, remote, ctx := originalOf(r), netip.MustParseAddr("203.0.113.5"), context.Background()
	if d := c.Check(ctx, r, orig, remote); d.Reason != Allowed || d.Plan.Applied {
		t.Fatalf("check: %v, plan applied %v; want allowed without a plan", d.Reason, d.Plan.Applied)
	}
	// What the check adds for plans when the key has none: finding that
	// its authorization names no plan. No pool is involved, so this holds
	// under the race detector too.
	auth := keys.entries["NOPLAN"].Authorization
	if n := testing.AllocsPerRun(100, func() { auth.PlanBudget("orders", DefaultEnvironment) }); n != 0 {
		t.Errorf("finding no plan allocates %.1f times", n)
	}
	if raceEnabled {
		t.Log("whole checks' allocations not compared under the race detector")
		return
	}
	with := testing.AllocsPerRun(100, func() { c.Check(ctx, r, orig, remote) })
	without := testing.AllocsPerRun(100, func() { plain.Check(ctx, r, orig, remote) })
	if with != without {
		t.Errorf("%.1f allocs a check with plans enforced, %.1f without: a request without a plan must cost none more", with, without)
	}
}

type noPlans struct{}

func (noPlans) GetPlan(context.Context, string) (store.Plan, error) {
	return store.Plan{}, store.ErrNotFound
}

// BenchmarkCheckWithPlan is BenchmarkCheckCachedJDCloud2 for a key whose
// authorization names a plan (a rate and a quota never reached): the
// plan's cost is the difference.
func BenchmarkCheckWithPlan(b *testing.B) {
	plan := store.Plan{Name: "gold", Rate: &store.PlanRate{Requests: 1 << 40, Per: store.PerSecond},
		Quota: &store.PlanQuota{Requests: 1 << 60, Period: store.PeriodMonth}}
	creds := testCredentials()
	withPlan := *creds["GOOD"]
	withPlan.APIKey, withPlan.Secret = "PLANNED", secretOf("PLANNED")
	a := *withPlan.Authorization
	a.Plan = "gold"
	withPlan.Authorization = &a
	creds["PLANNED"] = &withPlan
	lim := limits.New(limits.Config{Plans: onePlan{plan}})
	benchmarkCachedCheck(b, creds, "PLANNED", func(c *Config) { c.Limits = lim })
}

type onePlan struct{ plan store.Plan }

func (p onePlan) GetPlan(context.Context, string) (store.Plan, error) { return p.plan, nil }
