package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// ExportVersion is the format version of Export.
const ExportVersion = 1

// Export returns the whole data set: keys with their secrets sealed under
// the master keys, authorizations and groups. Audit records stay behind.
func (s *Store) Export(ctx context.Context) (Export, error) {
	exp := Export{
		Version:        ExportVersion,
		ExportedAt:     s.now().UTC(),
		Keys:           []ExportedKey{},
		Authorizations: []Authorization{},
		Groups:         []Group{},
		Plans:          []Plan{},
	}
	err := s.backend.View(ctx, func(tx Tx) error {
		return scanAll(tx, []scanTarget{
			{tblKeys, func(b []byte) error { return appendJSON(b, &exp.Keys) }},
			{tblAuthorizations, func(b []byte) error { return appendJSON(b, &exp.Authorizations) }},
			{tblGroups, func(b []byte) error { return appendJSON(b, &exp.Groups) }},
			{tblPlans, func(b []byte) error { return appendJSON(b, &exp.Plans) }},
		})
	})
	for i := range exp.Groups {
		exp.Groups[i] = withEnvironments(exp.Groups[i])
	}
	return exp, err
}

type scanTarget struct {
	table string
	add   func([]byte) error
}

func scanAll(tx Tx, targets []scanTarget) error {
	for _, t := range targets {
		records, err := tx.Scan(t.table, "", 0)
		if err != nil {
			return err
		}
		for _, r := range records {
			if err := t.add(r.Value); err != nil {
				return fmt.Errorf("%s record %s: %w", t.table, r.ID, err)
			}
		}
	}
	return nil
}

func appendJSON[T any](b []byte, list *[]T) error {
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*list = append(*list, v)
	return nil
}

// Import merges an export into the store in one atomic transaction: each
// group, key and authorization replaces the one with the same name or ID,
// and everything else stays. Importing the same export twice changes
// nothing the second time. Secrets must open with one of the configured
// master keys; they are sealed again under the first. A name or APIKey
// held by another key is ErrNameTaken, a second authorization for a key
// ErrAuthorizationExists, a binding to a group that exists in neither
// ErrGroupNotFound.
func (s *Store) Import(ctx context.Context, data Export, actor Actor) error {
	if data.Version != ExportVersion {
		return invalid("version", "unsupported export version %d (this store reads version %d)", data.Version, ExportVersion)
	}
	groups, err := s.checkImportedGroups(data.Groups)
	if err != nil {
		return err
	}
	keys, err := s.checkImportedKeys(data.Keys)
	if err != nil {
		return err
	}
	auths, err := checkImportedAuthorizations(data.Authorizations)
	if err != nil {
		return err
	}
	plans, err := checkImportedPlans(data.Plans)
	if err != nil {
		return err
	}
	return s.update(ctx, actor, func(w *writer) error {
		for _, g := range groups {
			if err := w.importGroup(g); err != nil {
				return err
			}
		}
		for _, p := range plans {
			if err := w.importPlan(p); err != nil {
				return err
			}
		}
		for _, k := range keys {
			if err := w.importKey(k); err != nil {
				return err
			}
		}
		for i, a := range auths {
			if err := w.importAuthorization(fmt.Sprintf("authorizations[%d]", i), a); err != nil {
				return err
			}
		}
		return w.audit("store.import", fmt.Sprintf("%d keys, %d authorizations, %d groups, %d plans", len(keys), len(auths), len(groups), len(plans)))
	})
}

func (s *Store) checkImportedGroups(groups []Group) ([]Group, error) {
	out := make([]Group, 0, len(groups))
	seen := make(map[string]bool)
	for i, g := range groups {
		field := fmt.Sprintf("groups[%d]", i)
		if err := validateGroupName(field+".name", g.Name); err != nil {
			return nil, err
		}
		if seen[g.Name] {
			return nil, invalid(field+".name", "%s appears twice", g.Name)
		}
		seen[g.Name] = true
		checked, err := checkGroupEntry(field, g)
		if err != nil {
			return nil, err
		}
		checked.CreatedAt = g.CreatedAt.UTC()
		out = append(out, checked)
	}
	return out, nil
}

// checkGroupEntry checks the description and environments of a group
// entry at field (of an export or an apply file) and returns its name,
// description and environments, sorted.
func checkGroupEntry(field string, g Group) (Group, error) {
	if err := validateDescription(field+".description", g.Description); err != nil {
		return Group{}, err
	}
	var envs []string
	for j, env := range g.Environments {
		if err := validateEnvironment(fmt.Sprintf("%s.environments[%d]", field, j), env); err != nil {
			return Group{}, err
		}
		envs, _ = addEnvironment(envs, env)
	}
	return Group{Name: g.Name, Description: g.Description, Environments: envs}, nil
}

