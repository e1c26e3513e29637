package storetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/accessauth/caddy-access-auth/store"
)

// applyFile is the desired state most apply tests start from: a group and
// a plan, a generated and an imported key, and their authorizations named
// by key name and by api_key.
func applyFile() store.DesiredState {
	return store.DesiredState{
		Groups: []store.DesiredGroup{{Name: "orders", Description: "Orders", Environments: []string{"prod"}}},
		Plans:  []store.NewPlan{{Name: "gold", Rate: rate(10, store.PerSecond)}},
		Keys: []store.DesiredKey{
			{Name: "alice", Description: "generated"},
			{Name: "partner", APIKey: "PARTNER-AK", APISecret: "partner secret"},
		},
		Authorizations: []store.DesiredAuthorization{
			{Key: "alice", NewAuthorization: store.NewAuthorization{Bindings: []store.Binding{{Group: "orders", Environment: "prod"}}, Plan: "gold"}},
			{NewAuthorization: store.NewAuthorization{APIKey: "PARTNER-AK", Bindings: []store.Binding{{Group: "orders"}}}},
		},
	}
}

func (e *env) apply(d store.DesiredState, opts store.ApplyOptions) store.ApplyResult {
	e.t.Helper()
	return get(e.s.Apply(e.ctx, d, opts, actor)).must(e.t)
}

