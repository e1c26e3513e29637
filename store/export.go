package store

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// ExportVersion is the format version of Export.
const ExportVersion = 1

// Export returns the whole data set in memory: ExportTo, decoded. Large
// data sets should stream with ExportTo instead.
func (s *Store) Export(ctx context.Context) (Export, error) {
	var buf bytes.Buffer
	if err := s.ExportTo(ctx, &buf); err != nil {
		return Export{}, err
	}
	var exp Export
	err := json.Unmarshal(buf.Bytes(), &exp)
	return exp, err
}

// exportPage is how many records ExportTo reads from the backend at a time:
// its memory does not grow with the data set.
const exportPage = 1000

// exportSection is one array of an export, in the order ExportTo writes
// them: what an authorization refers to comes before it, so ImportFrom
// can commit each batch as it arrives.
type exportSection struct {
	name, table string
	// tidy re-encodes a stored record as the export shows it.
	tidy func([]byte) ([]byte, error)
}

var exportSections = []exportSection{
	{"groups", tblGroups, reencode(func(g *Group) { *g = withEnvironments(*g) })},
	{"plans", tblPlans, reencode(func(*Plan) {})},
	{"keys", tblKeys, reencode(func(k *ExportedKey) { k.APISecret = "" })},
	{"authorizations", tblAuthorizations, reencode(func(a *Authorization) {
		a.AllowedIPs, a.Bindings = nonNilSlice(a.AllowedIPs), nonNilSlice(a.Bindings)
	})},
}

// ExportTo writes the whole data set as JSON to w (the Export shape): keys
// with their secrets sealed under the master keys, authorizations, groups
// and plans; audit records stay behind. It reads and writes a page of
// records at a time, so memory stays bounded whatever the data set's size.
// On an error part of the document may have been written already.
func (s *Store) ExportTo(ctx context.Context, w io.Writer) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	at, _ := s.now().UTC().MarshalJSON()
	fmt.Fprintf(bw, `{"version":%d,"exported_at":%s`, ExportVersion, at)
	err := s.backend.View(ctx, func(tx Tx) error {
		for _, sec := range exportSections {
			bw.WriteString(`,"` + sec.name + `":[`)
			if err := exportTable(ctx, tx, sec, bw); err != nil {
				return err
			}
			bw.WriteByte(']')
		}
		return nil
	})
	if err != nil {
		return err
	}
	bw.WriteString("}\n")
	return bw.Flush()
}

func exportTable(ctx context.Context, tx Tx, sec exportSection, bw *bufio.Writer) error {
	first := true
	for after := ""; ; {
		if err := ctx.Err(); err != nil {
			return err
		}
		records, err := tx.Scan(sec.table, after, exportPage)
		if err != nil {
			return err
		}
		for _, r := range records {
			b, err := sec.tidy(r.Value)
			if err != nil {
				return fmt.Errorf("%s record %s: %w", sec.table, r.ID, err)
			}
			if !first {
				bw.WriteByte(',')
			}
			first = false
			if _, err := bw.Write(b); err != nil {
				return err
			}
		}
		if len(records) < exportPage {
			return nil
		}
		after = records[len(records)-1].ID
	}
}

// reencode decodes a stored record, tidies it and encodes it again, so the
// export shows exactly the fields of today's types.
func reencode[T any](tidy func(*T)) func([]byte) ([]byte, error) {
	return func(b []byte) ([]byte, error) {
		var v T
		if err := unmarshalRecord(b, &v); err != nil {
			return nil, err
		}
		tidy(&v)
		return marshalRecord(v)
	}
}

func nonNilSlice[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
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
		return errExportVersion(data.Version)
	}
	return s.importBatch(ctx, data, importOffsets{}, actor)
}

func errExportVersion(v int) error {
	return invalid("version", "unsupported export version %d (this store reads version %d)", v, ExportVersion)
}

// importOffsets are the positions in the whole export of a batch's first
// group, plan, key and authorization, so errors name the right record.
type importOffsets struct{ groups, plans, keys, authorizations int }

// importBatch checks and merges part of an export in one transaction.
func (s *Store) importBatch(ctx context.Context, data Export, at importOffsets, actor Actor) error {
	checked, err := s.checkImport(data, at)
	if err != nil {
		return err
	}
	return s.applyImport(ctx, checked, actor, nil, nil)
}

// checkedImport is part of an export checked by checkImport, with the
// records its merge reads.
type checkedImport struct {
	groups []Group
	plans  []Plan
	keys   []ExportedKey
	auths  []Authorization
	at     importOffsets
	reads  []RecordRef
}

// checkImport checks part of an export at offsets at and lists what its
// merge reads, without the store: ImportFrom does it while the batch
// before commits.
func (s *Store) checkImport(data Export, at importOffsets) (checkedImport, error) {
	groups, err := s.checkImportedGroups(data.Groups, at.groups)
	if err != nil {
		return checkedImport{}, err
	}
	keys, err := s.checkImportedKeys(data.Keys, at.keys)
	if err != nil {
		return checkedImport{}, err
	}
	auths, err := checkImportedAuthorizations(data.Authorizations, at.authorizations)
	if err != nil {
		return checkedImport{}, err
	}
	plans, err := checkImportedPlans(data.Plans, at.plans)
	if err != nil {
		return checkedImport{}, err
	}
	return checkedImport{groups: groups, plans: plans, keys: keys, auths: auths, at: at,
		reads: importReads(groups, plans, keys, auths)}, nil
}

