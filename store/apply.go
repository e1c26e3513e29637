package store

import (
	"context"
	"fmt"
	"time"
)

// DesiredState is the file of `caddy access-auth apply` (docs/apply.md):
// the groups, plans, keys and authorizations the store is to hold. Each
// entry is whole: a field it leaves out takes its default, as on create.
// Entries the file does not name stay as they are, unless the apply
// prunes.
type DesiredState struct {
	Groups         []DesiredGroup         `json:"groups"`
	Plans          []NewPlan              `json:"plans"`
	Keys           []DesiredKey           `json:"keys"`
	Authorizations []DesiredAuthorization `json:"authorizations"`
}

// DesiredGroup is a group by name. Environments are declared ones: apply
// adds them and never removes one (routes register theirs).
type DesiredGroup struct {
	Name         string   `json:"name"`
	Description  string   `json:"description"`
	Environments []string `json:"environments"`
}

// DesiredKey is an access key by name: imported when it gives APIKey and
// APISecret, generated (created when missing, its secret answered once)
// when it gives neither.
type DesiredKey struct {
	Name        string     `json:"name"`
	Description string     `json:"description"`
	APIKey      string     `json:"api_key"`
	APISecret   string     `json:"api_secret"`
	Enabled     *bool      `json:"enabled"` // default true
	ExpiresAt   *time.Time `json:"expires_at"`
}

// DesiredAuthorization is the authorization of one access key, named by
// exactly one of Key (its name), AccessKeyID or APIKey.
type DesiredAuthorization struct {
	Key string `json:"key"`
	NewAuthorization
}

// ApplyOptions tune Apply.
type ApplyOptions struct {
	// DryRun computes the changes and writes nothing.
	DryRun bool
	// Prune deletes what the file neither declares nor refers to.
	Prune bool
}

// Operations of an ApplyChange, as the diff prints them.
const (
	ApplyCreate = "+"
	ApplyUpdate = "~"
	ApplyDelete = "-"
)

// AppliedChange is one line of the diff: Op on the Kind ("group",
// "plan", "key" or "authorization") named Name (an authorization by its
// key's name), with the Fields a change touches.
type AppliedChange struct {
	Op     string   `json:"op"`
	Kind   string   `json:"kind"`
	Name   string   `json:"name"`
	Fields []string `json:"fields,omitempty"`
}

// GeneratedSecret is the credential of a generated key an apply created:
// the only time its secret is shown.
type GeneratedSecret struct {
	Name      string `json:"name"`
	ID        string `json:"id"`
	APIKey    string `json:"api_key"`
	APISecret string `json:"api_secret"`
}

// ApplyResult is the answer of Apply.
type ApplyResult struct {
	DryRun  bool              `json:"dry_run"`
	Changes []AppliedChange   `json:"changes"`
	Secrets []GeneratedSecret `json:"secrets"`
}

// Apply brings the store to the desired state in one transaction: all of
// it or, on any error, none. A file that names a missing group, plan or
// key is an *InvalidArgumentError naming the entry's path, before any
// write. When nothing differs Apply writes nothing, not even an audit
// record, so a second apply of the same file leaves no trace.
func (s *Store) Apply(ctx context.Context, d DesiredState, opts ApplyOptions, actor Actor) (ApplyResult, error) {
	desired, err := checkDesiredState(d)
	if err != nil {
		return ApplyResult{}, err
	}
	// Look first: a dry run, or an apply of an unchanged file, ends here.
	var plan *applyPlan
	err = s.backend.View(ctx, func(tx Tx) error {
		var err error
		plan, err = s.planApply(tx, desired, opts.Prune)
		return err
	})
	if err != nil {
		return ApplyResult{}, err
	}
	result := ApplyResult{DryRun: opts.DryRun, Changes: plan.changes, Secrets: []GeneratedSecret{}}
	if opts.DryRun || len(plan.changes) == 0 {
		return result, nil
	}
	err = s.update(ctx, actor, func(w *writer) error {
		// Plan again inside the transaction: the store may have changed
		// since the look, and a retried transaction starts over.
		plan, err := s.planApply(w.tx, desired, opts.Prune)
		if err != nil {
			return err
		}
		result.Changes, result.Secrets = plan.changes, []GeneratedSecret{}
		if len(plan.changes) == 0 {
			return nil // another writer got there first
		}
		result.Secrets, err = w.apply(plan)
		return err
	})
	if err != nil {
		return ApplyResult{}, err
	}
	return result, nil
}

