package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Lengths of generated credentials, in random bytes.
const (
	generatedAPIKeyBytes    = 16 // 32 hex characters, 128 bits
	generatedAPISecretBytes = 32 // 64 hex characters, 256 bits
)

// CreateKey creates an access key. A generated key gets a random APIKey and
// APISecret; an imported one (Kind KindImported) takes them as given. The
// answer carries the APISecret. A name or imported APIKey already in use
// is ErrNameTaken.
func (s *Store) CreateKey(ctx context.Context, nk NewKey, actor Actor) (AccessKey, error) {
	if err := validateKeyName("name", nk.Name); err != nil {
		return AccessKey{}, err
	}
	if err := validateDescription("description", nk.Description); err != nil {
		return AccessKey{}, err
	}
	switch nk.Kind {
	case "", KindGenerated:
		nk.Kind = KindGenerated
		if nk.APIKey != "" {
			return AccessKey{}, invalid("api_key", "is set only for imported keys (kind %q)", KindImported)
		}
		if nk.APISecret != "" {
			return AccessKey{}, invalid("api_secret", "is set only for imported keys (kind %q)", KindImported)
		}
	case KindImported:
		if err := validateImported("api_key", nk.APIKey, false); err != nil {
			return AccessKey{}, err
		}
		if err := validateImported("api_secret", nk.APISecret, true); err != nil {
			return AccessKey{}, err
		}
	default:
		return AccessKey{}, invalid("kind", "must be %q or %q", KindGenerated, KindImported)
	}
	var created AccessKey
	err := s.update(ctx, actor, func(w *writer) error {
		id, err := s.newID("ak-")
		if err != nil {
			return err
		}
		if err := w.claim(tblKeyNames, nk.Name, id); err != nil {
			return err
		}
		apiKey, secret := nk.APIKey, nk.APISecret
		if nk.Kind == KindGenerated {
			if apiKey, err = s.randomHex(generatedAPIKeyBytes); err != nil {
				return err
			}
			if secret, err = s.randomHex(generatedAPISecretBytes); err != nil {
				return err
			}
		}
		if err := w.claim(tblAPIKeys, apiKey, id); err != nil {
			return err
		}
		key := ExportedKey{AccessKey: AccessKey{
			ID:          id,
			Name:        nk.Name,
			Description: nk.Description,
			Kind:        nk.Kind,
			APIKey:      apiKey,
			Enabled:     nk.Enabled == nil || *nk.Enabled,
			ExpiresAt:   utcPtr(nk.ExpiresAt),
			CreatedAt:   w.now,
			UpdatedAt:   w.now,
		}}
		if key.SealedSecret, err = s.sealer.seal(secret, id); err != nil {
			return err
		}
		if err := putJSON(w.tx, tblKeys, id, key); err != nil {
			return err
		}
		w.touch(id)
		action := "key.create"
		if nk.Kind == KindImported {
			action = "key.import"
		}
		created = key.AccessKey
		created.APISecret = secret
		return w.audit(action, id)
	})
	if err != nil {
		return AccessKey{}, err
	}
	return created, nil
}

// claim points an index of access keys (table tblKeyNames or tblAPIKeys)
// at id, or fails with ErrNameTaken when another key holds the value.
func (w *writer) claim(table, value, id string) error {
	holder, err := w.tx.Get(table, value)
	if err != nil {
		return err
	}
	if holder != nil && string(holder) != id {
		what := "name"
		if table == tblAPIKeys {
			what = "api_key"
		}
		return fmt.Errorf("%s %s is already used by another access key: %w", what, quoteInput(value), ErrNameTaken)
	}
	return w.tx.Put(table, value, []byte(id))
}

// GetKey returns an access key without its secret, or ErrNotFound.
func (s *Store) GetKey(ctx context.Context, id string) (AccessKey, error) {
	var key ExportedKey
	err := s.backend.View(ctx, func(tx Tx) error {
		return mustGetKey(tx, id, &key)
	})
	return key.AccessKey, err
}