// applyImport merges a checked part of an export in one transaction,
// calling visible (unless nil) once the transaction is visible to the
// next (StagedUpdater). With ready, the merge may run before the
// transaction can begin, which waits for ready (AheadUpdater).
func (s *Store) applyImport(ctx context.Context, c checkedImport, actor Actor, ready func() error, visible func()) error {
	return s.updateStaged(ctx, actor, func(w *writer) error {
		w.expect(len(c.keys) + len(c.auths))
		if err := prefetch(w.tx, c.reads); err != nil {
			return err
		}
		for _, g := range c.groups {
			if err := w.importGroup(g); err != nil {
				return err
			}
		}
		for _, p := range c.plans {
			if err := w.importPlan(p); err != nil {
				return err
			}
		}
		for _, k := range c.keys {
			if err := w.importKey(k); err != nil {
				return err
			}
		}
		for i, a := range c.auths {
			if err := w.importAuthorization(fmt.Sprintf("authorizations[%d]", c.at.authorizations+i), a); err != nil {
				return err
			}
		}
		return w.audit("store.import", fmt.Sprintf("%d keys, %d authorizations, %d groups, %d plans", len(c.keys), len(c.auths), len(c.groups), len(c.plans)))
	}, ready, visible)
}

// importReads are the records an import of these reads (importKey,
// importAuthorization and the credentials they compile), fetched at once
// where the engine can.
func importReads(groups []Group, plans []Plan, keys []ExportedKey, auths []Authorization) []RecordRef {
	refs := make([]RecordRef, 0, len(groups)+len(plans)+4*len(keys)+4*len(auths))
	seen := make(map[RecordRef]bool, cap(refs))
	add := func(table, id string) {
		if r := (RecordRef{table, id}); !seen[r] {
			seen[r] = true
			refs = append(refs, r)
		}
	}
	for _, g := range groups {
		add(tblGroups, g.Name)
	}
	for _, p := range plans {
		add(tblPlans, p.Name)
	}
	for _, k := range keys {
		add(tblKeys, k.ID)
		add(tblKeyNames, k.Name)
		add(tblAPIKeys, k.APIKey)
		add(tblKeyAuthorizations, k.ID)
	}
	for _, a := range auths {
		add(tblKeys, a.AccessKeyID)
		add(tblKeyAuthorizations, a.AccessKeyID)
		add(tblAuthorizations, a.ID)
		for _, b := range a.Bindings {
			add(tblGroups, b.Group)
		}
	}
	return refs
}

func (s *Store) checkImportedGroups(groups []Group, first int) ([]Group, error) {
	out := make([]Group, 0, len(groups))
	seen := make(map[string]bool)
	for i, g := range groups {
		field := fmt.Sprintf("groups[%d]", first+i)
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

func (s *Store) checkImportedKeys(keys []ExportedKey, first int) ([]ExportedKey, error) {
	out := make([]ExportedKey, 0, len(keys))
	seen := make(map[string]bool, 3*len(keys))
	for i, k := range keys {
		field := fmt.Sprintf("keys[%d]", first+i)
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
		var err error
		if k.SealedSecret, err = s.sealer.reseal(k.SealedSecret, k.ID); err != nil {
			return nil, invalid(field+".sealed_secret", "%v", err)
		}
		if k.SealedPreviousSecret == "" || k.PreviousSecretExpiresAt == nil {
			k.SealedPreviousSecret, k.PreviousSecretExpiresAt = "", nil
		} else if k.SealedPreviousSecret, err = s.sealer.reseal(k.SealedPreviousSecret, k.ID); err != nil {
			return nil, invalid(field+".sealed_previous_secret", "%v", err)
		}
		k.CreatedAt, k.UpdatedAt = k.CreatedAt.UTC(), k.UpdatedAt.UTC()
		k.ExpiresAt, k.LastUsedAt = utcPtr(k.ExpiresAt), utcPtr(k.LastUsedAt)
		k.SecretRotatedAt, k.PreviousSecretExpiresAt = utcPtr(k.SecretRotatedAt), utcPtr(k.PreviousSecretExpiresAt)
		out = append(out, k)
	}
	return out, nil
}

func checkImportedAuthorizations(auths []Authorization, first int) ([]Authorization, error) {
	out := make([]Authorization, 0, len(auths))
	seen := make(map[string]bool, 2*len(auths))
	for i, a := range auths {
		field := fmt.Sprintf("authorizations[%d]", first+i)
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

func checkImportedPlans(plans []Plan, first int) ([]Plan, error) {
	out := make([]Plan, 0, len(plans))
	seen := make(map[string]bool)
	for i, p := range plans {
		field := fmt.Sprintf("plans[%d].", first+i)
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
	remember(w, tblKeys, k.ID, k)
	w.touch(k.ID)
	return nil
}

func (w *writer) importAuthorization(field string, a Authorization) error {
	var key ExportedKey
	found, err := lookup(w, tblKeys, a.AccessKeyID, &key)
	if err != nil {
		return err
	}
	if !found {
		return invalid(field+".access_key_id", "%s is neither in the export nor in the store", quoteInput(a.AccessKeyID))
	}
	remember(w, tblKeys, key.ID, key) // for its credential, compiled next
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
	if err := w.putAuthorization(a); err != nil {
		return err
	}
	remember(w, tblAuthorizations, a.ID, a)
	return nil
}

// remember keeps a record an import just put or read, decoded, for lookup:
// a bulk import would otherwise decode each key and authorization again to
// compile its credential. An import writes keys only through importKey,
// which remembers what it puts, so what is kept is never stale.
func remember[T any](w *writer, table, id string, v T) {
	if w.written == nil {
		w.written = make(map[RecordRef]any)
	}
	w.written[RecordRef{table, id}] = v
}

// lookup reads a record as getJSON does, from what remember kept first.
func lookup[T any](w *writer, table, id string, v *T) (bool, error) {
	if r, ok := w.written[RecordRef{table, id}]; ok {
		*v = r.(T)
		return true, nil
	}
	return getJSON(w.tx, table, id, v)
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
