package store

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"time"
)

// This file computes what an apply changes: it checks the file on its
// own, reads the store's records, and compares the two (see apply.go).

// desiredState is a DesiredState checked on its own, defaults filled in
// and lists normalized.
type desiredState struct {
	groups []Group
	plans  []Plan
	keys   []desiredKey
	auths  []desiredAuthorization
}

type desiredKey struct {
	field string // path of the entry in the file, e.g. "keys[2]"
	DesiredKey
	enabled bool
}

type desiredAuthorization struct {
	field string
	raw   DesiredAuthorization // in file order, for the paths of errors
	auth  Authorization        // normalized, without key or ID
}

// checkDesiredState checks what can be checked without the store: names,
// values, duplicates.
func checkDesiredState(d DesiredState) (*desiredState, error) {
	out := &desiredState{}
	seen := make(map[string]bool)
	once := func(field, what, value string) error {
		if seen[what+" "+value] {
			return invalid(field, "%s %s appears twice in the file", what, quoteInput(value))
		}
		seen[what+" "+value] = true
		return nil
	}
	for i, g := range d.Groups {
		field := fmt.Sprintf("groups[%d]", i)
		if err := validateGroupName(field+".name", g.Name); err != nil {
			return nil, err
		}
		if err := once(field+".name", "group", g.Name); err != nil {
			return nil, err
		}
		checked, err := checkGroupEntry(field, Group{Name: g.Name, Description: g.Description, Environments: g.Environments})
		if err != nil {
			return nil, err
		}
		out.groups = append(out.groups, checked)
	}
	for i, p := range d.Plans {
		field := fmt.Sprintf("plans[%d]", i)
		if err := validateGroupName(field+".name", p.Name); err != nil {
			return nil, err
		}
		if err := once(field+".name", "plan", p.Name); err != nil {
			return nil, err
		}
		plan := Plan{Name: p.Name, Description: p.Description, Rate: p.Rate, Burst: p.Burst, Quota: p.Quota}
		if err := validatePlan(field+".", plan); err != nil {
			return nil, err
		}
		out.plans = append(out.plans, plan)
	}
	for i, k := range d.Keys {
		field := fmt.Sprintf("keys[%d]", i)
		if err := validateKeyName(field+".name", k.Name); err != nil {
			return nil, err
		}
		if err := once(field+".name", "key", k.Name); err != nil {
			return nil, err
		}
		if err := validateDescription(field+".description", k.Description); err != nil {
			return nil, err
		}
		switch {
		case k.APIKey == "" && k.APISecret != "":
			return nil, invalid(field+".api_secret", "is given only with api_key, for an imported key")
		case k.APIKey != "":
			if err := validateImported(field+".api_key", k.APIKey, false); err != nil {
				return nil, err
			}
			if err := validateImported(field+".api_secret", k.APISecret, true); err != nil {
				return nil, err
			}
			if err := once(field+".api_key", "api_key", k.APIKey); err != nil {
				return nil, err
			}
		}
		k.ExpiresAt = utcPtr(k.ExpiresAt)
		out.keys = append(out.keys, desiredKey{field: field, DesiredKey: k, enabled: k.Enabled == nil || *k.Enabled})
	}
	for i, a := range d.Authorizations {
		field := fmt.Sprintf("authorizations[%d]", i)
		named := 0
		for _, ref := range []string{a.Key, a.AccessKeyID, a.APIKey} {
			if ref != "" {
				named++
			}
		}
		if named != 1 {
			return nil, invalid(field, "must name its access key by exactly one of key (its name), access_key_id or api_key")
		}
		if err := validateDescription(field+".description", a.Description); err != nil {
			return nil, err
		}
		if err := validateWindow(a.ValidFrom, a.ValidUntil); err != nil {
			return nil, invalid(field+".valid_from", "must be before valid_until")
		}
		allowedIPs, err := normalizeAllowedIPs(field+".allowed_ips", a.AllowedIPs)
		if err != nil {
			return nil, err
		}
		bindings, err := normalizeBindings(field+".bindings", a.Bindings)
		if err != nil {
			return nil, err
		}
		if err := validatePlanRef(field+".plan", a.Plan); err != nil {
			return nil, err
		}
		out.auths = append(out.auths, desiredAuthorization{field: field, raw: a, auth: Authorization{
			Description: a.Description,
			Enabled:     a.Enabled == nil || *a.Enabled,
			ValidFrom:   utcPtr(a.ValidFrom),
			ValidUntil:  utcPtr(a.ValidUntil),
			AllowedIPs:  allowedIPs,
			Bindings:    bindings,
			Plan:        a.Plan,
		}})
	}
	return out, nil
}

