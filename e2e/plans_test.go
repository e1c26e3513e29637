package e2e

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/accessauth/caddy-access-auth/internal/gatewaytest"
	"github.com/accessauth/caddy-access-auth/store"
)

// cli runs `caddy access-auth <args>` against node n and returns its
// output and whether it exited zero.
func cli(t *testing.T, n *gatewaytest.Node, args ...string) (string, bool) {
	t.Helper()
	args = append([]string{"access-auth"}, args...)
	cmd := gatewaytest.Command(t, append(args, "--address", strings.TrimPrefix(n.Admin, "http://"))...)
	out, err := cmd.CombinedOutput()
	return string(out), err == nil
}

// cliJSON runs a CLI command that must succeed and decodes what it printed.
func cliJSON(t *testing.T, n *gatewaytest.Node, out any, args ...string) {
	t.Helper()
	printed, ok := cli(t, n, args...)
	if !ok {
		t.Fatalf("caddy access-auth %s failed:\n%s", strings.Join(args, " "), printed)
	}
	if out != nil {
		if err := json.Unmarshal([]byte(printed), out); err != nil {
			t.Fatalf("caddy access-auth %s: %v:\n%s", strings.Join(args, " "), err, printed)
		}
	}
}

// TestPlans manages usage plans through the CLI and the admin API of a
// running node: create, list, show, update and delete; attach to an
// authorization and a binding; plan_not_found, plan_in_use and bad input;
// and export to a fresh node keeps them. A key within its plans is let
// through (limits_test.go holds the enforcement).
func TestPlans(t *testing.T) {
	masterKey := gatewaytest.NewMasterKey(t)
	accessAuth := func() string {
		return "store file " + filepath.Join(t.TempDir(), "store.db") + "\n\t\tmaster_key " + masterKey
	}
	n := gatewaytest.Start(t, "plans", accessAuth(), ordersSite)
	n.WaitGroup("orders")

	var gold store.Plan
	cliJSON(t, n, &gold, "plans", "create", "gold", "--rate", "5/1s", "--burst", "2", "--description", "paying")
	if gold.Rate == nil || *gold.Rate != (store.PlanRate{Requests: 5, Per: "1s"}) || gold.Burst != 2 || gold.Quota != nil {
		t.Fatalf("created %+v", gold)
	}
	cliJSON(t, n, nil, "plans", "create", "trial", "--quota", "100/week")
	var plans struct{ Items []store.Plan }
	cliJSON(t, n, &plans, "plans", "list")
	if len(plans.Items) != 2 || plans.Items[0].Name != "gold" || plans.Items[1].Name != "trial" {
		t.Fatalf("plans list %+v", plans.Items)
	}
	cliJSON(t, n, &gold, "plans", "update", "gold", "--quota", "1000/month", "--rate", "none", "--burst", "0")
	cliJSON(t, n, &gold, "plans", "show", "gold")
	if gold.Rate != nil || gold.Quota == nil || *gold.Quota != (store.PlanQuota{Requests: 1000, Period: "month"}) || gold.Description != "paying" {
		t.Fatalf("updated %+v", gold)
	}

	for _, tc := range []struct {
		name  string
		body  map[string]any
		field string
	}{
		{"zero requests", map[string]any{"name": "p", "rate": map[string]any{"requests": 0, "per": "1s"}}, "rate.requests"},
		{"negative quota", map[string]any{"name": "p", "quota": map[string]any{"requests": -1, "period": "day"}}, "quota.requests"},
		{"unknown per", map[string]any{"name": "p", "rate": map[string]any{"requests": 1, "per": "1d"}}, "rate.per"},
		{"unknown period", map[string]any{"name": "p", "quota": map[string]any{"requests": 1, "period": "year"}}, "quota.period"},
		{"burst without rate", map[string]any{"name": "p", "burst": 1, "quota": map[string]any{"requests": 1, "period": "day"}}, "burst"},
		{"bad name", map[string]any{"name": "Gold Plan", "quota": map[string]any{"requests": 1, "period": "day"}}, "name"},
		{"neither rate nor quota", map[string]any{"name": "p"}, "rate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var e struct{ Error, Code string }
			n.AdminJSON(http.MethodPost, "/access-auth/plans", tc.body, http.StatusBadRequest, &e)
			if e.Code != "invalid_argument" || !strings.Contains(e.Error, tc.field) {
				t.Errorf("answer %+v, want invalid_argument naming %s", e, tc.field)
			}
		})
	}
	if out, ok := cli(t, n, "plans", "create", "bad", "--rate", "0/1s"); ok || !strings.Contains(out, "rate.requests") {
		t.Errorf("CLI with a zero rate: exit ok=%v, output %q; want a failure naming rate.requests", ok, out)
	}

	key := n.CreateKey("alice")
	var e struct{ Code string }
	n.AdminJSON(http.MethodPost, "/access-auth/authorizations", map[string]any{"access_key_id": key.ID, "plan": "silver"}, http.StatusNotFound, &e)
	if e.Code != "plan_not_found" {
		t.Errorf("authorization naming a missing plan: code %q", e.Code)
	}
	var auth store.Authorization
	cliJSON(t, n, &auth, "authorizations", "create", "--access-key-id", key.ID, "--plan", "gold", "--bind", "orders::trial")
	if auth.Plan != "gold" || len(auth.Bindings) != 1 || auth.Bindings[0] != (store.Binding{Group: "orders", Environment: "*", Plan: "trial"}) {
		t.Fatalf("authorization %+v", auth)
	}
	n.AdminJSON(http.MethodPut, "/access-auth/authorizations/"+auth.ID+"/bindings/orders?plan=silver", nil, http.StatusNotFound, &e)
	if e.Code != "plan_not_found" {
		t.Errorf("binding naming a missing plan: code %q", e.Code)
	}
	cliJSON(t, n, &auth, "authorizations", "bind", auth.ID, "orders", "--environment", "online", "--plan", "gold")
	if len(auth.Bindings) != 2 || auth.Bindings[1] != (store.Binding{Group: "orders", Environment: "online", Plan: "gold"}) {
		t.Fatalf("after bind: %+v", auth.Bindings)
	}
	gatewaytest.WantAnswer(t, "a key with plans within them", n.Call(key), http.StatusOK, "")

	n.AdminJSON(http.MethodDelete, "/access-auth/plans/trial", nil, http.StatusConflict, &e)
	if e.Code != "plan_in_use" {
		t.Errorf("deleting a plan a binding names: code %q", e.Code)
	}
	if out, ok := cli(t, n, "plans", "delete", "gold"); ok || !strings.Contains(out, "plan_in_use") {
		t.Errorf("CLI deleting a plan in use: exit ok=%v, output %q", ok, out)
	}

	// Export to a fresh node with the same master key.
	status, export := n.Request(http.MethodGet, "/access-auth/export", nil)
	if status != http.StatusOK {
		t.Fatalf("export: status %d: %s", status, export)
	}
	fresh := gatewaytest.Start(t, "fresh", accessAuth(), ordersSite)
	fresh.WaitGroup("orders")
	fresh.AdminJSON(http.MethodPost, "/access-auth/import", rawJSON(export), http.StatusOK, nil)
	var imported store.Plan
	fresh.AdminJSON(http.MethodGet, "/access-auth/plans/gold", nil, http.StatusOK, &imported)
	if imported.Quota == nil || *imported.Quota != *gold.Quota || !imported.CreatedAt.Equal(gold.CreatedAt) {
		t.Errorf("imported plan %+v, want %+v", imported, gold)
	}
	var importedAuth store.Authorization
	fresh.AdminJSON(http.MethodGet, "/access-auth/authorizations/"+auth.ID, nil, http.StatusOK, &importedAuth)
	if importedAuth.Plan != "gold" || len(importedAuth.Bindings) != 2 || importedAuth.Bindings[0].Plan != "trial" {
		t.Errorf("imported authorization %+v", importedAuth)
	}
	fresh.AdminJSON(http.MethodDelete, "/access-auth/plans/trial", nil, http.StatusConflict, nil)
	gatewaytest.WantAnswer(t, "the key at the fresh node", fresh.Call(key), http.StatusOK, "")

	// Detaching frees the plans; then they can be deleted.
	cliJSON(t, n, &auth, "authorizations", "update", auth.ID, "--plan", "")
	if auth.Plan != "" {
		t.Errorf("after detaching: plan %q", auth.Plan)
	}
	cliJSON(t, n, nil, "authorizations", "unbind", auth.ID, "orders")
	cliJSON(t, n, nil, "plans", "delete", "gold")
	cliJSON(t, n, nil, "plans", "delete", "trial")
	n.AdminJSON(http.MethodGet, "/access-auth/plans/gold", nil, http.StatusNotFound, nil)
}
