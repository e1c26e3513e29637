package storetest

import (
	"context"
	"slices"
	"testing"

	"github.com/accessauth/caddy-access-auth/store"
)

func (e *env) plan(name string) store.Plan {
	e.t.Helper()
	np := store.NewPlan{Name: name, Rate: &store.PlanRate{Requests: 5, Per: store.PerSecond}, Burst: 2}
	return get(e.s.CreatePlan(e.ctx, np, actor)).must(e.t)
}

func rate(n int64, per string) *store.PlanRate { return &store.PlanRate{Requests: n, Per: per} }

func quota(n int64, period string) *store.PlanQuota {
	return &store.PlanQuota{Requests: n, Period: period}
}

// testPlans checks a plan's life: create, read, list, update, delete, and
// an audit record for each write.
func testPlans(t *testing.T, newBackend func(t *testing.T) store.Backend) {
	e := newEnv(t, newBackend)
	gold := get(e.s.CreatePlan(e.ctx, store.NewPlan{Name: "gold", Description: "paying", Quota: quota(1000, store.PeriodMonth)}, actor)).must(t)
	if gold.Rate != nil || gold.Quota.Requests != 1000 || gold.CreatedAt.IsZero() || !gold.UpdatedAt.Equal(gold.CreatedAt) {
		t.Errorf("created %+v", gold)
	}
	_, err := e.s.CreatePlan(e.ctx, store.NewPlan{Name: "gold", Quota: quota(1, store.PeriodDay)}, actor)
	wantErr(t, err, store.ErrNameTaken)
	e.plan("basic")
	if got := get(e.s.GetPlan(e.ctx, "gold")).must(t); got.Description != "paying" || *got.Quota != *gold.Quota {
		t.Errorf("read %+v", got)
	}
	_, err = e.s.GetPlan(e.ctx, "silver")
	wantErr(t, err, store.ErrNotFound)
	first, next := e.plans(store.Page{Limit: 1})
	if len(first) != 1 || first[0].Name != "basic" || next == "" {
		t.Fatalf("first page %v, next %q", first, next)
	}
	second, next := e.plans(store.Page{Limit: 1, Cursor: next})
	if len(second) != 1 || second[0].Name != "gold" || next != "" {
		t.Errorf("second page %v, next %q", second, next)
	}

	e.clock.Advance(1)
	patch := store.PlanPatch{
		Rate:  store.Optional[store.PlanRate]{Set: true, Value: rate(10, store.PerMinute)},
		Burst: store.Optional[int64]{Set: true, Value: ptr(int64(3))},
		Quota: store.Optional[store.PlanQuota]{Set: true}, // null: no quota
	}
	updated := get(e.s.UpdatePlan(e.ctx, "gold", patch, actor)).must(t)
	if updated.Quota != nil || *updated.Rate != *rate(10, store.PerMinute) || updated.Burst != 3 ||
		updated.Description != "paying" || !updated.UpdatedAt.After(updated.CreatedAt) {
		t.Errorf("updated %+v", updated)
	}
	_, err = e.s.UpdatePlan(e.ctx, "gold", store.PlanPatch{Rate: store.Optional[store.PlanRate]{Set: true}}, actor)
	wantInvalid(t, err, "rate") // neither rate nor quota would remain
	_, err = e.s.UpdatePlan(e.ctx, "silver", store.PlanPatch{}, actor)
	wantErr(t, err, store.ErrNotFound)

	noErr(t, e.s.DeletePlan(e.ctx, "gold", actor))
	_, err = e.s.GetPlan(e.ctx, "gold")
	wantErr(t, err, store.ErrNotFound)
	wantErr(t, e.s.DeletePlan(e.ctx, "gold", actor), store.ErrNotFound)

	var actions []string
	for _, rec := range e.audit() {
		actions = append(actions, rec.Action+" "+rec.Target)
	}
	want := []string{"plan.delete gold", "plan.update gold", "plan.create basic", "plan.create gold"}
	if !slices.Equal(actions, want) {
		t.Errorf("audit %v, want %v", actions, want)
	}
}

func (e *env) plans(page store.Page) ([]store.Plan, string) {
	e.t.Helper()
	items, next, err := e.s.ListPlans(e.ctx, page)
	noErr(e.t, err)
	return items, next
}