// applyState is the store's records as an apply finds them.
type applyState struct {
	keys            map[string]ExportedKey // by name
	keyNameByID     map[string]string
	keyNameByAPIKey map[string]string
	auths           map[string]Authorization // by access key ID
	groups          map[string]Group
	plans           map[string]Plan
}

// readApplyState reads every key, authorization, group and plan, before
// the transaction writes anything (Tx.Scan need not see its own writes).
func readApplyState(tx Tx) (applyState, error) {
	st := applyState{
		keys:            make(map[string]ExportedKey),
		keyNameByID:     make(map[string]string),
		keyNameByAPIKey: make(map[string]string),
		auths:           make(map[string]Authorization),
		groups:          make(map[string]Group),
		plans:           make(map[string]Plan),
	}
	err := scanAll(tx, []scanTarget{
		{tblKeys, func(b []byte) error {
			var k ExportedKey
			err := json.Unmarshal(b, &k)
			st.keys[k.Name], st.keyNameByID[k.ID], st.keyNameByAPIKey[k.APIKey] = k, k.Name, k.Name
			return err
		}},
		{tblAuthorizations, func(b []byte) error {
			var a Authorization
			err := json.Unmarshal(b, &a)
			st.auths[a.AccessKeyID] = a
			return err
		}},
		{tblGroups, func(b []byte) error {
			var g Group
			err := json.Unmarshal(b, &g)
			st.groups[g.Name] = g
			return err
		}},
		{tblPlans, func(b []byte) error {
			var p Plan
			err := json.Unmarshal(b, &p)
			st.plans[p.Name] = p
			return err
		}},
	})
	return st, err
}

// applyPlan is what an apply writes, and its diff.
type applyPlan struct {
	state        applyState
	changes      []AppliedChange
	groups       []groupWrite
	plans        []planWrite
	keys         []keyWrite
	auths        []authWrite
	deleteAuths  []Authorization
	deleteKeys   []ExportedKey
	deletePlans  []string
	deleteGroups []string
}

type groupWrite struct {
	Group
	action string
}

type planWrite struct {
	Plan
	action string
}

// keyWrite is a key to create (no ID yet) or change; secret is an
// imported key's new secret, sealed when written.
type keyWrite struct {
	key    ExportedKey
	secret string
}

// authWrite is an authorization to create (no ID yet) or change, of the
// key named keyName. announced is false for a rewrite the diff does not
// show: the api_key of its key changed.
type authWrite struct {
	auth      Authorization
	keyName   string
	field     string
	announced bool
}

func (p *applyPlan) add(op, kind, name string, fields ...string) {
	p.changes = append(p.changes, AppliedChange{Op: op, Kind: kind, Name: name, Fields: fields})
}

// summary is the target of the apply's audit record.
func (p *applyPlan) summary() string {
	counts := map[string]int{}
	for _, c := range p.changes {
		counts[c.Op]++
	}
	return fmt.Sprintf("%d created, %d changed, %d deleted", counts[ApplyCreate], counts[ApplyUpdate], counts[ApplyDelete])
}

