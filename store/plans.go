package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
)

// CreatePlan creates a usage plan (ErrNameTaken when it exists).
func (s *Store) CreatePlan(ctx context.Context, np NewPlan, actor Actor) (Plan, error) {
	if err := validateGroupName("name", np.Name); err != nil {
		return Plan{}, err
	}
	plan := Plan{Name: np.Name, Description: np.Description, Rate: np.Rate, Burst: np.Burst, Quota: np.Quota}
	if err := validatePlan("", plan); err != nil {
		return Plan{}, err
	}
	err := s.update(ctx, actor, func(w *writer) error {
		if existing, err := w.tx.Get(tblPlans, plan.Name); err != nil {
			return err
		} else if existing != nil {
			return fmt.Errorf("plan %s: %w", plan.Name, ErrNameTaken)
		}
		plan.CreatedAt, plan.UpdatedAt = w.now, w.now
		if err := putJSON(w.tx, tblPlans, plan.Name, plan); err != nil {
			return err
		}
		return w.audit("plan.create", plan.Name)
	})
	if err != nil {
		return Plan{}, err
	}
	return plan, nil
}

// GetPlan returns a plan, or ErrNotFound.
func (s *Store) GetPlan(ctx context.Context, name string) (Plan, error) {
	var plan Plan
	err := s.backend.View(ctx, func(tx Tx) error {
		return mustGetPlan(tx, name, &plan)
	})
	return plan, err
}

func mustGetPlan(tx Tx, name string, plan *Plan) error {
	ok, err := getJSON(tx, tblPlans, name, plan)
	if err == nil && !ok {
		err = fmt.Errorf("plan %s: %w", quoteInput(name), ErrNotFound)
	}
	return err
}

// mustPlanExist checks a plan an authorization or binding names: a missing
// one is ErrPlanNotFound, as a missing group is ErrGroupNotFound.
func mustPlanExist(tx Tx, name string) error {
	b, err := tx.Get(tblPlans, name)
	if err == nil && b == nil {
		err = fmt.Errorf("plan %s: %w", quoteInput(name), ErrPlanNotFound)
	}
	return err
}

// ListPlans returns a page of plans in name order.
func (s *Store) ListPlans(ctx context.Context, page Page) ([]Plan, string, error) {
	var items []Plan
	var next string
	err := s.backend.View(ctx, func(tx Tx) error {
		var err error
		items, next, err = scanPage(tx, tblPlans, page, func(r Record) (Plan, bool, error) {
			var plan Plan
			return plan, true, json.Unmarshal(r.Value, &plan)
		})
		return err
	})
	return items, next, err
}

// UpdatePlan changes a plan's description, rate, burst or quota, and
// announces the API keys whose authorization names it, so caches and
// limiters reload their budgets.
func (s *Store) UpdatePlan(ctx context.Context, name string, patch PlanPatch, actor Actor) (Plan, error) {
	if patch.Burst.Set && patch.Burst.Value == nil {
		return Plan{}, invalid("burst", "must be a number")
	}
	var updated Plan
	err := s.update(ctx, actor, func(w *writer) error {
		var plan Plan
		if err := mustGetPlan(w.tx, name, &plan); err != nil {
			return err
		}
		if patch.Description.Set {
			plan.Description = ""
			if patch.Description.Value != nil {
				plan.Description = *patch.Description.Value
			}
		}
		if patch.Rate.Set {
			plan.Rate = patch.Rate.Value
		}
		if patch.Burst.Set {
			plan.Burst = *patch.Burst.Value
		}
		if patch.Quota.Set {
			plan.Quota = patch.Quota.Value
		}
		if err := validatePlan("", plan); err != nil {
			return err
		}
		if err := w.touchPlanUsers(name); err != nil {
			return err
		}
		plan.UpdatedAt = w.now
		if err := putJSON(w.tx, tblPlans, name, plan); err != nil {
			return err
		}
		updated = plan
		return w.audit("plan.update", name)
	})
	return updated, err
}

// touchPlanUsers marks the access keys whose authorizations name a plan, so
// the write announces their API keys on the change feed. It reads the index
// before the write changes it (see Tx.Scan).
func (w *writer) touchPlanUsers(name string) error {
	authIDs, err := indexedAuthorizationIDs(w.tx, tblPlanAuthorizations, name)
	if err != nil {
		return err
	}
	for _, authID := range authIDs {
		var auth Authorization
		if err := mustGetAuthorization(w.tx, authID, &auth); err != nil {
			return err
		}
		w.touch(auth.AccessKeyID)
	}
	return nil
}

// DeletePlan deletes a plan no authorization or binding names
// (ErrPlanInUse otherwise).
func (s *Store) DeletePlan(ctx context.Context, name string, actor Actor) error {
	return s.update(ctx, actor, func(w *writer) error {
		if err := mustGetPlan(w.tx, name, &Plan{}); err != nil {
			return err
		}
		prefix := indexID(name, "")
		users, err := w.tx.Scan(tblPlanAuthorizations, prefix, 1)
		if err != nil {
			return err
		}
		if len(users) == 1 {
			if authID, ok := strings.CutPrefix(users[0].ID, prefix); ok {
				return fmt.Errorf("plan %s is named by authorization %s: %w", name, authID, ErrPlanInUse)
			}
		}
		if err := w.tx.Delete(tblPlans, name); err != nil {
			return err
		}
		return w.audit("plan.delete", name)
	})
}