// diff renders changes as the CLI prints them, one per line.
func diff(changes []store.AppliedChange) string {
	var b strings.Builder
	for _, c := range changes {
		fmt.Fprintf(&b, "%s %s %s", c.Op, c.Kind, c.Name)
		if len(c.Fields) > 0 {
			fmt.Fprintf(&b, " (%s)", strings.Join(c.Fields, ", "))
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func wantDiff(t *testing.T, got []store.AppliedChange, want ...string) {
	t.Helper()
	if g, w := diff(got), strings.Join(want, "\n")+"\n"; g != w && !(len(want) == 0 && g == "") {
		t.Fatalf("diff:\n%s\nwant:\n%s", g, w)
	}
}

// testApply applies a file to an empty store: everything is created in one
// write, the generated key's secret comes back once and works, and a second
// apply of the same file writes nothing, not even an audit record.
func testApply(t *testing.T, newBackend func(t *testing.T) store.Backend) {
	e := newEnv(t, newBackend)
	feed := e.s.Subscribe(subscribeContext(t))
	res := e.apply(applyFile(), store.ApplyOptions{})
	wantDiff(t, res.Changes,
		"+ group orders", "+ plan gold", "+ key alice", "+ key partner", "+ authorization alice", "+ authorization partner")
	if len(res.Secrets) != 1 || res.Secrets[0].Name != "alice" || !printable.MatchString(res.Secrets[0].APISecret) ||
		!generatedAPIKey.MatchString(res.Secrets[0].APIKey) {
		t.Fatalf("secrets %+v, want alice's generated credential", res.Secrets)
	}
	alice := e.credential(res.Secrets[0].APIKey)
	if alice.Secret != res.Secrets[0].APISecret || alice.AccessKeyID != res.Secrets[0].ID || alice.Authorization == nil ||
		alice.Authorization.Plan != "gold" || !slices.Equal(alice.Authorization.Bindings, []store.Binding{{Group: "orders", Environment: "prod"}}) {
		t.Fatalf("alice's credential %+v", alice)
	}
	partner := e.credential("PARTNER-AK")
	if partner.Secret != "partner secret" || partner.Authorization == nil || partner.Authorization.Bindings[0].Environment != store.AnyEnvironment {
		t.Fatalf("partner's credential %+v", partner)
	}
	announced := map[string]bool{}
	for _, c := range collect(t, feed, 1) {
		for _, k := range c.APIKeys {
			announced[k] = true
		}
	}
	if !announced["PARTNER-AK"] || !announced[alice.APIKey] {
		t.Errorf("the change feed announced %v, want both keys", announced)
	}
	g := get(e.s.GetGroup(e.ctx, "orders")).must(t)
	if g.Description != "Orders" || !slices.Equal(g.Environments, []string{"prod"}) {
		t.Errorf("group %+v", g)
	}
	audit := e.audit()
	// One write: the records share its time, so their order is the random suffix's.
	if len(audit) != 7 || !slices.ContainsFunc(audit, func(r store.AuditRecord) bool {
		return r.Action == "store.apply" && r.Target == "6 created, 0 changed, 0 deleted"
	}) {
		t.Errorf("audit %+v, want one record per entry and store.apply", audit)
	}
	for _, r := range audit {
		if strings.Contains(r.Target, "partner secret") || strings.Contains(r.Target, alice.Secret) {
			t.Fatalf("a secret is in the audit record %+v", r)
		}
	}

	before := snapshot(t, e)
	again := e.apply(applyFile(), store.ApplyOptions{})
	wantDiff(t, again.Changes)
	if len(again.Secrets) != 0 {
		t.Errorf("second apply answered secrets %+v", again.Secrets)
	}
	if after := snapshot(t, e); after != before {
		t.Fatalf("a second apply of the same file wrote:\nbefore %s\nafter  %s", before, after)
	}
	if e.credential(alice.APIKey).Secret != alice.Secret {
		t.Fatal("a second apply changed the generated key's secret")
	}
}

// testApplyChanges changes entries: the diff names the fields, an imported
// secret is replaced only when it differs, and a dry run writes nothing.
func testApplyChanges(t *testing.T, newBackend func(t *testing.T) store.Backend) {
	e := newEnv(t, newBackend)
	e.apply(applyFile(), store.ApplyOptions{})
	d := applyFile()
	d.Groups[0].Environments = append(d.Groups[0].Environments, "test")
	d.Plans[0].Burst = 5
	d.Keys[0].Enabled = ptr(false)
	d.Keys[1].APISecret = "new partner secret"
	d.Authorizations[0].Bindings = append(d.Authorizations[0].Bindings, store.Binding{Group: "orders", Environment: "test"})
	d.Authorizations[1].Plan = "gold"
	d.Authorizations[1].AllowedIPs = []string{"192.0.2.0/24"}
	want := []string{"~ group orders (environments)", "~ plan gold (burst)", "~ key alice (enabled)",
		"~ key partner (api_secret)", "~ authorization alice (bindings)", "~ authorization partner (allowed_ips, plan)"}

	before := snapshot(t, e)
	dry := e.apply(d, store.ApplyOptions{DryRun: true})
	wantDiff(t, dry.Changes, want...)
	if !dry.DryRun || len(dry.Secrets) != 0 {
		t.Errorf("dry run answered %+v", dry)
	}
	if after := snapshot(t, e); after != before {
		t.Fatalf("a dry run wrote:\nbefore %s\nafter  %s", before, after)
	}

	wantDiff(t, e.apply(d, store.ApplyOptions{}).Changes, want...)
	if c := e.credential("PARTNER-AK"); c.Secret != "new partner secret" || c.Authorization.Plan != "gold" {
		t.Errorf("partner after the change: %+v", c)
	}
	wantDiff(t, e.apply(d, store.ApplyOptions{}).Changes)

	// A new api_key for an imported key moves its credential; its
	// authorization follows though the file leaves it out.
	d.Keys[1].APIKey = "PARTNER-AK2"
	d.Authorizations = d.Authorizations[:1]
	wantDiff(t, e.apply(d, store.ApplyOptions{}).Changes, "~ key partner (api_key)")
	if _, err := e.s.LoadCredential(e.ctx, "PARTNER-AK"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the old api_key still loads: %v", err)
	}
	if c := e.credential("PARTNER-AK2"); c.Secret != "new partner secret" || c.Authorization == nil || c.Authorization.Plan != "gold" {
		t.Errorf("partner under its new api_key: %+v", c)
	}
	auths := page(e.s.ListAuthorizations(e.ctx, store.AuthorizationFilter{}, store.Page{})).must(t)
	for _, a := range auths {
		if a.AccessKeyID == e.credential("PARTNER-AK2").AccessKeyID && a.APIKey != "PARTNER-AK2" {
			t.Errorf("partner's authorization still says api_key %s", a.APIKey)
		}
	}
}

// testApplyRefusesBadFiles: a file naming a missing group, plan or key, or
// contradicting the store, is refused with the path of the bad entry, and
// nothing is written.
func testApplyRefusesBadFiles(t *testing.T, newBackend func(t *testing.T) store.Backend) {
	e := newEnv(t, newBackend)
	e.apply(applyFile(), store.ApplyOptions{})
	e.key("stored")
	for _, tc := range []struct {
		name   string
		change func(d *store.DesiredState)
		field  string
		says   string
	}{
		{"missing group", func(d *store.DesiredState) {
			d.Authorizations[1].Bindings = append(d.Authorizations[1].Bindings, store.Binding{Group: "pay"})
		}, "authorizations[1].bindings[1].group", `group "pay" is neither in the file nor in the store`},
		{"missing binding plan", func(d *store.DesiredState) {
			d.Authorizations[0].Bindings[0].Plan = "silver"
		}, "authorizations[0].bindings[0].plan", `plan "silver" is neither in the file nor in the store`},
		{"missing plan", func(d *store.DesiredState) { d.Authorizations[1].Plan = "silver" },
			"authorizations[1].plan", `plan "silver"`},
		{"missing key name", func(d *store.DesiredState) { d.Authorizations[0].Key = "bob" },
			"authorizations[0].key", `access key "bob" is neither in the file nor in the store`},
		{"missing key id", func(d *store.DesiredState) {
			d.Authorizations[0].Key, d.Authorizations[0].AccessKeyID = "", "ak-missing"
		}, "authorizations[0].access_key_id", `"ak-missing" is not in the store`},
		{"missing api_key", func(d *store.DesiredState) { d.Authorizations[1].APIKey = "NOPE" },
			"authorizations[1].api_key", `api_key "NOPE"`},
		{"two authorizations of a key", func(d *store.DesiredState) {
			d.Authorizations = append(d.Authorizations, store.DesiredAuthorization{Key: "partner"})
		}, "authorizations[2]", "second authorization"},
		{"no key named", func(d *store.DesiredState) { d.Authorizations[0].Key = "" },
			"authorizations[0]", "exactly one of key"},
		{"two keys named", func(d *store.DesiredState) { d.Authorizations[0].APIKey = "PARTNER-AK" },
			"authorizations[0]", "exactly one of key"},
		{"duplicate key", func(d *store.DesiredState) { d.Keys = append(d.Keys, store.DesiredKey{Name: "alice"}) },
			"keys[2].name", "appears twice"},
		{"secret without api_key", func(d *store.DesiredState) { d.Keys[0].APISecret = "s" },
			"keys[0].api_secret", "only with api_key"},
		{"api_key without secret", func(d *store.DesiredState) { d.Keys[1].APISecret = "" },
			"keys[1].api_secret", "required"},
		{"generated key made imported", func(d *store.DesiredState) {
			d.Keys[0].APIKey, d.Keys[0].APISecret = "ALICE-AK", "s"
		}, "keys[0].api_key", "exists as a generated key"},
		{"imported key made generated", func(d *store.DesiredState) {
			d.Keys[1].APIKey, d.Keys[1].APISecret = "", ""
			d.Authorizations[1].APIKey, d.Authorizations[1].Key = "", "partner"
		}, "keys[1].api_key", "exists as an imported key"},
		{"api_key of another key", func(d *store.DesiredState) {
			d.Keys = append(d.Keys, store.DesiredKey{Name: "thief", APIKey: e.credentialOf("stored").APIKey, APISecret: "s"})
		}, "keys[2].api_key", `api_key of access key "stored"`},
		{"bad group name", func(d *store.DesiredState) { d.Groups[0].Name = "Orders" }, "groups[0].name", "not a valid group name"},
		{"bad environment", func(d *store.DesiredState) { d.Groups[0].Environments = []string{"a b"} },
			"groups[0].environments[0]", "not a valid environment"},
		{"bad plan", func(d *store.DesiredState) { d.Plans[0].Rate = nil }, "plans[0].rate", "needs a rate"},
		{"bad binding", func(d *store.DesiredState) { d.Authorizations[0].Bindings[0].Environment = "a b" },
			"authorizations[0].bindings[0].environment", "not a valid environment"},
		{"bad ip", func(d *store.DesiredState) { d.Authorizations[0].AllowedIPs = []string{"x"} },
			"authorizations[0].allowed_ips[0]", "not an IP address"},
	} {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			d := applyFile()
			d.Groups[0].Description = "a change that must not land"
			tc.change(&d)
			before := snapshot(t, e)
			for _, dryRun := range []bool{true, false} {
				_, err := e.s.Apply(e.ctx, d, store.ApplyOptions{DryRun: dryRun, Prune: true}, actor)
				wantInvalid(t, err, tc.field)
				if !strings.Contains(err.Error(), tc.says) {
					t.Errorf("error %q does not say %q", err, tc.says)
				}
			}
			if after := snapshot(t, e); after != before {
				t.Fatalf("a refused apply wrote:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

func (e *env) credentialOf(name string) store.AccessKey {
	e.t.Helper()
	keys := page(e.s.ListKeys(e.ctx, store.KeyFilter{Name: name}, store.Page{})).must(e.t)
	if len(keys) != 1 {
		e.t.Fatalf("no key named %s", name)
	}
	return keys[0]
}

// testApplyPrune: without prune an apply leaves what the file does not
// name; with prune it deletes it, except what the file refers to.
func testApplyPrune(t *testing.T, newBackend func(t *testing.T) store.Backend) {
	e := newEnv(t, newBackend)
	e.apply(applyFile(), store.ApplyOptions{})
	e.group("old-group")
	e.group("bound-group")
	get(e.s.CreatePlan(e.ctx, store.NewPlan{Name: "old-plan", Quota: quota(5, store.PeriodDay)}, actor)).must(t)
	old := e.key("old-key")
	e.authorize(old.ID, store.Binding{Group: "orders"})
	stored := e.key("stored-key") // named by access_key_id only

	d := applyFile()
	d.Authorizations = append(d.Authorizations, store.DesiredAuthorization{NewAuthorization: store.NewAuthorization{
		AccessKeyID: stored.ID, Bindings: []store.Binding{{Group: "bound-group"}},
	}})
	res := e.apply(d, store.ApplyOptions{})
	wantDiff(t, res.Changes, "+ authorization stored-key")

	before := snapshot(t, e)
	want := []string{"- authorization old-key", "- key old-key", "- plan old-plan", "- group old-group"}
	wantDiff(t, e.apply(d, store.ApplyOptions{Prune: true, DryRun: true}).Changes, want...)
	if after := snapshot(t, e); after != before {
		t.Fatal("a dry run with prune wrote")
	}
	wantDiff(t, e.apply(d, store.ApplyOptions{Prune: true}).Changes, want...)
	if _, err := e.s.GetKey(e.ctx, old.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("pruned key: %v", err)
	}
	if _, err := e.s.LoadCredential(e.ctx, old.APIKey); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("pruned key's credential: %v", err)
	}
	for _, name := range []string{"old-group", "old-plan"} {
		_, errGroup := e.s.GetGroup(e.ctx, name)
		_, errPlan := e.s.GetPlan(e.ctx, name)
		if errGroup == nil || errPlan == nil {
			t.Errorf("%s survived the prune", name)
		}
	}
	for _, name := range []string{"orders", "bound-group"} {
		get(e.s.GetGroup(e.ctx, name)).must(t)
	}
	if auths := page(e.s.GroupAuthorizations(e.ctx, "orders", store.Page{})).must(t); len(auths) != 2 {
		t.Errorf("orders has %d authorizations after the prune, want alice's and partner's", len(auths))
	}
	get(e.s.GetKey(e.ctx, stored.ID)).must(t)
	wantDiff(t, e.apply(d, store.ApplyOptions{Prune: true}).Changes)
}

// testApplyConcurrent applies one file from several writers at once: one
// of them creates the generated key and gets its secret, the others find
// nothing left to do.
func testApplyConcurrent(t *testing.T, newBackend func(t *testing.T) store.Backend) {
	e := newEnv(t, newBackend)
	const writers = 4
	results := make([]store.ApplyResult, writers)
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() { results[i], errs[i] = e.s.Apply(e.ctx, applyFile(), store.ApplyOptions{}, actor) })
	}
	wg.Wait()
	secrets, creators := 0, 0
	for i := range writers {
		noErr(t, errs[i])
		secrets += len(results[i].Secrets)
		if len(results[i].Changes) > 0 {
			creators++
		}
	}
	if secrets != 1 || creators != 1 {
		t.Fatalf("%d writers answered secrets %d times and changes %d times, want once each", writers, secrets, creators)
	}
	if keys := page(e.s.ListKeys(e.ctx, store.KeyFilter{}, store.Page{})).must(t); len(keys) != 2 {
		t.Fatalf("%d keys after concurrent applies, want 2", len(keys))
	}
}

// ManyKeys is a desired state of n generated keys, each with an
// authorization bound to the group orders: the load of the apply
// benchmarks.
func ManyKeys(n int) store.DesiredState {
	d := store.DesiredState{Groups: []store.DesiredGroup{{Name: "orders"}}}
	for i := range n {
		name := fmt.Sprintf("caller-%04d", i)
		d.Keys = append(d.Keys, store.DesiredKey{Name: name})
		d.Authorizations = append(d.Authorizations, store.DesiredAuthorization{Key: name, NewAuthorization: store.NewAuthorization{Bindings: []store.Binding{{Group: "orders"}}}})
	}
	return d
}