// planApply compares the desired state with the store's and returns what
// to write. A reference to a group, plan or key in neither is an
// *InvalidArgumentError naming the entry's path.
func (s *Store) planApply(tx Tx, d *desiredState, prune bool) (*applyPlan, error) {
	st, err := readApplyState(tx)
	if err != nil {
		return nil, err
	}
	p := &applyPlan{state: st, changes: []AppliedChange{}}
	kept := map[string]map[string]bool{"group": {}, "plan": {}, "key": {}}
	for _, g := range d.groups {
		kept["group"][g.Name] = true
		p.planGroup(g)
	}
	for _, pl := range d.plans {
		kept["plan"][pl.Name] = true
		p.planPlan(pl)
	}
	var newAPIKey []string // names of stored keys given another api_key
	for _, k := range d.keys {
		kept["key"][k.Name] = true
		changedAPIKey, err := s.planKey(p, k)
		if err != nil {
			return nil, err
		}
		if changedAPIKey {
			newAPIKey = append(newAPIKey, k.Name)
		}
	}
	authorized := make(map[string]bool) // key names with an authorization in the file
	for _, a := range d.auths {
		keyName, err := p.resolveKey(d, a)
		if err != nil {
			return nil, err
		}
		if authorized[keyName] {
			return nil, invalid(a.field, "is a second authorization of access key %s (a key has at most one)", quoteInput(keyName))
		}
		authorized[keyName] = true
		if err := p.checkReferences(a, kept); err != nil {
			return nil, err
		}
		kept["key"][keyName] = true
		kept["plan"][string(a.auth.Plan)] = true
		for _, b := range a.auth.Bindings {
			kept["group"][b.Group], kept["plan"][string(b.Plan)] = true, true
		}
		p.planAuthorization(a, keyName)
	}
	if prune {
		p.planPrune(kept, authorized)
		return p, nil
	}
	// An authorization the file leaves alone still carries its key's
	// api_key.
	for _, name := range newAPIKey {
		if stored, ok := st.auths[st.keys[name].ID]; ok && !authorized[name] {
			p.auths = append(p.auths, authWrite{auth: stored, keyName: name, field: "authorization of " + name})
		}
	}
	return p, nil
}
func (p *applyPlan) planGroup(g Group) {
	stored, ok := p.state.groups[g.Name]
	if !ok {
		p.groups = append(p.groups, groupWrite{g, "group.create"})
		p.add(ApplyCreate, "group", g.Name)
		return
	}
	var fields []string
	if g.Description != stored.Description {
		fields = append(fields, "description")
	}
	for _, env := range g.Environments {
		if _, added := addEnvironment(stored.Environments, env); added {
			fields = append(fields, "environments")
			break
		}
	}
	if len(fields) > 0 {
		g.CreatedAt = stored.CreatedAt
		p.groups = append(p.groups, groupWrite{g, "group.update"})
		p.add(ApplyUpdate, "group", g.Name, fields...)
	}
}

func (p *applyPlan) planPlan(pl Plan) {
	stored, ok := p.state.plans[pl.Name]
	if !ok {
		p.plans = append(p.plans, planWrite{pl, "plan.create"})
		p.add(ApplyCreate, "plan", pl.Name)
		return
	}
	var fields []string
	for _, f := range []struct {
		name string
		same bool
	}{
		{"description", pl.Description == stored.Description},
		{"rate", reflect.DeepEqual(pl.Rate, stored.Rate)},
		{"burst", pl.Burst == stored.Burst},
		{"quota", reflect.DeepEqual(pl.Quota, stored.Quota)},
	} {
		if !f.same {
			fields = append(fields, f.name)
		}
	}
	if len(fields) > 0 {
		pl.CreatedAt = stored.CreatedAt
		p.plans = append(p.plans, planWrite{pl, "plan.update"})
		p.add(ApplyUpdate, "plan", pl.Name, fields...)
	}
}