func mustGetKey(tx Tx, id string, key *ExportedKey) error {
	ok, err := getJSON(tx, tblKeys, id, key)
	if err == nil && !ok {
		err = fmt.Errorf("access key %s: %w", quoteInput(id), ErrNotFound)
	}
	return err
}

// ListKeys returns a page of access keys in creation order and the cursor
// of the next page ("" when done).
func (s *Store) ListKeys(ctx context.Context, filter KeyFilter, page Page) ([]AccessKey, string, error) {
	keep := filter.matches
	budget := 0
	if filter.Query != "" || filter.Enabled != nil || filter.Kind != "" {
		budget = KeyScanBudget
	}
	var items []AccessKey
	var next string
	err := s.backend.View(ctx, func(tx Tx) error {
		if index, value := filter.exact(); index != "" {
			items = []AccessKey{}
			if page.Cursor != "" { // the one match was on the first page
				return nil
			}
			id, err := tx.Get(index, value)
			if err != nil || id == nil {
				return err
			}
			var key ExportedKey
			if ok, err := getJSON(tx, tblKeys, string(id), &key); err != nil || !ok {
				return err
			}
			if keep(key.AccessKey) {
				items = append(items, key.AccessKey)
			}
			return nil
		}
		var err error
		items, next, err = scanPageNewestFirst(tx, tblKeys, page, budget, func(r Record) (AccessKey, bool, error) {
			if !filter.mayMatch(r.Value) {
				return AccessKey{}, false, nil
			}
			var key ExportedKey
			if err := json.Unmarshal(r.Value, &key); err != nil {
				return AccessKey{}, false, err
			}
			return key.AccessKey, keep(key.AccessKey), nil
		})
		return err
	})
	return items, next, err
}

// UpdateKey changes the name, description, enabled flag or expiry of an
// access key.
func (s *Store) UpdateKey(ctx context.Context, id string, patch KeyPatch, actor Actor) (AccessKey, error) {
	if patch.Name.Set {
		if patch.Name.Value == nil {
			return AccessKey{}, invalid("name", "must not be null")
		}
		if err := validateKeyName("name", *patch.Name.Value); err != nil {
			return AccessKey{}, err
		}
	}
	if patch.Description.Set && patch.Description.Value != nil {
		if err := validateDescription("description", *patch.Description.Value); err != nil {
			return AccessKey{}, err
		}
	}
	if patch.Enabled.Set && patch.Enabled.Value == nil {
		return AccessKey{}, invalid("enabled", "must be true or false")
	}
	var updated AccessKey
	err := s.update(ctx, actor, func(w *writer) error {
		var key ExportedKey
		if err := mustGetKey(w.tx, id, &key); err != nil {
			return err
		}
		if patch.Name.Set && *patch.Name.Value != key.Name {
			if err := w.claim(tblKeyNames, *patch.Name.Value, id); err != nil {
				return err
			}
			if err := w.tx.Delete(tblKeyNames, key.Name); err != nil {
				return err
			}
			key.Name = *patch.Name.Value
		}
		if patch.Description.Set {
			key.Description = ""
			if patch.Description.Value != nil {
				key.Description = *patch.Description.Value
			}
		}
		if patch.Enabled.Set {
			key.Enabled = *patch.Enabled.Value
		}
		if patch.ExpiresAt.Set {
			key.ExpiresAt = utcPtr(patch.ExpiresAt.Value)
		}
		key.UpdatedAt = w.now
		if err := putJSON(w.tx, tblKeys, id, key); err != nil {
			return err
		}
		w.touch(id)
		updated = key.AccessKey
		return w.audit("key.update", id)
	})
	return updated, err
}

