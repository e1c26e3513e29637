package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// CreateAuthorization creates the authorization of one access key, named
// by AccessKeyID or APIKey, with optional bindings. A key has at most one
// authorization (ErrAuthorizationExists); every bound group must exist
// (ErrGroupNotFound).
func (s *Store) CreateAuthorization(ctx context.Context, na NewAuthorization, actor Actor) (Authorization, error) {
	if na.AccessKeyID == "" && na.APIKey == "" {
		return Authorization{}, invalid("access_key_id", "access_key_id or api_key is required")
	}
	if err := validateDescription("description", na.Description); err != nil {
		return Authorization{}, err
	}
	if err := validateWindow(na.ValidFrom, na.ValidUntil); err != nil {
		return Authorization{}, err
	}
	allowedIPs, err := normalizeAllowedIPs("allowed_ips", na.AllowedIPs)
	if err != nil {
		return Authorization{}, err
	}
	bindings, err := normalizeBindings("bindings", na.Bindings)
	if err != nil {
		return Authorization{}, err
	}
	if err := validatePlanRef("plan", na.Plan); err != nil {
		return Authorization{}, err
	}
	var created Authorization
	err = s.update(ctx, actor, func(w *writer) error {
		keyID := na.AccessKeyID
		if na.APIKey != "" {
			holder, err := w.tx.Get(tblAPIKeys, na.APIKey)
			if err != nil {
				return err
			}
			if holder == nil {
				return fmt.Errorf("access key with api_key %s: %w", quoteInput(na.APIKey), ErrNotFound)
			}
			if keyID != "" && keyID != string(holder) {
				return invalid("api_key", "belongs to another access key than access_key_id")
			}
			keyID = string(holder)
		}
		var key ExportedKey
		if err := mustGetKey(w.tx, keyID, &key); err != nil {
			return err
		}
		if existing, err := w.tx.Get(tblKeyAuthorizations, keyID); err != nil {
			return err
		} else if existing != nil {
			return fmt.Errorf("access key %s already has authorization %s: %w", keyID, existing, ErrAuthorizationExists)
		}
		id, err := s.newID("auth-")
		if err != nil {
			return err
		}
		auth := Authorization{
			ID:          id,
			AccessKeyID: keyID,
			APIKey:      key.APIKey,
			Description: na.Description,
			Enabled:     na.Enabled == nil || *na.Enabled,
			ValidFrom:   utcPtr(na.ValidFrom),
			ValidUntil:  utcPtr(na.ValidUntil),
			AllowedIPs:  allowedIPs,
			Bindings:    bindings,
			Plan:        na.Plan,
			CreatedAt:   w.now,
			UpdatedAt:   w.now,
		}
		if err := w.putAuthorization(auth); err != nil {
			return err
		}
		created = auth
		return w.audit("authorization.create", id)
	})
	return created, err
}

// putAuthorization writes auth with its indexes, and checks the groups of
// its new bindings and the plans it newly names.
func (w *writer) putAuthorization(auth Authorization) error {
	var stored Authorization
	if _, err := getJSON(w.tx, tblAuthorizations, auth.ID, &stored); err != nil {
		return err
	}
	for _, b := range auth.Bindings {
		if !slices.Contains(stored.Bindings, b) {
			if err := w.useGroup(b); err != nil {
				return err
			}
		}
	}
	wasPlanned, isPlanned := namedPlans(stored), namedPlans(auth)
	for plan := range isPlanned {
		if _, ok := wasPlanned[plan]; !ok {
			if err := mustPlanExist(w.tx, plan); err != nil {
				return err
			}
		}
	}
	if err := w.syncIndex(tblGroupAuthorizations, auth.ID, boundGroups(stored.Bindings), boundGroups(auth.Bindings)); err != nil {
		return err
	}
	if err := w.syncIndex(tblPlanAuthorizations, auth.ID, wasPlanned, isPlanned); err != nil {
		return err
	}
	if err := w.tx.Put(tblKeyAuthorizations, auth.AccessKeyID, []byte(auth.ID)); err != nil {
		return err
	}
	if err := putJSON(w.tx, tblAuthorizations, auth.ID, auth); err != nil {
		return err
	}
	w.touch(auth.AccessKeyID)
	return nil
}