// planKey plans a key and reports whether a stored key gets another
// api_key. An imported key's secret is compared in constant time and
// sealed again only when it changed.
func (s *Store) planKey(p *applyPlan, k desiredKey) (bool, error) {
	imported := k.APIKey != ""
	if holder, ok := p.state.keyNameByAPIKey[k.APIKey]; imported && ok && holder != k.Name {
		return false, invalid(k.field+".api_key", "is already the api_key of access key %s", quoteInput(holder))
	}
	stored, ok := p.state.keys[k.Name]
	if !ok {
		kind := KindGenerated
		if imported {
			kind = KindImported
		}
		p.keys = append(p.keys, keyWrite{key: ExportedKey{AccessKey: AccessKey{
			Name: k.Name, Description: k.Description, Kind: kind, APIKey: k.APIKey,
			Enabled: k.enabled, ExpiresAt: k.ExpiresAt,
		}}, secret: k.APISecret})
		p.add(ApplyCreate, "key", k.Name)
		return false, nil
	}
	switch {
	case imported && stored.Kind != KindImported:
		return false, invalid(k.field+".api_key", "access key %s exists as a generated key, which has no api_key to give; delete it to import one", quoteInput(k.Name))
	case !imported && stored.Kind == KindImported:
		return false, invalid(k.field+".api_key", "access key %s exists as an imported key: give its api_key and api_secret", quoteInput(k.Name))
	}
	var fields []string
	w := keyWrite{key: stored}
	if k.Description != stored.Description {
		fields, w.key.Description = append(fields, "description"), k.Description
	}
	if k.enabled != stored.Enabled {
		fields, w.key.Enabled = append(fields, "enabled"), k.enabled
	}
	if !sameTime(k.ExpiresAt, stored.ExpiresAt) {
		fields, w.key.ExpiresAt = append(fields, "expires_at"), k.ExpiresAt
	}
	if imported {
		if k.APIKey != stored.APIKey {
			fields, w.key.APIKey = append(fields, "api_key"), k.APIKey
		}
		secret, err := s.sealer.open(stored.SealedSecret, stored.ID)
		if err != nil {
			return false, fmt.Errorf("secret of access key %s: %w", stored.ID, err)
		}
		if subtle.ConstantTimeCompare([]byte(secret), []byte(k.APISecret)) != 1 {
			fields, w.secret = append(fields, "api_secret"), k.APISecret
		}
	}
	if len(fields) > 0 {
		p.keys = append(p.keys, w)
		p.add(ApplyUpdate, "key", k.Name, fields...)
	}
	return w.key.APIKey != stored.APIKey, nil
}

// resolveKey returns the name of the key an authorization names, in the
// file or in the store.
func (p *applyPlan) resolveKey(d *desiredState, a desiredAuthorization) (string, error) {
	switch {
	case a.raw.Key != "":
		if _, ok := p.state.keys[a.raw.Key]; ok || slices.ContainsFunc(d.keys, func(k desiredKey) bool { return k.Name == a.raw.Key }) {
			return a.raw.Key, nil
		}
		return "", invalid(a.field+".key", "access key %s is neither in the file nor in the store", quoteInput(a.raw.Key))
	case a.raw.AccessKeyID != "":
		if name, ok := p.state.keyNameByID[a.raw.AccessKeyID]; ok {
			return name, nil
		}
		return "", invalid(a.field+".access_key_id", "access key %s is not in the store", quoteInput(a.raw.AccessKeyID))
	}
	for _, k := range d.keys {
		if k.APIKey == a.raw.APIKey {
			return k.Name, nil
		}
	}
	if name, ok := p.state.keyNameByAPIKey[a.raw.APIKey]; ok {
		return name, nil
	}
	return "", invalid(a.field+".api_key", "no access key in the file or the store has api_key %s", quoteInput(a.raw.APIKey))
}

