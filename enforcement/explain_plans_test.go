package enforcement

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/accessauth/caddy-access-auth/limits"
	"github.com/accessauth/caddy-access-auth/signature"
	"github.com/accessauth/caddy-access-auth/store"
)

// storedPlans are plans' definitions in memory, for a real limiter.
type storedPlans map[string]store.Plan

func (p storedPlans) GetPlan(_ context.Context, name string) (store.Plan, error) {
	if plan, ok := p[name]; ok {
		return plan, nil
	}
	return store.Plan{}, store.ErrNotFound
}

// Explain's usage-plan step agrees with the check at every point of a
// budget, spends none of it however often it is asked, and names the plan
// that governs: the authorization's or the binding's.
func TestExplainUsagePlan(t *testing.T) {
	plans := storedPlans{
		"gold":   {Name: "gold", Quota: &store.PlanQuota{Requests: 2, Period: store.PeriodDay}},
		"silver": {Name: "silver", Rate: &store.PlanRate{Requests: 1, Per: store.PerSecond}},
	}
	for _, tt := range []struct {
		name, apiKey string
		allowed      int    // requests the budget lets through at one instant
		refusal      Reason // the answer after them
		whose        string // in the step's detail
	}{
		{"the authorization's quota", "AUTHPLAN", 2, QuotaExceeded, `plan "gold", the authorization's`},
		{"the binding's rate", "BINDPLAN", 1, RateLimited, `plan "silver", the binding's (a budget of its own for group "orders")`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestChecker(t, planKeys(), func(c *Config) { c.Limits = limits.New(limits.Config{Plans: plans}) })
			r := signedRequest(t, http.MethodGet, "http://api.example.com/v1/orders/1", "", tt.apiKey, secretOf(tt.apiKey), signature.JDCloud2)
			for range 5 {
				assertPlanStep(t, explainOf(c, r, "orders", "203.0.113.5"), Allowed, tt.whose)
			}
			for i := range tt.allowed + 1 {
				want := Allowed
				if i == tt.allowed {
					want = tt.refusal
				}
				e := explainOf(c, r, "orders", "203.0.113.5")
				d := check(c, r, "203.0.113.5")
				if d.Reason != want || e.Decision != want {
					t.Fatalf("request %d: explain says %s, check %s; want %s (explain must spend nothing)", i, e.Decision, d.Reason, want)
				}
				assertPlanStep(t, e, want, tt.whose)
			}
		})
	}
}

// The step comes without a client address too: the plan is the caller's,
// not the address's.
func TestExplainUsagePlanWithoutClientIP(t *testing.T) {
	c := newTestChecker(t, planKeys(), func(c *Config) { c.Limits = limits.New(limits.Config{Plans: storedPlans{}}) })
	r := signedRequest(t, http.MethodGet, "http://api.example.com/v1/orders/1", "", "NOPLAN", secretOf("NOPLAN"), signature.JDCloud2)
	e := explainOf(c, r, "orders", "")
	last := e.Steps[len(e.Steps)-1]
	if e.Decision != Allowed || last.Name != StepUsagePlan || !last.OK || !strings.Contains(last.Detail, "no usage plan governs") {
		t.Errorf("decision %s, last step %+v; want allowed by no usage plan", e.Decision, last)
	}
}

func assertPlanStep(t *testing.T, e Explanation, want Reason, whose string) {
	t.Helper()
	last := e.Steps[len(e.Steps)-1]
	if e.Decision != want || last.Name != StepUsagePlan || last.OK != (want == Allowed) {
		t.Fatalf("decision %s, last step %+v; want %s decided by %s", e.Decision, last, want, StepUsagePlan)
	}
	if !strings.Contains(last.Detail, whose) || (want != Allowed && !strings.HasPrefix(last.Detail, want.String()+": ")) {
		t.Errorf("step detail %q: want it to name %s and start with the reason", last.Detail, whose)
	}
}