// ResetKey gives a generated access key a new secret, returned in the
// answer. With grace > 0 the old secret stays valid until now+grace; with 0
// it stops working at once. Imported keys cannot be reset: their secret
// belongs to another system.
func (s *Store) ResetKey(ctx context.Context, id string, grace time.Duration, actor Actor) (AccessKey, error) {
	if grace < 0 {
		return AccessKey{}, invalid("grace", "must not be negative")
	}
	var reset AccessKey
	err := s.update(ctx, actor, func(w *writer) error {
		var key ExportedKey
		if err := mustGetKey(w.tx, id, &key); err != nil {
			return err
		}
		if key.Kind == KindImported {
			return invalid("kind", "an imported key cannot be reset; delete and import it again with its new secret")
		}
		secret, err := s.randomHex(generatedAPISecretBytes)
		if err != nil {
			return err
		}
		key.SealedPreviousSecret, key.PreviousSecretExpiresAt = "", nil
		if grace > 0 {
			until := w.now.Add(grace)
			key.SealedPreviousSecret, key.PreviousSecretExpiresAt = key.SealedSecret, &until
		}
		if key.SealedSecret, err = s.sealer.seal(secret, id); err != nil {
			return err
		}
		now := w.now
		key.SecretRotatedAt, key.UpdatedAt = &now, now
		if err := putJSON(w.tx, tblKeys, id, key); err != nil {
			return err
		}
		w.touch(id)
		reset = key.AccessKey
		reset.APISecret = secret
		return w.audit("key.reset", id)
	})
	if err != nil {
		return AccessKey{}, err
	}
	return reset, nil
}

// DeleteKey deletes an access key and its credential; ErrKeyInUse while an
// authorization names it.
func (s *Store) DeleteKey(ctx context.Context, id string, actor Actor) error {
	return s.update(ctx, actor, func(w *writer) error {
		var key ExportedKey
		if err := mustGetKey(w.tx, id, &key); err != nil {
			return err
		}
		authID, err := w.tx.Get(tblKeyAuthorizations, id)
		if err != nil {
			return err
		}
		if authID != nil {
			return fmt.Errorf("access key %s is named by authorization %s: %w", id, authID, ErrKeyInUse)
		}
		if err := w.deleteKeyRecords(key); err != nil {
			return err
		}
		return w.audit("key.delete", id)
	})
}

// deleteKeyRecords deletes a key no authorization names, with its indexes
// and credential.
func (w *writer) deleteKeyRecords(key ExportedKey) error {
	for _, del := range [][2]string{
		{tblKeys, key.ID}, {tblKeyNames, key.Name}, {tblAPIKeys, key.APIKey}, {tblCredentials, key.APIKey},
	} {
		if err := w.tx.Delete(del[0], del[1]); err != nil {
			return err
		}
	}
	w.announce(key.APIKey)
	return nil
}

// KeyGroups returns the groups and environments the access key may call
// now: the bindings of its authorization, or none while the key is disabled
// or expired or the authorization is disabled or outside its validity window
// (the request check would refuse every call then).
func (s *Store) KeyGroups(ctx context.Context, id string) ([]Binding, error) {
	bindings := []Binding{}
	now := s.now()
	err := s.backend.View(ctx, func(tx Tx) error {
		var key ExportedKey
		if err := mustGetKey(tx, id, &key); err != nil {
			return err
		}
		if !key.Enabled || !before(now, key.ExpiresAt) {
			return nil
		}
		authID, err := tx.Get(tblKeyAuthorizations, id)
		if err != nil || authID == nil {
			return err
		}
		var auth Authorization
		if ok, err := getJSON(tx, tblAuthorizations, string(authID), &auth); err != nil || !ok {
			return err
		}
		if !auth.Enabled || !before(now, auth.ValidUntil) || (auth.ValidFrom != nil && now.Before(*auth.ValidFrom)) {
			return nil
		}
		bindings = append(bindings, auth.Bindings...)
		return nil
	})
	return bindings, err
}

// before reports whether now is before the end of an open-ended window (nil: never ends).
func before(now time.Time, end *time.Time) bool { return end == nil || now.Before(*end) }