// checkReferences refuses an authorization that binds a group or names a
// plan the file does not declare and the store lacks. kept holds the
// file's groups and plans.
func (p *applyPlan) checkReferences(a desiredAuthorization, kept map[string]map[string]bool) error {
	exists := func(kind, name string) bool {
		if kind == "group" {
			_, ok := p.state.groups[name]
			return ok || kept[kind][name]
		}
		_, ok := p.state.plans[name]
		return ok || kept[kind][name]
	}
	if a.raw.Plan != "" && !exists("plan", string(a.raw.Plan)) {
		return invalid(a.field+".plan", "plan %s is neither in the file nor in the store", quoteInput(string(a.raw.Plan)))
	}
	for j, b := range a.raw.Bindings {
		if !exists("group", b.Group) {
			return invalid(fmt.Sprintf("%s.bindings[%d].group", a.field, j), "group %s is neither in the file nor in the store", quoteInput(b.Group))
		}
		if b.Plan != "" && !exists("plan", string(b.Plan)) {
			return invalid(fmt.Sprintf("%s.bindings[%d].plan", a.field, j), "plan %s is neither in the file nor in the store", quoteInput(string(b.Plan)))
		}
	}
	return nil
}

// planAuthorization plans the authorization of the key named keyName.
func (p *applyPlan) planAuthorization(a desiredAuthorization, keyName string) {
	want := a.auth
	stored, ok := p.state.auths[p.state.keys[keyName].ID]
	if !ok {
		p.auths = append(p.auths, authWrite{auth: want, keyName: keyName, field: a.field, announced: true})
		p.add(ApplyCreate, "authorization", keyName)
		return
	}
	var fields []string
	for _, f := range []struct {
		name string
		same bool
	}{
		{"description", want.Description == stored.Description},
		{"enabled", want.Enabled == stored.Enabled},
		{"valid_from", sameTime(want.ValidFrom, stored.ValidFrom)},
		{"valid_until", sameTime(want.ValidUntil, stored.ValidUntil)},
		{"allowed_ips", slices.Equal(want.AllowedIPs, stored.AllowedIPs)},
		{"bindings", slices.Equal(want.Bindings, stored.Bindings)},
		{"plan", want.Plan == stored.Plan},
	} {
		if !f.same {
			fields = append(fields, f.name)
		}
	}
	if len(fields) == 0 {
		return
	}
	want.ID, want.CreatedAt = stored.ID, stored.CreatedAt
	p.auths = append(p.auths, authWrite{auth: want, keyName: keyName, field: a.field, announced: true})
	p.add(ApplyUpdate, "authorization", keyName, fields...)
}

// planPrune deletes what the file neither declares nor refers to (kept):
// the authorizations of keys it does not authorize, then the keys, plans
// and groups no kept entry names.
func (p *applyPlan) planPrune(kept map[string]map[string]bool, authorized map[string]bool) {
	for _, keyID := range slices.Sorted(maps.Keys(p.state.auths)) {
		a := p.state.auths[keyID]
		name := p.state.keyNameByID[keyID]
		if authorized[name] {
			continue
		}
		p.deleteAuths = append(p.deleteAuths, a)
		p.add(ApplyDelete, "authorization", name)
	}
	for _, name := range slices.Sorted(maps.Keys(p.state.keys)) {
		if !kept["key"][name] {
			p.deleteKeys = append(p.deleteKeys, p.state.keys[name])
			p.add(ApplyDelete, "key", name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(p.state.plans)) {
		if !kept["plan"][name] {
			p.deletePlans = append(p.deletePlans, name)
			p.add(ApplyDelete, "plan", name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(p.state.groups)) {
		if !kept["group"][name] {
			p.deleteGroups = append(p.deleteGroups, name)
			p.add(ApplyDelete, "group", name)
		}
	}
}

// sameTime compares optional instants (nil: none).
func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

// scanTarget is a table read whole and what to do with each record.
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