func (s *Store) checkImportedKeys(keys []ExportedKey) ([]ExportedKey, error) {
	out := make([]ExportedKey, 0, len(keys))
	seen := make(map[string]bool)
	for i, k := range keys {
		field := fmt.Sprintf("keys[%d]", i)
		if err := validateRecordID(field+".id", k.ID); err != nil {
			return nil, err
		}
		if err := validateKeyName(field+".name", k.Name); err != nil {
			return nil, err
		}
		if err := validateDescription(field+".description", k.Description); err != nil {
			return nil, err
		}
		if k.Kind != KindGenerated && k.Kind != KindImported {
			return nil, invalid(field+".kind", "must be %q or %q", KindGenerated, KindImported)
		}
		if err := validateImported(field+".api_key", k.APIKey, false); err != nil {
			return nil, err
		}
		if k.APISecret != "" {
			return nil, invalid(field+".api_secret", "exports carry sealed secrets only")
		}
		for _, unique := range []string{"id " + k.ID, "name " + k.Name, "api_key " + k.APIKey} {
			if seen[unique] {
				return nil, invalid(field, "the %s appears twice", quoteInput(unique))
			}
			seen[unique] = true
		}
		// Open every secret now, so a wrong master key fails before any
		// write, and seal it again under the first master key.
		secret, err := s.sealer.open(k.SealedSecret, k.ID)
		if err != nil {
			return nil, invalid(field+".sealed_secret", "%v", err)
		}
		if k.SealedSecret, err = s.sealer.seal(secret, k.ID); err != nil {
			return nil, err
		}
		if k.SealedPreviousSecret == "" || k.PreviousSecretExpiresAt == nil {
			k.SealedPreviousSecret, k.PreviousSecretExpiresAt = "", nil
		} else {
			previous, err := s.sealer.open(k.SealedPreviousSecret, k.ID)
			if err != nil {
				return nil, invalid(field+".sealed_previous_secret", "%v", err)
			}
			if k.SealedPreviousSecret, err = s.sealer.seal(previous, k.ID); err != nil {
				return nil, err
			}
		}
		k.CreatedAt, k.UpdatedAt = k.CreatedAt.UTC(), k.UpdatedAt.UTC()
		k.ExpiresAt, k.LastUsedAt = utcPtr(k.ExpiresAt), utcPtr(k.LastUsedAt)
		k.SecretRotatedAt, k.PreviousSecretExpiresAt = utcPtr(k.SecretRotatedAt), utcPtr(k.PreviousSecretExpiresAt)
		out = append(out, k)
	}
	return out, nil
}

func checkImportedAuthorizations(auths []Authorization) ([]Authorization, error) {
	out := make([]Authorization, 0, len(auths))
	seen := make(map[string]bool)
	for i, a := range auths {
		field := fmt.Sprintf("authorizations[%d]", i)
		if err := validateRecordID(field+".id", a.ID); err != nil {
			return nil, err
		}
		if err := validateRecordID(field+".access_key_id", a.AccessKeyID); err != nil {
			return nil, err
		}
		for _, unique := range []string{"id " + a.ID, "access_key_id " + a.AccessKeyID} {
			if seen[unique] {
				return nil, invalid(field, "the %s appears twice", quoteInput(unique))
			}
			seen[unique] = true
		}
		if err := validateDescription(field+".description", a.Description); err != nil {
			return nil, err
		}
		if err := validateWindow(a.ValidFrom, a.ValidUntil); err != nil {
			return nil, invalid(field+".valid_from", "must be before valid_until")
		}
		var err error
		if a.AllowedIPs, err = normalizeAllowedIPs(field+".allowed_ips", a.AllowedIPs); err != nil {
			return nil, err
		}
		if a.Bindings, err = normalizeBindings(field+".bindings", a.Bindings); err != nil {
			return nil, err
		}
		if err := validatePlanRef(field+".plan", a.Plan); err != nil {
			return nil, err
		}
		a.CreatedAt, a.UpdatedAt = a.CreatedAt.UTC(), a.UpdatedAt.UTC()
		a.ValidFrom, a.ValidUntil = utcPtr(a.ValidFrom), utcPtr(a.ValidUntil)
		out = append(out, a)
	}
	return out, nil
}