// syncIndex moves an authorization's entries in an index table (group or
// plan name → authorization) from the names it had to those it has.
func (w *writer) syncIndex(table, authID string, was, is map[string]struct{}) error {
	for name := range was {
		if _, ok := is[name]; !ok {
			if err := w.tx.Delete(table, indexID(name, authID)); err != nil {
				return err
			}
		}
	}
	for name := range is {
		if _, ok := was[name]; !ok {
			if err := w.tx.Put(table, indexID(name, authID), []byte("1")); err != nil {
				return err
			}
		}
	}
	return nil
}

// useGroup checks that a binding's group exists and records its
// environment among the group's environments.
func (w *writer) useGroup(b Binding) error {
	var group Group
	ok, err := lookup(w, tblGroups, b.Group, &group)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("group %s: %w", quoteInput(b.Group), ErrGroupNotFound)
	}
	envs, changed := addEnvironment(group.Environments, b.Environment)
	if changed {
		group.Environments = envs
		if err := putJSON(w.tx, tblGroups, group.Name, group); err != nil {
			return err
		}
	}
	if w.written != nil {
		// An import binds many authorizations to the same few groups,
		// and writes groups only before its authorizations and here.
		remember(w, tblGroups, group.Name, group)
	}
	return nil
}

func boundGroups(bindings []Binding) map[string]struct{} {
	groups := make(map[string]struct{}, len(bindings))
	for _, b := range bindings {
		groups[b.Group] = struct{}{}
	}
	return groups
}

// namedPlans is the set of plans an authorization names, on itself or on
// its bindings.
func namedPlans(auth Authorization) map[string]struct{} {
	plans := make(map[string]struct{}, 1)
	if auth.Plan != "" {
		plans[string(auth.Plan)] = struct{}{}
	}
	for _, b := range auth.Bindings {
		if b.Plan != "" {
			plans[string(b.Plan)] = struct{}{}
		}
	}
	return plans
}

// indexID is the id in the index tables "group_authorizations" and
// "plan_authorizations". A space sorts before every character of a group
// or plan name, so one name's entries are contiguous and start right after
// "<name> ".
func indexID(name, authID string) string { return name + " " + authID }

// GetAuthorization returns an authorization, or ErrNotFound.
func (s *Store) GetAuthorization(ctx context.Context, id string) (Authorization, error) {
	var auth Authorization
	err := s.backend.View(ctx, func(tx Tx) error {
		return mustGetAuthorization(tx, id, &auth)
	})
	return auth, err
}

func mustGetAuthorization(tx Tx, id string, auth *Authorization) error {
	ok, err := getJSON(tx, tblAuthorizations, id, auth)
	if err == nil && !ok {
		err = fmt.Errorf("authorization %s: %w", quoteInput(id), ErrNotFound)
	}
	return err
}

// ListAuthorizations returns a page of authorizations in creation order,
// optionally only the one of an access key or those bound to a group.
func (s *Store) ListAuthorizations(ctx context.Context, filter AuthorizationFilter, page Page) ([]Authorization, string, error) {
	var items []Authorization
	var next string
	err := s.backend.View(ctx, func(tx Tx) error {
		var err error
		switch {
		case filter.AccessKeyID != "":
			items = []Authorization{}
			authID, err := tx.Get(tblKeyAuthorizations, filter.AccessKeyID)
			if err != nil || authID == nil || page.Cursor != "" { // the one match was on the first page
				return err
			}
			var auth Authorization
			if ok, err := getJSON(tx, tblAuthorizations, string(authID), &auth); err != nil || !ok {
				return err
			}
			if filter.Group == "" || slices.ContainsFunc(auth.Bindings, func(b Binding) bool { return b.Group == filter.Group }) {
				items = append(items, auth)
			}
		case filter.Group != "":
			items, next, err = groupAuthorizations(tx, filter.Group, page)
		default:
			items, next, err = scanPageNewestFirst(tx, tblAuthorizations, page, 0, func(r Record) (Authorization, bool, error) {
				var auth Authorization
				return auth, true, json.Unmarshal(r.Value, &auth)
			})
		}
		return err
	})
	return items, next, err
}