// apply writes a plan: creations and changes first, dependencies before
// what needs them, then deletions in the reverse order.
func (w *writer) apply(p *applyPlan) ([]GeneratedSecret, error) {
	for _, g := range p.groups {
		if err := w.importGroup(g.Group); err != nil {
			return nil, err
		}
		if err := w.audit(g.action, g.Name); err != nil {
			return nil, err
		}
	}
	for _, pl := range p.plans {
		pl.UpdatedAt = w.now
		if err := w.importPlan(pl.Plan); err != nil {
			return nil, err
		}
		if err := w.audit(pl.action, pl.Name); err != nil {
			return nil, err
		}
	}
	secrets := []GeneratedSecret{}
	keys := make(map[string]ExportedKey, len(p.keys)) // by name, as written
	for _, k := range p.keys {
		written, secret, err := w.applyKey(k)
		if err != nil {
			return nil, err
		}
		keys[written.Name] = written
		if secret != "" {
			secrets = append(secrets, GeneratedSecret{Name: written.Name, ID: written.ID, APIKey: written.APIKey, APISecret: secret})
		}
	}
	for _, a := range p.auths {
		key, ok := keys[a.keyName]
		if !ok {
			key = p.state.keys[a.keyName]
		}
		if err := w.applyAuthorization(a, key); err != nil {
			return nil, err
		}
	}
	for _, a := range p.deleteAuths {
		if err := w.deleteAuthorization(a); err != nil {
			return nil, err
		}
		if err := w.audit("authorization.delete", a.ID); err != nil {
			return nil, err
		}
	}
	for _, k := range p.deleteKeys {
		if err := w.deleteKeyRecords(k); err != nil {
			return nil, err
		}
		if err := w.audit("key.delete", k.ID); err != nil {
			return nil, err
		}
	}
	// Nothing names these any more: the authorizations that did were
	// rewritten or deleted above, and with them the index entries.
	if err := w.deleteNamed(tblPlans, "plan.delete", p.deletePlans); err != nil {
		return nil, err
	}
	if err := w.deleteNamed(tblGroups, "group.delete", p.deleteGroups); err != nil {
		return nil, err
	}
	return secrets, w.audit("store.apply", p.summary())
}

// deleteNamed deletes records of a table by name, each with its audit
// record.
func (w *writer) deleteNamed(table, action string, names []string) error {
	for _, name := range names {
		if err := w.tx.Delete(table, name); err != nil {
			return err
		}
		if err := w.audit(action, name); err != nil {
			return err
		}
	}
	return nil
}

// applyKey writes a created or changed key, and returns it with the secret
// to show once (a generated key's, when it was created).
func (w *writer) applyKey(k keyWrite) (ExportedKey, string, error) {
	key, action := k.key, "key.update"
	shown := ""
	if key.ID == "" {
		id, err := w.s.newID("ak-")
		if err != nil {
			return ExportedKey{}, "", err
		}
		key.ID, key.CreatedAt, action = id, w.now, "key.import"
		if key.Kind == KindGenerated {
			action = "key.create"
			if key.APIKey, err = w.s.randomHex(generatedAPIKeyBytes); err != nil {
				return ExportedKey{}, "", err
			}
			if k.secret, err = w.s.randomHex(generatedAPISecretBytes); err != nil {
				return ExportedKey{}, "", err
			}
			shown = k.secret
		}
	}
	if k.secret != "" {
		sealed, err := w.s.sealer.seal(k.secret, key.ID)
		if err != nil {
			return ExportedKey{}, "", err
		}
		key.SealedSecret, key.SealedPreviousSecret, key.PreviousSecretExpiresAt = sealed, "", nil
	}
	key.UpdatedAt = w.now
	if err := w.importKey(key); err != nil {
		return ExportedKey{}, "", err
	}
	if err := w.audit(action, key.ID); err != nil {
		return ExportedKey{}, "", err
	}
	return key, shown, nil
}

// applyAuthorization writes the authorization of key: a created or
// changed one, or a stored one whose key's api_key changed.
func (w *writer) applyAuthorization(a authWrite, key ExportedKey) error {
	auth := a.auth
	action := "authorization.update"
	if auth.ID == "" {
		id, err := w.s.newID("auth-")
		if err != nil {
			return err
		}
		auth.ID, auth.CreatedAt, action = id, w.now, "authorization.create"
	}
	auth.AccessKeyID, auth.APIKey, auth.UpdatedAt = key.ID, key.APIKey, w.now
	if err := w.putAuthorization(auth); err != nil {
		return fmt.Errorf("%s: %w", a.field, err)
	}
	if !a.announced {
		return nil
	}
	return w.audit(action, auth.ID)
}
