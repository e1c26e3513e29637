package admin

import (
	"net/http"

	"github.com/accessauth/caddy-access-auth/store"
)

// Usage plans; the gateway enforces them (docs/usage-plans.md).

func (h *handler) createPlan(r *http.Request) (int, any, error) {
	var in store.NewPlan
	if err := decode(r, &in, false); err != nil {
		return 0, nil, err
	}
	return created(h.store.CreatePlan(r.Context(), in, h.actor(r)))
}

func (h *handler) listPlans(r *http.Request) (int, any, error) {
	page, err := pageOf(r)
	if err != nil {
		return 0, nil, err
	}
	return list(h.store.ListPlans(r.Context(), page))
}

func (h *handler) getPlan(r *http.Request) (int, any, error) {
	return ok(h.store.GetPlan(r.Context(), r.PathValue("name")))
}

func (h *handler) updatePlan(r *http.Request) (int, any, error) {
	var patch store.PlanPatch
	if err := decode(r, &patch, false); err != nil {
		return 0, nil, err
	}
	return ok(h.store.UpdatePlan(r.Context(), r.PathValue("name"), patch, h.actor(r)))
}

func (h *handler) deletePlan(r *http.Request) (int, any, error) {
	return noContent(h.store.DeletePlan(r.Context(), r.PathValue("name"), h.actor(r)))
}