// groupAuthorizations pages through the authorizations bound to a group,
// newest first, with the group index.
func groupAuthorizations(tx Tx, group string, page Page) ([]Authorization, string, error) {
	limit := clampLimit(page.Limit)
	prefix := indexID(group, "")
	// IDs are ASCII: after the group's last entry when there is no cursor.
	before := prefix + "\xff"
	if page.Cursor != "" {
		before = prefix + page.Cursor
	}
	records, err := tx.ScanReverse(tblGroupAuthorizations, before, limit+1)
	if err != nil {
		return nil, "", err
	}
	items := make([]Authorization, 0, len(records))
	next := ""
	for _, r := range records {
		authID, ok := strings.CutPrefix(r.ID, prefix)
		if !ok {
			break
		}
		if len(items) == limit {
			next = items[limit-1].ID
			break
		}
		var auth Authorization
		if err := mustGetAuthorization(tx, authID, &auth); err != nil {
			return nil, "", err
		}
		items = append(items, auth)
	}
	return items, next, nil
}

// UpdateAuthorization changes the description, enabled flag, validity
// window or allowed IPs of an authorization.
func (s *Store) UpdateAuthorization(ctx context.Context, id string, patch AuthorizationPatch, actor Actor) (Authorization, error) {
	if patch.Description.Set && patch.Description.Value != nil {
		if err := validateDescription("description", *patch.Description.Value); err != nil {
			return Authorization{}, err
		}
	}
	if patch.Enabled.Set && patch.Enabled.Value == nil {
		return Authorization{}, invalid("enabled", "must be true or false")
	}
	var plan PlanRef
	if patch.Plan.Set && patch.Plan.Value != nil {
		plan = PlanRef(*patch.Plan.Value)
		if err := validatePlanRef("plan", plan); err != nil {
			return Authorization{}, err
		}
	}
	var allowedIPs []string
	if patch.AllowedIPs.Set {
		var ips []string
		if patch.AllowedIPs.Value != nil {
			ips = *patch.AllowedIPs.Value
		}
		var err error
		if allowedIPs, err = normalizeAllowedIPs("allowed_ips", ips); err != nil {
			return Authorization{}, err
		}
	}
	var updated Authorization
	err := s.update(ctx, actor, func(w *writer) error {
		var auth Authorization
		if err := mustGetAuthorization(w.tx, id, &auth); err != nil {
			return err
		}
		if patch.Description.Set {
			auth.Description = ""
			if patch.Description.Value != nil {
				auth.Description = *patch.Description.Value
			}
		}
		if patch.Enabled.Set {
			auth.Enabled = *patch.Enabled.Value
		}
		if patch.ValidFrom.Set {
			auth.ValidFrom = utcPtr(patch.ValidFrom.Value)
		}
		if patch.ValidUntil.Set {
			auth.ValidUntil = utcPtr(patch.ValidUntil.Value)
		}
		if patch.AllowedIPs.Set {
			auth.AllowedIPs = allowedIPs
		}
		if patch.Plan.Set {
			auth.Plan = plan
		}
		if err := validateWindow(auth.ValidFrom, auth.ValidUntil); err != nil {
			return err
		}
		auth.UpdatedAt = w.now
		if err := w.putAuthorization(auth); err != nil {
			return err
		}
		updated = auth
		return w.audit("authorization.update", id)
	})
	return updated, err
}

// DeleteAuthorization deletes an authorization and its bindings.
func (s *Store) DeleteAuthorization(ctx context.Context, id string, actor Actor) error {
	return s.update(ctx, actor, func(w *writer) error {
		var auth Authorization
		if err := mustGetAuthorization(w.tx, id, &auth); err != nil {
			return err
		}
		if err := w.deleteAuthorization(auth); err != nil {
			return err
		}
		return w.audit("authorization.delete", id)
	})
}