// testPlanValidation names the bad field of each bad plan.
func testPlanValidation(t *testing.T, newBackend func(t *testing.T) store.Backend) {
	e := newEnv(t, newBackend)
	for _, tt := range []struct {
		name  string
		plan  store.NewPlan
		field string
	}{
		{"bad name", store.NewPlan{Name: "Gold", Quota: quota(1, store.PeriodDay)}, "name"},
		{"neither rate nor quota", store.NewPlan{Name: "p"}, "rate"},
		{"zero rate", store.NewPlan{Name: "p", Rate: rate(0, store.PerSecond)}, "rate.requests"},
		{"negative rate", store.NewPlan{Name: "p", Rate: rate(-1, store.PerSecond)}, "rate.requests"},
		{"unknown per", store.NewPlan{Name: "p", Rate: rate(1, "2s")}, "rate.per"},
		{"negative burst", store.NewPlan{Name: "p", Rate: rate(1, store.PerSecond), Burst: -1}, "burst"},
		{"burst without rate", store.NewPlan{Name: "p", Burst: 1, Quota: quota(1, store.PeriodDay)}, "burst"},
		{"zero quota", store.NewPlan{Name: "p", Quota: quota(0, store.PeriodDay)}, "quota.requests"},
		{"unknown period", store.NewPlan{Name: "p", Quota: quota(1, "year")}, "quota.period"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.s.CreatePlan(e.ctx, tt.plan, actor)
			wantInvalid(t, err, tt.field)
		})
	}
	if got := page(e.s.ListPlans(e.ctx, store.Page{})).must(t); len(got) != 0 {
		t.Errorf("bad plans stored: %v", got)
	}
}

// testPlanAttach checks plans on authorizations and bindings: a missing
// plan is ErrPlanNotFound, a named one cannot be deleted, the compiled
// credential carries the names, and detaching frees the plan.
func testPlanAttach(t *testing.T, newBackend func(t *testing.T) store.Backend) {
	e := newEnv(t, newBackend)
	e.group("orders")
	e.group("users")
	e.plan("gold")
	e.plan("gold-v2") // its index entries sort right after those of gold
	k1, k2 := e.key("k1"), e.key("k2")

	_, err := e.s.CreateAuthorization(e.ctx, store.NewAuthorization{AccessKeyID: k1.ID, Plan: "silver"}, actor)
	wantErr(t, err, store.ErrPlanNotFound)
	_, err = e.s.CreateAuthorization(e.ctx, store.NewAuthorization{AccessKeyID: k1.ID, Plan: "Bad Name"}, actor)
	wantInvalid(t, err, "plan")
	_, err = e.s.CreateAuthorization(e.ctx, store.NewAuthorization{AccessKeyID: k1.ID,
		Bindings: []store.Binding{{Group: "orders", Plan: "silver"}}}, actor)
	wantErr(t, err, store.ErrPlanNotFound)

	a1 := get(e.s.CreateAuthorization(e.ctx, store.NewAuthorization{AccessKeyID: k1.ID, Plan: "gold"}, actor)).must(t)
	if a1.Plan != "gold" {
		t.Errorf("authorization plan %q", a1.Plan)
	}
	a2 := e.authorize(k2.ID)
	_, err = e.s.Bind(e.ctx, a2.ID, store.Binding{Group: "orders", Plan: "silver"}, actor)
	wantErr(t, err, store.ErrPlanNotFound)
	get(e.s.Bind(e.ctx, a2.ID, store.Binding{Group: "orders", Plan: "gold-v2"}, actor)).must(t)
	bound := get(e.s.Bind(e.ctx, a2.ID, store.Binding{Group: "orders", Plan: "gold"}, actor)).must(t)
	if want := []store.Binding{{Group: "orders", Environment: "*", Plan: "gold"}}; !slices.Equal(bound.Bindings, want) {
		t.Errorf("rebinding with another plan: %v, want %v", bound.Bindings, want)
	}
	if got := e.credential(k1.APIKey).Authorization; got.Plan != "gold" {
		t.Errorf("credential of k1 plan %q", got.Plan)
	}
	if got := e.credential(k2.APIKey).Authorization; got.Plan != "" || len(got.Bindings) != 1 || got.Bindings[0].Plan != "gold" {
		t.Errorf("credential of k2 %+v", got)
	}

	wantErr(t, e.s.DeletePlan(e.ctx, "gold", actor), store.ErrPlanInUse)
	noErr(t, e.s.DeletePlan(e.ctx, "gold-v2", actor)) // the rebind released it

	clear := store.AuthorizationPatch{Plan: store.Optional[string]{Set: true}}
	if got := get(e.s.UpdateAuthorization(e.ctx, a1.ID, clear, actor)).must(t); got.Plan != "" {
		t.Errorf("plan not cleared: %q", got.Plan)
	}
	wantErr(t, e.s.DeletePlan(e.ctx, "gold", actor), store.ErrPlanInUse) // a2's binding still names it
	get(e.s.Unbind(e.ctx, a2.ID, store.Binding{Group: "orders"}, actor)).must(t)
	noErr(t, e.s.DeletePlan(e.ctx, "gold", actor))

	e.plan("bronze")
	set := store.AuthorizationPatch{Plan: store.Optional[string]{Set: true, Value: ptr("bronze")}}
	get(e.s.UpdateAuthorization(e.ctx, a2.ID, set, actor)).must(t)
	wantErr(t, e.s.DeletePlan(e.ctx, "bronze", actor), store.ErrPlanInUse)
	noErr(t, e.s.DeleteAuthorization(e.ctx, a2.ID, actor))
	noErr(t, e.s.DeletePlan(e.ctx, "bronze", actor))

	e.plan("users-plan")
	get(e.s.Bind(e.ctx, a1.ID, store.Binding{Group: "users", Plan: "users-plan"}, actor)).must(t)
	wantErr(t, e.s.DeletePlan(e.ctx, "users-plan", actor), store.ErrPlanInUse)
	noErr(t, e.s.DeleteGroup(e.ctx, "users", actor)) // removes the binding, and with it the plan's use
	noErr(t, e.s.DeletePlan(e.ctx, "users-plan", actor))
}

