package admin

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/accessauth/caddy-access-auth/store"
)

// TestKeyUsage: the budgets of the authorization's plan and of a binding's
// plan with a quota (not of a plan with a rate alone), and the daily
// counts of the bound groups and of a group no longer bound, newest first,
// days without requests left out.
func TestKeyUsage(t *testing.T) {
	c, s := newClient(t, Options{})
	ctx := context.Background()
	for _, g := range []string{"pay", "ship", "old"} {
		c.createGroup(g)
	}
	c.call("POST", "/access-auth/plans", `{"name":"gold","rate":{"requests":5,"per":"1s"},"quota":{"requests":1000,"period":"month"}}`, http.StatusCreated, nil)
	c.call("POST", "/access-auth/plans", `{"name":"day","quota":{"requests":10,"period":"day"}}`, http.StatusCreated, nil)
	c.call("POST", "/access-auth/plans", `{"name":"fast","rate":{"requests":50,"per":"1s"}}`, http.StatusCreated, nil)
	k := c.createKey("shop")
	var auth store.Authorization
	c.call("POST", "/access-auth/authorizations", fmt.Sprintf(`{"access_key_id":%q,"plan":"gold","bindings":[{"group":"pay","environment":"*"}]}`, k.ID), http.StatusCreated, &auth)
	c.call("PUT", "/access-auth/authorizations/"+auth.ID+"/bindings/ship?plan=day", "", http.StatusOK, nil)
	c.call("PUT", "/access-auth/authorizations/"+auth.ID+"/bindings/pay?plan=fast&environment=test", "", http.StatusOK, nil)

	now := time.Now().UTC()
	yesterday := now.AddDate(0, 0, -1)
	monthly, monthEnd := store.QuotaCounter(auth.ID, "", store.PlanQuota{Requests: 1000, Period: store.PeriodMonth}, now)
	daily, dayEnd := store.QuotaCounter(auth.ID, "ship", store.PlanQuota{Requests: 10, Period: store.PeriodDay}, now)
	var deltas []store.CountDelta
	add := func(name string, n int64) { deltas = append(deltas, store.CountDelta{Name: name, Delta: n}) }
	usage := func(group string, limited bool, at time.Time) string {
		name, _ := store.DailyUsageCounter(k.ID, group, limited, at)
		return name
	}
	add(monthly, 40)
	add(daily, 12) // over: remaining stays 0
	add(usage("pay", false, now), 30)
	add(usage("pay", true, now), 2)
	add(usage("ship", false, yesterday), 12)
	add(usage("old", false, now.AddDate(0, 0, -89)), 1)  // the 90th day: shown
	add(usage("old", false, now.AddDate(0, 0, -90)), 99) // older: not
	add(usage("pay", false, now.AddDate(0, 0, -3)), 0)
	if err := s.AddCounts(ctx, deltas); err != nil {
		t.Fatal(err)
	}

	var got keyUsage
	c.call("GET", "/access-auth/keys/"+k.ID+"/usage", "", http.StatusOK, &got)
	ship := "ship"
	wantBudgets := []budget{
		{Scope: "authorization", Plan: "gold", Rate: &store.PlanRate{Requests: 5, Per: "1s"}, Quota: &store.PlanQuota{Requests: 1000, Period: "month"},
			Used: 40, Remaining: 960, ResetsAt: monthEnd},
		{Scope: "group", Group: &ship, Plan: "day", Quota: &store.PlanQuota{Requests: 10, Period: "day"},
			Used: 12, Remaining: 0, ResetsAt: dayEnd},
	}
	if !reflect.DeepEqual(got.Budgets, wantBudgets) {
		t.Errorf("budgets\n%+v\nwant\n%+v", got.Budgets, wantBudgets)
	}
	date := func(t time.Time) string { return t.Format(time.DateOnly) }
	wantDaily := []dayUsage{
		{Date: date(now), Group: "pay", Allowed: 30, Limited: 2},
		{Date: date(yesterday), Group: "ship", Allowed: 12},
		{Date: date(now.AddDate(0, 0, -89)), Group: "old", Allowed: 1},
	}
	if !reflect.DeepEqual(got.Daily, wantDaily) {
		t.Errorf("daily %+v, want %+v", got.Daily, wantDaily)
	}
}

func TestKeyUsageWithoutAuthorizationOrCounts(t *testing.T) {
	c, _ := newClient(t, Options{})
	k := c.createKey("idle")
	w := c.do("GET", "/access-auth/keys/"+k.ID+"/usage", "")
	if w.Code != http.StatusOK || w.Body.String() != `{"budgets":[],"daily":[]}`+"\n" {
		t.Errorf("idle key: %d %q", w.Code, w.Body)
	}
	c.fails("GET", "/access-auth/keys/ak-missing/usage", "", http.StatusNotFound, "not_found")
}