func (w *writer) deleteAuthorization(auth Authorization) error {
	if err := w.syncIndex(tblGroupAuthorizations, auth.ID, boundGroups(auth.Bindings), nil); err != nil {
		return err
	}
	if err := w.syncIndex(tblPlanAuthorizations, auth.ID, namedPlans(auth), nil); err != nil {
		return err
	}
	if holder, err := w.tx.Get(tblKeyAuthorizations, auth.AccessKeyID); err != nil {
		return err
	} else if string(holder) == auth.ID {
		if err := w.tx.Delete(tblKeyAuthorizations, auth.AccessKeyID); err != nil {
			return err
		}
	}
	if err := w.tx.Delete(tblAuthorizations, auth.ID); err != nil {
		return err
	}
	w.touch(auth.AccessKeyID)
	return nil
}

// Bind binds an authorization to an environment of a group (Environment ""
// is AnyEnvironment) with the binding's plan, which replaces the plan of a
// binding to the same environment. Binding twice changes nothing.
func (s *Store) Bind(ctx context.Context, authorizationID string, binding Binding, actor Actor) (Authorization, error) {
	if err := validatePlanRef("plan", binding.Plan); err != nil {
		return Authorization{}, err
	}
	bindings, err := normalizeBindings("binding", []Binding{binding})
	if err != nil {
		return Authorization{}, err
	}
	binding = bindings[0]
	var bound Authorization
	err = s.update(ctx, actor, func(w *writer) error {
		var auth Authorization
		if err := mustGetAuthorization(w.tx, authorizationID, &auth); err != nil {
			return err
		}
		if !slices.Contains(auth.Bindings, binding) {
			auth.Bindings = slices.DeleteFunc(slices.Clone(auth.Bindings), func(b Binding) bool {
				return b.Group == binding.Group && b.Environment == binding.Environment
			})
			auth.Bindings = append(auth.Bindings, binding)
			sortBindings(auth.Bindings)
			auth.UpdatedAt = w.now
			if err := w.putAuthorization(auth); err != nil {
				return err
			}
		} else if err := w.useGroup(binding); err != nil {
			return err
		}
		bound = auth
		return w.audit("authorization.bind", bindingTarget(authorizationID, binding))
	})
	return bound, err
}

// Unbind removes a binding of an authorization; with Environment "" it
// removes every binding to the group. Nothing to remove is ErrNotFound.
func (s *Store) Unbind(ctx context.Context, authorizationID string, binding Binding, actor Actor) (Authorization, error) {
	if err := validateGroupName("group", binding.Group); err != nil {
		return Authorization{}, err
	}
	if binding.Environment != "" {
		if err := validateEnvironment("environment", binding.Environment); err != nil {
			return Authorization{}, err
		}
	}
	var unbound Authorization
	err := s.update(ctx, actor, func(w *writer) error {
		var auth Authorization
		if err := mustGetAuthorization(w.tx, authorizationID, &auth); err != nil {
			return err
		}
		before := auth.Bindings
		auth.Bindings = slices.DeleteFunc(slices.Clone(before), func(b Binding) bool {
			return b.Group == binding.Group && (binding.Environment == "" || b.Environment == binding.Environment)
		})
		if len(auth.Bindings) == len(before) {
			return fmt.Errorf("binding of authorization %s to %s: %w", authorizationID, bindingTarget("", binding), ErrNotFound)
		}
		auth.UpdatedAt = w.now
		if err := w.putAuthorization(auth); err != nil {
			return err
		}
		unbound = auth
		return w.audit("authorization.unbind", bindingTarget(authorizationID, binding))
	})
	return unbound, err
}

// bindingTarget names a binding in audit records and errors:
// "<authorization>/<group>/<environment>".
func bindingTarget(authorizationID string, b Binding) string {
	env := b.Environment
	if env == "" {
		env = "(every)"
	}
	if authorizationID == "" {
		return b.Group + "/" + env
	}
	return authorizationID + "/" + b.Group + "/" + env
}