// testPlanChangeFeed checks that changing a plan announces the API keys
// whose authorization or binding names it, and only those.
func testPlanChangeFeed(t *testing.T, newBackend func(t *testing.T) store.Backend) {
	e := newEnv(t, newBackend)
	e.group("orders")
	e.plan("gold")
	k1, k2, k3 := e.key("k1"), e.key("k2"), e.key("k3")
	get(e.s.CreateAuthorization(e.ctx, store.NewAuthorization{AccessKeyID: k1.ID, Plan: "gold"}, actor)).must(t)
	e.authorize(k2.ID, store.Binding{Group: "orders", Plan: "gold"})
	e.authorize(k3.ID, store.Binding{Group: "orders"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	feed := e.s.Subscribe(ctx)
	patch := store.PlanPatch{Burst: store.Optional[int64]{Set: true, Value: ptr(int64(9))}}
	get(e.s.UpdatePlan(e.ctx, "gold", patch, actor)).must(t)
	got := slices.Sorted(slices.Values(collect(t, feed, 1)[0].APIKeys))
	if want := slices.Sorted(slices.Values([]string{k1.APIKey, k2.APIKey})); !slices.Equal(got, want) {
		t.Errorf("plan update announces %v, want %v", got, want)
	}
}

// testPlanExportImport checks that plans and the plans named by
// authorizations and bindings survive export and import to an empty store.
func testPlanExportImport(t *testing.T, newBackend func(t *testing.T) store.Backend) {
	e := newEnv(t, newBackend)
	e.group("orders")
	gold := e.plan("gold")
	get(e.s.CreatePlan(e.ctx, store.NewPlan{Name: "trial", Quota: quota(100, store.PeriodWeek)}, actor)).must(t)
	k := e.key("k")
	auth := get(e.s.CreateAuthorization(e.ctx, store.NewAuthorization{AccessKeyID: k.ID, Plan: "trial",
		Bindings: []store.Binding{{Group: "orders", Plan: "gold"}}}, actor)).must(t)
	exp := get(e.s.Export(e.ctx)).must(t)
	if len(exp.Plans) != 2 {
		t.Fatalf("export plans %v", exp.Plans)
	}

	fresh := newEnv(t, newBackend)
	noErr(t, fresh.s.Import(fresh.ctx, exp, actor))
	if got := get(fresh.s.GetPlan(fresh.ctx, "gold")).must(t); *got.Rate != *gold.Rate || got.Burst != gold.Burst || !got.CreatedAt.Equal(gold.CreatedAt) {
		t.Errorf("imported plan %+v, want %+v", got, gold)
	}
	got := get(fresh.s.GetAuthorization(fresh.ctx, auth.ID)).must(t)
	if got.Plan != "trial" || !slices.Equal(got.Bindings, auth.Bindings) {
		t.Errorf("imported authorization %+v", got)
	}
	wantErr(t, fresh.s.DeletePlan(fresh.ctx, "gold", actor), store.ErrPlanInUse)
	noErr(t, fresh.s.Import(fresh.ctx, exp, actor)) // idempotent

	exp.Plans = exp.Plans[:1] // drop trial, which the authorization names
	exp.Plans[0].Name = "gold"
	other := newEnv(t, newBackend)
	wantErr(t, other.s.Import(other.ctx, exp, actor), store.ErrPlanNotFound)
	exp.Plans[0].Rate = nil
	wantInvalid(t, other.s.Import(other.ctx, exp, actor), "plans[0].rate")
}