func checkImportedPlans(plans []Plan) ([]Plan, error) {
	out := make([]Plan, 0, len(plans))
	seen := make(map[string]bool)
	for i, p := range plans {
		field := fmt.Sprintf("plans[%d].", i)
		if err := validateGroupName(field+"name", p.Name); err != nil {
			return nil, err
		}
		if seen[p.Name] {
			return nil, invalid(field+"name", "%s appears twice", p.Name)
		}
		seen[p.Name] = true
		if err := validatePlan(field, p); err != nil {
			return nil, err
		}
		p.CreatedAt, p.UpdatedAt = p.CreatedAt.UTC(), p.UpdatedAt.UTC()
		out = append(out, p)
	}
	return out, nil
}

// importPlan replaces the plan of the same name and announces the keys
// whose authorizations name it, as UpdatePlan does.
func (w *writer) importPlan(p Plan) error {
	var existing Plan
	found, err := getJSON(w.tx, tblPlans, p.Name, &existing)
	if err != nil {
		return err
	}
	if found {
		if err := w.touchPlanUsers(p.Name); err != nil {
			return err
		}
	}
	p.CreatedAt = w.timeOr(p.CreatedAt, existing.CreatedAt)
	p.UpdatedAt = w.timeOr(p.UpdatedAt, p.CreatedAt)
	return putJSON(w.tx, tblPlans, p.Name, p)
}

func (w *writer) importGroup(g Group) error {
	var existing Group
	found, err := getJSON(w.tx, tblGroups, g.Name, &existing)
	if err != nil {
		return err
	}
	if found {
		for _, env := range existing.Environments {
			g.Environments, _ = addEnvironment(g.Environments, env)
		}
	}
	g.CreatedAt = w.timeOr(g.CreatedAt, existing.CreatedAt)
	return putJSON(w.tx, tblGroups, g.Name, g)
}

func (w *writer) importKey(k ExportedKey) error {
	var old ExportedKey
	found, err := getJSON(w.tx, tblKeys, k.ID, &old)
	if err != nil {
		return err
	}
	if found && old.Name != k.Name {
		if err := w.tx.Delete(tblKeyNames, old.Name); err != nil {
			return err
		}
	}
	if found && old.APIKey != k.APIKey {
		for _, table := range []string{tblAPIKeys, tblCredentials} {
			if err := w.tx.Delete(table, old.APIKey); err != nil {
				return err
			}
		}
		w.announce(old.APIKey)
	}
	k.CreatedAt = w.timeOr(k.CreatedAt, old.CreatedAt)
	k.UpdatedAt = w.timeOr(k.UpdatedAt, k.CreatedAt)
	if err := w.claim(tblKeyNames, k.Name, k.ID); err != nil {
		return err
	}
	if err := w.claim(tblAPIKeys, k.APIKey, k.ID); err != nil {
		return err
	}
	if err := putJSON(w.tx, tblKeys, k.ID, k); err != nil {
		return err
	}
	w.touch(k.ID)
	return nil
}

func (w *writer) importAuthorization(field string, a Authorization) error {
	var key ExportedKey
	found, err := getJSON(w.tx, tblKeys, a.AccessKeyID, &key)
	if err != nil {
		return err
	}
	if !found {
		return invalid(field+".access_key_id", "%s is neither in the export nor in the store", quoteInput(a.AccessKeyID))
	}
	a.APIKey = key.APIKey
	var old Authorization
	found, err = getJSON(w.tx, tblAuthorizations, a.ID, &old)
	if err != nil {
		return err
	}
	a.CreatedAt = w.timeOr(a.CreatedAt, old.CreatedAt)
	a.UpdatedAt = w.timeOr(a.UpdatedAt, a.CreatedAt)
	if found && old.AccessKeyID != a.AccessKeyID {
		if err := w.deleteAuthorization(old); err != nil {
			return err
		}
	}
	holder, err := w.tx.Get(tblKeyAuthorizations, a.AccessKeyID)
	if err != nil {
		return err
	}
	if holder != nil && string(holder) != a.ID {
		return fmt.Errorf("access key %s already has authorization %s: %w", a.AccessKeyID, holder, ErrAuthorizationExists)
	}
	return w.putAuthorization(a)
}

// timeOr fills in a time a hand-made export left out: the stored record's,
// else now.
func (w *writer) timeOr(t, stored time.Time) time.Time {
	switch {
	case !t.IsZero():
		return t
	case !stored.IsZero():
		return stored
	}
	return w.now
}
