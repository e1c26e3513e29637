package admin

import (
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/accessauth/caddy-access-auth/store"
)

// keyUsage is the answer of GET /access-auth/keys/{id}/usage: the quota
// budgets of the key's plans now, and its daily counts (docs/admin-api.md).
type keyUsage struct {
	Budgets []budget   `json:"budgets"`
	Daily   []dayUsage `json:"daily"`
}

// budget is one quota budget: the authorization's plan (scope
// "authorization", group null) or a binding's (scope "group").
type budget struct {
	Scope     string           `json:"scope"`
	Group     *string          `json:"group"`
	Plan      string           `json:"plan"`
	Rate      *store.PlanRate  `json:"rate"`
	Quota     *store.PlanQuota `json:"quota"`
	Used      int64            `json:"used"`
	Remaining int64            `json:"remaining"`
	ResetsAt  time.Time        `json:"resets_at"`

	counter string // the quota counter's name
}

// dayUsage is one group's requests of the key on one UTC day.
type dayUsage struct {
	Date    string `json:"date"`
	Group   string `json:"group"`
	Allowed int64  `json:"allowed"`
	Limited int64  `json:"limited"`
}

// Budget scopes.
const (
	scopeAuthorization = "authorization"
	scopeGroup         = "group"
)

func (h *handler) keyUsage(r *http.Request) (int, any, error) {
	ctx := r.Context()
	id := r.PathValue("id")
	if _, err := h.store.GetKey(ctx, id); err != nil {
		return 0, nil, err
	}
	auths, _, err := h.store.ListAuthorizations(ctx, store.AuthorizationFilter{AccessKeyID: id}, store.Page{Limit: 1})
	if err != nil {
		return 0, nil, err
	}
	now := time.Now().UTC()
	var budgets []budget
	var groups []string
	if len(auths) > 0 {
		if budgets, err = h.budgets(r, auths[0], now); err != nil {
			return 0, nil, err
		}
		for _, b := range auths[0].Bindings {
			groups = append(groups, b.Group)
		}
	}
	if groups, err = h.allGroups(r, groups); err != nil {
		return 0, nil, err
	}
	days := lastDays(now, store.UsageDays)
	names := make([]string, 0, len(budgets)+2*len(days)*len(groups))
	for _, b := range budgets {
		names = append(names, b.counter)
	}
	for _, day := range days {
		for _, g := range groups {
			allowed, _ := store.DailyUsageCounter(id, g, false, day)
			limited, _ := store.DailyUsageCounter(id, g, true, day)
			names = append(names, allowed, limited)
		}
	}
	counts, err := h.store.Counts(ctx, names)
	if err != nil {
		return 0, nil, err
	}
	answer := keyUsage{Budgets: nonNil(budgets), Daily: []dayUsage{}}
	for i := range answer.Budgets {
		b := &answer.Budgets[i]
		b.Used = counts[i]
		b.Remaining = max(b.Quota.Requests-b.Used, 0)
	}
	counts = counts[len(budgets):]
	for _, day := range days {
		for _, g := range groups {
			if allowed, limited := counts[0], counts[1]; allowed != 0 || limited != 0 {
				answer.Daily = append(answer.Daily, dayUsage{Date: day.Format(time.DateOnly), Group: g, Allowed: allowed, Limited: limited})
			}
			counts = counts[2:]
		}
	}
	return http.StatusOK, answer, nil
}

// budgets are the quota budgets of an authorization: its own plan's, then
// each bound group's own plan's (one per group, as a binding's plan
// replaces the authorization's for that group). Plans without a quota
// have no budget to show.
func (h *handler) budgets(r *http.Request, auth store.Authorization, now time.Time) ([]budget, error) {
	var budgets []budget
	add := func(scope, group string, plan store.PlanRef) error {
		if plan == "" {
			return nil
		}
		p, err := h.store.GetPlan(r.Context(), string(plan))
		if errors.Is(err, store.ErrNotFound) || (err == nil && p.Quota == nil) {
			return nil // detached meanwhile, or a rate alone: no budget
		}
		if err != nil {
			return err
		}
		b := budget{Scope: scope, Plan: p.Name, Rate: p.Rate, Quota: p.Quota}
		if scope == scopeGroup {
			b.Group = &group
		}
		b.counter, b.ResetsAt = store.QuotaCounter(auth.ID, group, *p.Quota, now)
		budgets = append(budgets, b)
		return nil
	}
	if err := add(scopeAuthorization, "", auth.Plan); err != nil {
		return nil, err
	}
	seen := make(map[string]bool)
	for _, b := range auth.Bindings {
		if seen[b.Group] {
			continue
		}
		seen[b.Group] = true
		if err := add(scopeGroup, b.Group, b.Plan); err != nil {
			return nil, err
		}
	}
	return budgets, nil
}

// allGroups adds the names of every group to bound (a key may have used a
// group it is no longer bound to), without repeats, in name order.
func (h *handler) allGroups(r *http.Request, bound []string) ([]string, error) {
	groups := slices.Clone(bound)
	page := store.Page{Limit: maxLimit}
	for {
		items, next, err := h.store.ListGroups(r.Context(), page)
		if err != nil {
			return nil, err
		}
		for _, g := range items {
			groups = append(groups, g.Name)
		}
		if next == "" {
			break
		}
		page.Cursor = next
	}
	slices.Sort(groups)
	return slices.Compact(groups), nil
}

// lastDays are the n UTC days up to now's, newest first.
func lastDays(now time.Time, n int) []time.Time {
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	days := make([]time.Time, n)
	for i := range days {
		days[i] = today.AddDate(0, 0, -i)
	}
	return days
}
