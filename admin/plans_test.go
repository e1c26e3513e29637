package admin

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/accessauth/caddy-access-auth/store"
)

type planList struct {
	Items      []store.Plan
	NextCursor string `json:"next_cursor"`
}

func TestPlansLifecycle(t *testing.T) {
	c, _ := newClient(t, Options{})
	var gold store.Plan
	c.call("POST", "/access-auth/plans", `{"name":"gold","description":"paying","rate":{"requests":5,"per":"1s"},"burst":2}`, http.StatusCreated, &gold)
	if gold.Name != "gold" || gold.Rate == nil || gold.Rate.Requests != 5 || gold.Burst != 2 || gold.Quota != nil || gold.CreatedAt.IsZero() {
		t.Fatalf("created %+v", gold)
	}
	w := c.do("GET", "/access-auth/plans/gold", "")
	if !strings.Contains(w.Body.String(), `"quota":null`) {
		t.Errorf("a plan without quota answers %s, want quota null", w.Body)
	}
	c.fails("POST", "/access-auth/plans", `{"name":"gold","quota":{"requests":1,"period":"day"}}`, http.StatusConflict, "name_taken")
	c.call("POST", "/access-auth/plans", `{"name":"trial","quota":{"requests":100,"period":"week"}}`, http.StatusCreated, nil)

	var page planList
	c.call("GET", "/access-auth/plans?limit=1", "", http.StatusOK, &page)
	if len(page.Items) != 1 || page.NextCursor == "" {
		t.Fatalf("first page %+v", page)
	}
	c.call("GET", "/access-auth/plans?limit=1&cursor="+page.NextCursor, "", http.StatusOK, &page)
	if len(page.Items) != 1 || page.NextCursor != "" {
		t.Fatalf("second page %+v", page)
	}
	c.fails("GET", "/access-auth/plans?cursor=bogus", "", http.StatusBadRequest, "invalid_argument")

	var updated store.Plan
	c.call("PATCH", "/access-auth/plans/gold", `{"quota":{"requests":1000,"period":"month"},"rate":null,"burst":0}`, http.StatusOK, &updated)
	if updated.Rate != nil || updated.Quota == nil || updated.Quota.Period != "month" || updated.Description != "paying" {
		t.Errorf("updated %+v", updated)
	}
	c.fails("PATCH", "/access-auth/plans/silver", `{}`, http.StatusNotFound, "not_found")
	c.fails("GET", "/access-auth/plans/silver", "", http.StatusNotFound, "not_found")
	c.call("DELETE", "/access-auth/plans/gold", "", http.StatusNoContent, nil)
	c.fails("DELETE", "/access-auth/plans/gold", "", http.StatusNotFound, "not_found")
}

func TestPlanBadInput(t *testing.T) {
	c, _ := newClient(t, Options{})
	c.call("POST", "/access-auth/plans", `{"name":"gold","rate":{"requests":5,"per":"1s"}}`, http.StatusCreated, nil)
	for _, tt := range []struct {
		name, method, path, body, field string
	}{
		{"bad name", "POST", "/access-auth/plans", `{"name":"Gold!","rate":{"requests":1,"per":"1s"}}`, "name"},
		{"neither rate nor quota", "POST", "/access-auth/plans", `{"name":"p"}`, "rate"},
		{"zero requests", "POST", "/access-auth/plans", `{"name":"p","rate":{"requests":0,"per":"1s"}}`, "rate.requests"},
		{"negative requests", "POST", "/access-auth/plans", `{"name":"p","quota":{"requests":-5,"period":"day"}}`, "quota.requests"},
		{"unknown per", "POST", "/access-auth/plans", `{"name":"p","rate":{"requests":1,"per":"1d"}}`, "rate.per"},
		{"unknown period", "POST", "/access-auth/plans", `{"name":"p","quota":{"requests":1,"period":"year"}}`, "quota.period"},
		{"burst without rate", "POST", "/access-auth/plans", `{"name":"p","burst":3,"quota":{"requests":1,"period":"day"}}`, "burst"},
		{"negative burst", "POST", "/access-auth/plans", `{"name":"p","burst":-1,"rate":{"requests":1,"per":"1s"}}`, "burst"},
		{"fractional requests", "POST", "/access-auth/plans", `{"name":"p","rate":{"requests":1.5,"per":"1s"}}`, "rate.requests"},
		{"unknown field", "POST", "/access-auth/plans", `{"name":"p","rate":{"requests":1,"per":"1s"},"limit":3}`, "limit"},
		{"patch removes both", "PATCH", "/access-auth/plans/gold", `{"rate":null}`, "rate"},
		{"patch null burst", "PATCH", "/access-auth/plans/gold", `{"burst":null}`, "burst"},
		{"patch bad per", "PATCH", "/access-auth/plans/gold", `{"rate":{"requests":1,"per":"5m"}}`, "rate.per"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var e struct{ Error, Code string }
			c.call(tt.method, tt.path, tt.body, http.StatusBadRequest, &e)
			if e.Code != "invalid_argument" || !strings.Contains(e.Error, tt.field) {
				t.Errorf("error %+v, want invalid_argument naming %s", e, tt.field)
			}
		})
	}
}

func TestPlanAttach(t *testing.T) {
	c, _ := newClient(t, Options{})
	c.createGroup("orders")
	c.call("POST", "/access-auth/plans", `{"name":"gold","rate":{"requests":5,"per":"1s"}}`, http.StatusCreated, nil)
	c.call("POST", "/access-auth/plans", `{"name":"trial","quota":{"requests":10,"period":"day"}}`, http.StatusCreated, nil)
	key := c.createKey("shop")

	c.fails("POST", "/access-auth/authorizations", fmt.Sprintf(`{"access_key_id":%q,"plan":"silver"}`, key.ID), http.StatusNotFound, "plan_not_found")
	var auth store.Authorization
	c.call("POST", "/access-auth/authorizations", fmt.Sprintf(`{"access_key_id":%q,"plan":"gold"}`, key.ID), http.StatusCreated, &auth)
	if auth.Plan != "gold" {
		t.Fatalf("authorization plan %q", auth.Plan)
	}
	base := "/access-auth/authorizations/" + auth.ID
	c.fails("PUT", base+"/bindings/orders?plan=silver", "", http.StatusNotFound, "plan_not_found")
	c.fails("PUT", base+"/bindings/orders?plan=Bad!", "", http.StatusBadRequest, "invalid_argument")
	c.call("PUT", base+"/bindings/orders?environment=online&plan=trial", "", http.StatusOK, &auth)
	if len(auth.Bindings) != 1 || auth.Bindings[0] != (store.Binding{Group: "orders", Environment: "online", Plan: "trial"}) {
		t.Errorf("bindings %v", auth.Bindings)
	}
	c.fails("DELETE", "/access-auth/plans/gold", "", http.StatusConflict, "plan_in_use")
	c.fails("DELETE", "/access-auth/plans/trial", "", http.StatusConflict, "plan_in_use")
	c.fails("PATCH", base, `{"plan":"silver"}`, http.StatusNotFound, "plan_not_found")

	w := c.do("PATCH", base, `{"plan":null}`)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"plan":null`) {
		t.Fatalf("clearing the plan: %d %s", w.Code, w.Body)
	}
	c.call("DELETE", "/access-auth/plans/gold", "", http.StatusNoContent, nil)
	c.call("PUT", base+"/bindings/orders?environment=online", "", http.StatusOK, &auth) // rebinding without plan detaches it
	c.call("DELETE", "/access-auth/plans/trial", "", http.StatusNoContent, nil)
}
