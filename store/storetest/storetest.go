// Package storetest is the conformance suite of store.Backend engines: it
// runs every rule of store.Store over a backend and checks the results, so
// the embedded and the Redis engine are held to the same behavior.
package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accessauth/caddy-access-auth/store"
)

// Run runs the suite. newBackend returns a new, empty backend for one test
// and closes it in t.Cleanup. Subscribe of the backend must deliver every
// change committed after it returns.
func Run(t *testing.T, newBackend func(t *testing.T) store.Backend) {
	tests := []struct {
		name string
		fn   func(t *testing.T, newBackend func(t *testing.T) store.Backend)
	}{
		{"GeneratedKey", testGeneratedKey},
		{"ImportedKey", testImportedKey},
		{"KeyValidation", testKeyValidation},
		{"KeyNamesUnique", testKeyNamesUnique},
		{"UpdateKey", testUpdateKey},
		{"ResetKeyGrace", testResetKeyGrace},
		{"DeleteKeyInUse", testDeleteKeyInUse},
		{"AuthorizationRules", testAuthorizationRules},
		{"AuthorizationValidation", testAuthorizationValidation},
		{"BindUnbind", testBindUnbind},
		{"Plans", testPlans},
		{"PlanValidation", testPlanValidation},
		{"PlanAttach", testPlanAttach},
		{"PlanChangeFeed", testPlanChangeFeed},
		{"PlanExportImport", testPlanExportImport},
		{"Groups", testGroups},
		{"RegisterGroup", testRegisterGroup},
		{"DeleteGroup", testDeleteGroup},
		{"CredentialRecompiled", testCredentialRecompiled},
		{"Audit", testAudit},
		{"AuditRetention", testAuditRetention},
		{"Paging", testPaging},
		{"ListFilters", testListFilters},
		{"KeySearch", testKeySearch},
		{"ExportImport", testExportImport},
		{"ImportConflicts", testImportConflicts},
		{"ImportStream", testImportStream},
		{"ImportStreamErrors", testImportStreamErrors},
		{"ImportRecordLimit", testImportRecordLimit},
		{"ImportStreamPartial", testImportStreamPartial},
		{"SecretsSealedAtRest", testSecretsSealedAtRest},
		{"MasterKeyRotation", testMasterKeyRotation},
		{"CheckMasterKeys", testCheckMasterKeys},
		{"MarkUsed", testMarkUsed},
		{"ChangeFeed", testChangeFeed},
		{"ChangeCarriesCommitTime", testChangeCarriesCommitTime},
		{"Apply", testApply},
		{"ApplyChanges", testApplyChanges},
		{"ApplyRefusesBadFiles", testApplyRefusesBadFiles},
		{"ApplyPrune", testApplyPrune},
		{"ApplyConcurrent", testApplyConcurrent},
		{"Atomicity", testAtomicity},
		{"ConcurrentCreate", testConcurrentCreate},
		{"Counters", testCounters},
		{"ConcurrentCounts", testConcurrentCounts},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, newBackend) })
	}
}

// Master keys of the suite.
var (
	masterKey1 = bytes.Repeat([]byte{0x11}, store.MasterKeySize)
	masterKey2 = bytes.Repeat([]byte{0x22}, store.MasterKeySize)
)

var actor = store.Actor{Name: "tester", RemoteAddr: "192.0.2.7:5555"}

// Clock is a test clock that moves one millisecond at every reading, so
// that records written one after the other have distinct times.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock at a fixed date.
func NewClock() *Clock {
	return &Clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

// Now returns the time and moves the clock on by a millisecond.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(time.Millisecond)
	return c.now
}

// Advance moves the clock by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// env is one test's store.
type env struct {
	t       *testing.T
	ctx     context.Context
	backend store.Backend
	clock   *Clock
	s       *store.Store
}

func newEnv(t *testing.T, newBackend func(t *testing.T) store.Backend) *env {
	t.Helper()
	e := &env{t: t, ctx: context.Background(), backend: newBackend(t), clock: NewClock()}
	e.s = e.open(masterKey1)
	return e
}

// open returns another Store over the env's backend.
func (e *env) open(masterKeys ...[]byte) *store.Store {
	e.t.Helper()
	s, err := store.Open(e.backend, store.Options{MasterKeys: masterKeys, Now: e.clock.Now})
	if err != nil {
		e.t.Fatalf("Open: %v", err)
	}
	return s
}

// result holds an answer until must checks it: get(f()).must(t).
type result[T any] struct {
	v   T
	err error
}

func get[T any](v T, err error) result[T] { return result[T]{v, err} }

func (r result[T]) must(t *testing.T) T {
	t.Helper()
	if r.err != nil {
		t.Fatalf("unexpected error: %v", r.err)
	}
	return r.v
}

func noErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
}

func (e *env) key(name string) store.AccessKey {
	e.t.Helper()
	return get(e.s.CreateKey(e.ctx, store.NewKey{Name: name}, actor)).must(e.t)
}

func (e *env) group(name string) store.Group {
	e.t.Helper()
	return get(e.s.CreateGroup(e.ctx, store.Group{Name: name}, actor)).must(e.t)
}

func (e *env) authorize(keyID string, bindings ...store.Binding) store.Authorization {
	e.t.Helper()
	return get(e.s.CreateAuthorization(e.ctx, store.NewAuthorization{AccessKeyID: keyID, Bindings: bindings}, actor)).must(e.t)
}

func (e *env) credential(apiKey string) *store.Credential {
	e.t.Helper()
	return get(e.s.LoadCredential(e.ctx, apiKey)).must(e.t)
}

func (e *env) audit() []store.AuditRecord {
	e.t.Helper()
	records, _, err := e.s.ListAudit(e.ctx, store.Page{Limit: store.MaxPageLimit})
	if err != nil {
		e.t.Fatalf("ListAudit: %v", err)
	}
	return records
}

func wantErr(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error = %v, want %v", err, want)
	}
}

func wantInvalid(t *testing.T, err error, field string) {
	t.Helper()
	var invalid *store.InvalidArgumentError
	if !errors.As(err, &invalid) {
		t.Fatalf("error = %v, want InvalidArgumentError for %s", err, field)
	}
	if invalid.Field != field {
		t.Fatalf("error names field %q (%v), want %q", invalid.Field, err, field)
	}
}

var (
	generatedAPIKey = regexp.MustCompile(`^[0-9A-F]{32}$`)
	printable       = regexp.MustCompile(`^[\x21-\x7e]+$`)
)

func testGeneratedKey(t *testing.T, newBackend func(t *testing.T) store.Backend) {
	e := newEnv(t, newBackend)
	expires := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	k := get(e.s.CreateKey(e.ctx, store.NewKey{Name: "caller", Description: "d", ExpiresAt: &expires}, actor)).must(t)
	if !strings.HasPrefix(k.ID, "ak-") || !regexp.MustCompile(`^[A-Za-z0-9_-]+$`).MatchString(k.ID) {
		t.Errorf("id %q: want ak-… url-safe", k.ID)
	}
	if !generatedAPIKey.MatchString(k.APIKey) {
		t.Errorf("api_key %q: want 32 upper-case hex", k.APIKey)
	}
	// 256 bits in a printable alphabet need at least 43 characters (base64).
	if len(k.APISecret) < 43 || !printable.MatchString(k.APISecret) {
		t.Errorf("api_secret %q: want >= 256 random bits, printable", k.APISecret)
	}
	if k.Kind != store.KindGenerated || !k.Enabled || k.Name != "caller" || k.Description != "d" {
		t.Errorf("created key %+v", k)
	}
	if k.ExpiresAt == nil || !k.ExpiresAt.Equal(expires) || k.CreatedAt.IsZero() || !k.UpdatedAt.Equal(k.CreatedAt) {
		t.Errorf("times of created key %+v", k)
	}
	got := get(e.s.GetKey(e.ctx, k.ID)).must(t)
	if got.APISecret != "" {
		t.Error("GetKey returned the secret")
	}
	k.APISecret = ""
	if !equalJSON(got, k) {
		t.Errorf("GetKey = %+v, want %+v", got, k)
	}
	other := e.key("other")
	if other.ID == k.ID || other.APIKey == k.APIKey || other.APISecret == k.APISecret {
		t.Error("two keys share an id, api_key or secret")
	}
	cred := e.credential(other.APIKey)
	if cred.AccessKeyID != other.ID || cred.Secret != other.APISecret || !cred.Enabled || cred.Authorization != nil {
		t.Errorf("credential %+v", cred)
	}
	_, err := e.s.GetKey(e.ctx, "ak-missing")
	wantErr(t, err, store.ErrNotFound)
	_, err = e.s.LoadCredential(e.ctx, "UNKNOWN")
	wantErr(t, err, store.ErrNotFound)
}

func testImportedKey(t *testing.T, newBackend func(t *testing.T) store.Backend) {
	e := newEnv(t, newBackend)
	k := get(e.s.CreateKey(e.ctx, store.NewKey{Name: "jd", Kind: store.KindImported, APIKey: "JDC_AK_1", APISecret: "secret with spaces ~!"}, actor)).must(t)
	if k.Kind != store.KindImported || k.APIKey != "JDC_AK_1" || k.APISecret != "secret with spaces ~!" {
		t.Errorf("imported key %+v", k)
	}
	if cred := e.credential("JDC_AK_1"); cred.Secret != "secret with spaces ~!" {
		t.Errorf("credential secret %q", cred.Secret)
	}
	_, err := e.s.CreateKey(e.ctx, store.NewKey{Name: "jd2", Kind: store.KindImported, APIKey: "JDC_AK_1", APISecret: "x"}, actor)
	wantErr(t, err, store.ErrNameTaken)
	_, err = e.s.ResetKey(e.ctx, k.ID, 0, actor)
	wantInvalid(t, err, "kind")
}

func testKeyValidation(t *testing.T, newBackend func(t *testing.T) store.Backend) {
	e := newEnv(t, newBackend)
	for _, tt := range []struct {
		key   store.NewKey
		field string
	}{
		{store.NewKey{}, "name"},
		{store.NewKey{Name: "   "}, "name"},
		{store.NewKey{Name: "a\x00b"}, "name"},
		{store.NewKey{Name: "al\u200bice"}, "name"},          // zero-width space
		{store.NewKey{Name: "invoice\u202efdp.exe"}, "name"}, // right-to-left override
		{store.NewKey{Name: "\ufeffbob"}, "name"},            // byte order mark
		{store.NewKey{Name: strings.Repeat("n", 129)}, "name"},
		{store.NewKey{Name: "k", Description: strings.Repeat("d", 1025)}, "description"},
		{store.NewKey{Name: "k", Kind: "other"}, "kind"},
		{store.NewKey{Name: "k", APIKey: "AK"}, "api_key"},
		{store.NewKey{Name: "k", APISecret: "SK"}, "api_secret"},
		{store.NewKey{Name: "k", Kind: store.KindImported, APISecret: "SK"}, "api_key"},
		{store.NewKey{Name: "k", Kind: store.KindImported, APIKey: "A K", APISecret: "SK"}, "api_key"},
		{store.NewKey{Name: "k", Kind: store.KindImported, APIKey: "AKé", APISecret: "SK"}, "api_key"},
		{store.NewKey{Name: "k", Kind: store.KindImported, APIKey: "AK"}, "api_secret"},
		{store.NewKey{Name: "k", Kind: store.KindImported, APIKey: "AK", APISecret: "S\nK"}, "api_secret"},
	} {
		_, err := e.s.CreateKey(e.ctx, tt.key, actor)
		wantInvalid(t, err, tt.field)
	}
	if keys := page(e.s.ListKeys(e.ctx, store.KeyFilter{}, store.Page{})).must(t); len(keys) != 0 {
		t.Errorf("invalid creates left %d keys", len(keys))
	}
}

// page drops the cursor of a list answer: page(s.ListKeys(…)).must(t).
func page[T any](items []T, _ string, err error) result[[]T] { return result[[]T]{items, err} }

func testKeyNamesUnique(t *testing.T, newBackend func(t *testing.T) store.Backend) {
	e := newEnv(t, newBackend)
	a, b := e.key("a"), e.key("b")
	_, err := e.s.CreateKey(e.ctx, store.NewKey{Name: "a"}, actor)
	wantErr(t, err, store.ErrNameTaken)
	_, err = e.s.UpdateKey(e.ctx, b.ID, store.KeyPatch{Name: set("a")}, actor)
	wantErr(t, err, store.ErrNameTaken)
	get(e.s.UpdateKey(e.ctx, a.ID, store.KeyPatch{Name: set("c")}, actor)).must(t)
	get(e.s.UpdateKey(e.ctx, b.ID, store.KeyPatch{Name: set("a")}, actor)).must(t) // freed
	get(e.s.UpdateKey(e.ctx, b.ID, store.KeyPatch{Name: set("a")}, actor)).must(t) // same name
	e.key("b")
	_, err = e.s.CreateKey(e.ctx, store.NewKey{Name: "c"}, actor)
	wantErr(t, err, store.ErrNameTaken)
}

func set[T any](v T) store.Optional[T] { return store.Optional[T]{Set: true, Value: &v} }

func null[T any]() store.Optional[T] { return store.Optional[T]{Set: true} }

func testUpdateKey(t *testing.T, newBackend func(t *testing.T) store.Backend) {
	e := newEnv(t, newBackend)
	k := e.key("k")
	expires := time.Date(2031, 2, 3, 4, 5, 6, 0, time.UTC)
	u := get(e.s.UpdateKey(e.ctx, k.ID, store.KeyPatch{Description: set("new"), Enabled: set(false), ExpiresAt: set(expires)}, actor)).must(t)
	if u.Description != "new" || u.Enabled || u.ExpiresAt == nil || !u.ExpiresAt.Equal(expires) || u.Name != "k" || !u.UpdatedAt.After(k.UpdatedAt) {
		t.Errorf("updated key %+v", u)
	}
	if !equalJSON(get(e.s.GetKey(e.ctx, k.ID)).must(t), u) {
		t.Error("GetKey differs from the update's answer")
	}
	u = get(e.s.UpdateKey(e.ctx, k.ID, store.KeyPatch{Description: null[string](), ExpiresAt: null[time.Time]()}, actor)).must(t)
	if u.Description != "" || u.ExpiresAt != nil || u.Enabled {
		t.Errorf("after nulls %+v", u)
	}
	_, err := e.s.UpdateKey(e.ctx, k.ID, store.KeyPatch{Enabled: null[bool]()}, actor)
	wantInvalid(t, err, "enabled")
	_, err = e.s.UpdateKey(e.ctx, k.ID, store.KeyPatch{Name: null[string]()}, actor)
	wantInvalid(t, err, "name")
	_, err = e.s.UpdateKey(e.ctx, "ak-missing", store.KeyPatch{}, actor)
	wantErr(t, err, store.ErrNotFound)
}

func testResetKeyGrace(t *testing.T, newBackend func(t *testing.T) store.Backend) {
	e := newEnv(t, newBackend)
	k := e.key("k")
	r := get(e.s.ResetKey(e.ctx, k.ID, time.Hour, actor)).must(t)
	if r.APISecret == k.APISecret || len(r.APISecret) < 43 || r.APIKey != k.APIKey {
		t.Fatalf("reset key %+v", r)
	}
	if r.SecretRotatedAt == nil || r.PreviousSecretExpiresAt == nil || !r.PreviousSecretExpiresAt.Equal(r.SecretRotatedAt.Add(time.Hour)) {
		t.Errorf("rotation times %v %v", r.SecretRotatedAt, r.PreviousSecretExpiresAt)
	}
	cred := e.credential(k.APIKey)
	if cred.Secret != r.APISecret || cred.PreviousSecret != k.APISecret || !cred.PreviousSecretExpiresAt.Equal(*r.PreviousSecretExpiresAt) {
		t.Errorf("credential in grace: secret ok %v, previous ok %v", cred.Secret == r.APISecret, cred.PreviousSecret == k.APISecret)
	}
	e.clock.Advance(2 * time.Hour)
	if cred := e.credential(k.APIKey); cred.PreviousSecret != "" || cred.Secret != r.APISecret {
		t.Error("previous secret still offered after its grace")
	}
	r2 := get(e.s.ResetKey(e.ctx, k.ID, 0, actor)).must(t)
	if r2.PreviousSecretExpiresAt != nil {
		t.Errorf("grace 0 kept previous_secret_expires_at %v", r2.PreviousSecretExpiresAt)
	}
	if cred := e.credential(k.APIKey); cred.Secret != r2.APISecret || cred.PreviousSecret != "" {
		t.Error("grace 0: old secret still valid")
	}
	_, err := e.s.ResetKey(e.ctx, k.ID, -time.Second, actor)
	wantInvalid(t, err, "grace")
	_, err = e.s.ResetKey(e.ctx, "ak-missing", 0, actor)
	wantErr(t, err, store.ErrNotFound)
}

func testDeleteKeyInUse(t *testing.T, newBackend func(t *testing.T) store.Backend) {
	e := newEnv(t, newBackend)
	k := e.key("k")
	a := e.authorize(k.ID)
	wantErr(t, e.s.DeleteKey(e.ctx, k.ID, actor), store.ErrKeyInUse)
	e.credential(k.APIKey)
	noErr(t, e.s.DeleteAuthorization(e.ctx, a.ID, actor))
	noErr(t, e.s.DeleteKey(e.ctx, k.ID, actor))
	_, err := e.s.GetKey(e.ctx, k.ID)
	wantErr(t, err, store.ErrNotFound)
	_, err = e.s.LoadCredential(e.ctx, k.APIKey)
	wantErr(t, err, store.ErrNotFound)
	wantErr(t, e.s.DeleteKey(e.ctx, k.ID, actor), store.ErrNotFound)
	e.key("k") // the name is free again
}

func testAuthorizationRules(t *testing.T, newBackend func(t *testing.T) store.Backend) {
	e := newEnv(t, newBackend)
	e.group("orders")
	k1, k2 := e.key("k1"), e.key("k2")
	a := e.authorize(k1.ID, store.Binding{Group: "orders"})
	if !strings.HasPrefix(a.ID, "auth-") || a.AccessKeyID != k1.ID || a.APIKey != k1.APIKey || !a.Enabled {
		t.Errorf("authorization %+v", a)
	}
	if want := []store.Binding{{Group: "orders", Environment: store.AnyEnvironment}}; !slices.Equal(a.Bindings, want) {
		t.Errorf("bindings %v, want %v (environment defaults to *)", a.Bindings, want)
	}
	_, err := e.s.CreateAuthorization(e.ctx, store.NewAuthorization{AccessKeyID: k1.ID}, actor)
	wantErr(t, err, store.ErrAuthorizationExists)
	_, err = e.s.CreateAuthorization(e.ctx, store.NewAuthorization{APIKey: k1.APIKey}, actor)
	wantErr(t, err, store.ErrAuthorizationExists)
	_, err = e.s.CreateAuthorization(e.ctx, store.NewAuthorization{AccessKeyID: "ak-missing"}, actor)
	wantErr(t, err, store.ErrNotFound)
	_, err = e.s.CreateAuthorization(e.ctx, store.NewAuthorization{APIKey: "MISSING"}, actor)
	wantErr(t, err, store.ErrNotFound)
	_, err = e.s.CreateAuthorization(e.ctx, store.NewAuthorization{AccessKeyID: k2.ID, APIKey: k1.APIKey}, actor)
	wantInvalid(t, err, "api_key")
	_, err = e.s.CreateAuthorization(e.ctx, store.NewAuthorization{AccessKeyID: k2.ID, Bindings: []store.Binding{{Group: "orders"}, {Group: "typo"}}}, actor)
	wantErr(t, err, store.ErrGroupNotFound)
	if got := page(e.s.ListAuthorizations(e.ctx, store.AuthorizationFilter{AccessKeyID: k2.ID}, store.Page{})).must(t); len(got) != 0 {
		t.Error("a refused create left an authorization")
	}
	if _, err := e.s.GetGroup(e.ctx, "typo"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("binding to a typo created the group: %v", err)
	}
	b := get(e.s.CreateAuthorization(e.ctx, store.NewAuthorization{APIKey: k2.APIKey, Enabled: ptr(false)}, actor)).must(t)
	if b.AccessKeyID != k2.ID || b.Enabled || b.Bindings == nil && len(b.Bindings) != 0 {
		t.Errorf("authorization by api_key %+v", b)
	}
	if got := get(e.s.GetAuthorization(e.ctx, a.ID)).must(t); !equalJSON(got, a) {
		t.Errorf("GetAuthorization = %+v, want %+v", got, a)
	}
	_, err = e.s.GetAuthorization(e.ctx, "auth-missing")
	wantErr(t, err, store.ErrNotFound)
	wantErr(t, e.s.DeleteAuthorization(e.ctx, "auth-missing", actor), store.ErrNotFound)
	noErr(t, e.s.DeleteAuthorization(e.ctx, a.ID, actor))
	if got := page(e.s.GroupAuthorizations(e.ctx, "orders", store.Page{})).must(t); len(got) != 0 {
		t.Errorf("deleted authorization still bound: %v", got)
	}
	e.authorize(k1.ID) // a key may get a new authorization once the old one is gone
}

func ptr[T any](v T) *T { return &v }

func bind(group, environment string) store.Binding {
	return store.Binding{Group: group, Environment: environment}
}

func testAuthorizationValidation(t *testing.T, newBackend func(t *testing.T) store.Backend) {
	e := newEnv(t, newBackend)
	k := e.key("k")
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	until := from.Add(time.Hour)
	for _, tt := range []struct {
		na    store.NewAuthorization
		field string
	}{
		{store.NewAuthorization{}, "access_key_id"},
		{store.NewAuthorization{AccessKeyID: k.ID, AllowedIPs: []string{"10.0.0.0/8", "nope"}}, "allowed_ips[1]"},
		{store.NewAuthorization{AccessKeyID: k.ID, AllowedIPs: []string{"10.0.0.0/33"}}, "allowed_ips[0]"},
		{store.NewAuthorization{AccessKeyID: k.ID, ValidFrom: &until, ValidUntil: &from}, "valid_from"},
		{store.NewAuthorization{AccessKeyID: k.ID, ValidFrom: &from, ValidUntil: &from}, "valid_from"},
		{store.NewAuthorization{AccessKeyID: k.ID, Bindings: []store.Binding{{Group: "Bad"}}}, "bindings[0].group"},
		{store.NewAuthorization{AccessKeyID: k.ID, Bindings: []store.Binding{{Group: "g", Environment: "a b"}}}, "bindings[0].environment"},
		{store.NewAuthorization{AccessKeyID: k.ID, Description: strings.Repeat("d", 1025)}, "description"},
	} {
		_, err := e.s.CreateAuthorization(e.ctx, tt.na, actor)
		wantInvalid(t, err, tt.field)
	}
	a := get(e.s.CreateAuthorization(e.ctx, store.NewAuthorization{
		AccessKeyID: k.ID, ValidFrom: &from, ValidUntil: &until,
		AllowedIPs: []string{"192.0.2.1", "10.1.2.3/8", " 2001:db8::1 ", "2001:db8::/32", "192.0.2.1"},
	}, actor)).must(t)
	if want := []string{"192.0.2.1", "10.0.0.0/8", "2001:db8::1", "2001:db8::/32"}; !slices.Equal(a.AllowedIPs, want) {
		t.Errorf("allowed_ips %v, want %v", a.AllowedIPs, want)
	}
	_, err := e.s.UpdateAuthorization(e.ctx, a.ID, store.AuthorizationPatch{ValidUntil: set(from.Add(-time.Hour))}, actor)
	wantInvalid(t, err, "valid_from")
	_, err = e.s.UpdateAuthorization(e.ctx, a.ID, store.AuthorizationPatch{AllowedIPs: set([]string{"300.1.1.1"})}, actor)
	wantInvalid(t, err, "allowed_ips[0]")
	_, err = e.s.UpdateAuthorization(e.ctx, a.ID, store.AuthorizationPatch{Enabled: null[bool]()}, actor)
	wantInvalid(t, err, "enabled")
	u := get(e.s.UpdateAuthorization(e.ctx, a.ID, store.AuthorizationPatch{
		ValidUntil: null[time.Time](), AllowedIPs: null[[]string](), Description: set("x"), Enabled: set(false),
	}, actor)).must(t)
	if u.ValidUntil != nil || len(u.AllowedIPs) != 0 || u.Description != "x" || u.Enabled || u.ValidFrom == nil {
		t.Errorf("updated authorization %+v", u)
	}
	_, err = e.s.UpdateAuthorization(e.ctx, "auth-missing", store.AuthorizationPatch{}, actor)
	wantErr(t, err, store.ErrNotFound)
}

func testBindUnbind(t *testing.T, newBackend func(t *testing.T) store.Backend) {
	e := newEnv(t, newBackend)
	e.group("orders")
	e.group("users")
	k := e.key("k")
	a := e.authorize(k.ID)
	_, err := e.s.Bind(e.ctx, a.ID, store.Binding{Group: "nope"}, actor)
	wantErr(t, err, store.ErrGroupNotFound)
	_, err = e.s.Bind(e.ctx, "auth-missing", store.Binding{Group: "orders"}, actor)
	wantErr(t, err, store.ErrNotFound)
	_, err = e.s.Bind(e.ctx, a.ID, store.Binding{Group: "BAD"}, actor)
	wantInvalid(t, err, "binding[0].group")
	get(e.s.Bind(e.ctx, a.ID, store.Binding{Group: "orders", Environment: "online"}, actor)).must(t)
	b := get(e.s.Bind(e.ctx, a.ID, store.Binding{Group: "orders", Environment: "online"}, actor)).must(t) // idempotent
	b = get(e.s.Bind(e.ctx, a.ID, store.Binding{Group: "users"}, actor)).must(t)
	b = get(e.s.Bind(e.ctx, a.ID, store.Binding{Group: "orders", Environment: "test"}, actor)).must(t)
	want := []store.Binding{bind("orders", "online"), bind("orders", "test"), bind("users", "*")}
	if !slices.Equal(b.Bindings, want) {
		t.Fatalf("bindings %v, want %v", b.Bindings, want)
	}
	if got := get(e.s.KeyGroups(e.ctx, k.ID)).must(t); !slices.Equal(got, want) {
		t.Errorf("KeyGroups %v, want %v", got, want)
	}
	if g := get(e.s.GetGroup(e.ctx, "orders")).must(t); !slices.Equal(g.Environments, []string{"online", "test"}) {
		t.Errorf("group environments %v: want the ones seen in bindings", g.Environments)
	}
	if g := get(e.s.GetGroup(e.ctx, "users")).must(t); len(g.Environments) != 0 {
		t.Errorf("* listed as an environment: %v", g.Environments)
	}
	if got := e.credential(k.APIKey).Authorization.Bindings; !slices.Equal(got, want) {
		t.Errorf("credential bindings %v", got)
	}
	_, err = e.s.Unbind(e.ctx, a.ID, store.Binding{Group: "users", Environment: "online"}, actor)
	wantErr(t, err, store.ErrNotFound)
	b = get(e.s.Unbind(e.ctx, a.ID, store.Binding{Group: "orders", Environment: "test"}, actor)).must(t)
	if want := []store.Binding{bind("orders", "online"), bind("users", "*")}; !slices.Equal(b.Bindings, want) {
		t.Errorf("after unbind %v, want %v", b.Bindings, want)
	}
	b = get(e.s.Unbind(e.ctx, a.ID, store.Binding{Group: "orders"}, actor)).must(t) // every environment
	if want := []store.Binding{bind("users", "*")}; !slices.Equal(b.Bindings, want) {
		t.Errorf("after unbind of every environment %v, want %v", b.Bindings, want)
	}
	if got := page(e.s.GroupAuthorizations(e.ctx, "orders", store.Page{})).must(t); len(got) != 0 {
		t.Errorf("orders still lists %v", got)
	}
	if got := page(e.s.GroupAuthorizations(e.ctx, "users", store.Page{})).must(t); len(got) != 1 || got[0].ID != a.ID {
		t.Errorf("users lists %v", got)
	}
	if got := e.credential(k.APIKey).Authorization.Bindings; !slices.Equal(got, b.Bindings) {
		t.Errorf("credential bindings %v", got)
	}
	other := e.key("other")
	if got := get(e.s.KeyGroups(e.ctx, other.ID)).must(t); got == nil || len(got) != 0 {
		t.Errorf("KeyGroups without authorization = %#v, want empty", got)
	}
	_, err = e.s.KeyGroups(e.ctx, "ak-missing")
	wantErr(t, err, store.ErrNotFound)

	// The caller's view lists what the key may call now: nothing while the
	// authorization or the key is switched off or out of its window.
	off, on := false, true
	groupsNow := func(step string, want int) {
		t.Helper()
		if got := get(e.s.KeyGroups(e.ctx, k.ID)).must(t); len(got) != want {
			t.Errorf("%s: KeyGroups %v, want %d bindings", step, got, want)
		}
	}
	get(e.s.UpdateAuthorization(e.ctx, a.ID, store.AuthorizationPatch{Enabled: store.Optional[bool]{Set: true, Value: &off}}, actor)).must(t)
	groupsNow("authorization disabled", 0)
	get(e.s.UpdateAuthorization(e.ctx, a.ID, store.AuthorizationPatch{Enabled: store.Optional[bool]{Set: true, Value: &on}}, actor)).must(t)
	groupsNow("authorization enabled again", 1)
	later := e.clock.Now().Add(time.Hour)
	get(e.s.UpdateAuthorization(e.ctx, a.ID, store.AuthorizationPatch{ValidFrom: store.Optional[time.Time]{Set: true, Value: &later}}, actor)).must(t)
	groupsNow("authorization not yet valid", 0)
	e.clock.Advance(2 * time.Hour)
	groupsNow("authorization valid", 1)
	get(e.s.UpdateKey(e.ctx, k.ID, store.KeyPatch{Enabled: store.Optional[bool]{Set: true, Value: &off}}, actor)).must(t)
	groupsNow("key disabled", 0)
}

func testGroups(t *testing.T, newBackend func(t *testing.T) store.Backend) {
	e := newEnv(t, newBackend)
	for _, name := range []string{"a", "0", "orders-v2", "my_group", strings.Repeat("x", 64)} {
		if _, err := e.s.CreateGroup(e.ctx, store.Group{Name: name}, actor); err != nil {
			t.Errorf("CreateGroup(%q): %v", name, err)
		}
	}
	for _, name := range []string{"", "A", "-a", "_a", "a b", "a.b", "ä", strings.Repeat("x", 65)} {
		_, err := e.s.CreateGroup(e.ctx, store.Group{Name: name}, actor)
		wantInvalid(t, err, "name")
	}
	_, err := e.s.CreateGroup(e.ctx, store.Group{Name: "a"}, actor)
	wantErr(t, err, store.ErrNameTaken)
	g := get(e.s.CreateGroup(e.ctx, store.Group{Name: "declared", Description: "d", Environments: []string{"test", "online", "test", "*"}, Configured: true}, actor)).must(t)
	if !slices.Equal(g.Environments, []string{"online", "test"}) || g.Configured || g.Description != "d" || g.CreatedAt.IsZero() {
		t.Errorf("created group %+v", g)
	}
	if got := get(e.s.GetGroup(e.ctx, "declared")).must(t); !equalJSON(got, g) {
		t.Errorf("GetGroup = %+v, want %+v", got, g)
	}
	_, err = e.s.GetGroup(e.ctx, "missing")
	wantErr(t, err, store.ErrNotFound)
	_, _, err = e.s.GroupAuthorizations(e.ctx, "missing", store.Page{})
	wantErr(t, err, store.ErrNotFound)
	wantErr(t, e.s.DeleteGroup(e.ctx, "missing", actor), store.ErrNotFound)
}

func testRegisterGroup(t *testing.T, newBackend func(t *testing.T) store.Backend) {
	e := newEnv(t, newBackend)
	noErr(t, e.s.RegisterGroup(e.ctx, "orders", "online"))
	noErr(t, e.s.RegisterGroup(e.ctx, "orders", "test"))
	audits := len(e.audit())
	for range 3 {
		noErr(t, e.s.RegisterGroup(e.ctx, "orders", "online"))
		noErr(t, e.s.RegisterGroup(e.ctx, "orders", ""))
	}
	if got := len(e.audit()); got != audits {
		t.Errorf("registering known groups wrote %d audit records", got-audits)
	}
	g := get(e.s.GetGroup(e.ctx, "orders")).must(t)
	if !slices.Equal(g.Environments, []string{"online", "test"}) {
		t.Errorf("environments %v", g.Environments)
	}
	if records := e.audit(); len(records) != 2 || records[0].Actor != store.RouteActor || records[1].Action != "group.register" {
		t.Errorf("audit %+v", records)
	}
	wantInvalid(t, e.s.RegisterGroup(e.ctx, "Orders", "online"), "group")
	wantInvalid(t, e.s.RegisterGroup(e.ctx, "orders", "bad env"), "environment")
	noErr(t, e.s.RegisterGroup(e.ctx, "bare", ""))
	if g := get(e.s.GetGroup(e.ctx, "bare")).must(t); len(g.Environments) != 0 {
		t.Errorf("bare group environments %v", g.Environments)
	}
}

func testDeleteGroup(t *testing.T, newBackend func(t *testing.T) store.Backend) {
	e := newEnv(t, newBackend)
	e.group("orders")
	e.group("orders-v2") // its index entries sort right after those of orders
	k1, k2, k3 := e.key("k1"), e.key("k2"), e.key("k3")
	a1 := e.authorize(k1.ID, store.Binding{Group: "orders"}, store.Binding{Group: "orders-v2"})
	a2 := e.authorize(k2.ID, store.Binding{Group: "orders", Environment: "online"}, store.Binding{Group: "orders", Environment: "test"})
	a3 := e.authorize(k3.ID, store.Binding{Group: "orders-v2"})
	noErr(t, e.s.DeleteGroup(e.ctx, "orders", actor))
	if got := get(e.s.GetAuthorization(e.ctx, a1.ID)).must(t); !slices.Equal(got.Bindings, []store.Binding{bind("orders-v2", "*")}) {
		t.Errorf("a1 bindings %v", got.Bindings)
	}
	if got := get(e.s.GetAuthorization(e.ctx, a2.ID)).must(t); len(got.Bindings) != 0 {
		t.Errorf("a2 bindings %v", got.Bindings)
	}
	if got := e.credential(k2.APIKey).Authorization; got == nil || len(got.Bindings) != 0 {
		t.Errorf("credential of k2 not recompiled: %+v", got)
	}
	if got := e.credential(k1.APIKey).Authorization.Bindings; len(got) != 1 {
		t.Errorf("credential of k1 bindings %v", got)
	}
	_, err := e.s.GetGroup(e.ctx, "orders")
	wantErr(t, err, store.ErrNotFound)
	got := page(e.s.GroupAuthorizations(e.ctx, "orders-v2", store.Page{})).must(t)
	if len(got) != 2 || got[0].ID != a3.ID || got[1].ID != a1.ID {
		t.Errorf("orders-v2 authorizations %v, want newest first", got)
	}
	e.group("orders") // recreated empty
	if got := page(e.s.GroupAuthorizations(e.ctx, "orders", store.Page{})).must(t); len(got) != 0 {
		t.Errorf("recreated group inherited %v", got)
	}
}

// testCredentialRecompiled checks the compiled credential after every kind
// of write that affects it.
func testCredentialRecompiled(t *testing.T, newBackend func(t *testing.T) store.Backend) {
	e := newEnv(t, newBackend)
	e.group("g")
	k := e.key("k")
	var authID string
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	expires := from.AddDate(5, 0, 0)
	steps := []struct {
		name  string
		write func() error
		check func(c *store.Credential) bool
	}{
		{"disable key", func() error {
			_, err := e.s.UpdateKey(e.ctx, k.ID, store.KeyPatch{Enabled: set(false), ExpiresAt: set(expires)}, actor)
			return err
		}, func(c *store.Credential) bool {
			return !c.Enabled && c.ExpiresAt.Equal(expires) && c.Authorization == nil
		}},
		{"create authorization", func() error {
			a, err := e.s.CreateAuthorization(e.ctx, store.NewAuthorization{AccessKeyID: k.ID, ValidFrom: &from, AllowedIPs: []string{"10.0.0.0/8"}}, actor)
			authID = a.ID
			return err
		}, func(c *store.Credential) bool {
			a := c.Authorization
			return a != nil && a.ID == authID && a.Enabled && a.ValidFrom.Equal(from) && a.ValidUntil.IsZero() &&
				slices.Equal(a.AllowedIPs, []string{"10.0.0.0/8"}) && len(a.Bindings) == 0
		}},
		{"update authorization", func() error {
			_, err := e.s.UpdateAuthorization(e.ctx, authID, store.AuthorizationPatch{Enabled: set(false), ValidUntil: set(expires), AllowedIPs: null[[]string]()}, actor)
			return err
		}, func(c *store.Credential) bool {
			return !c.Authorization.Enabled && c.Authorization.ValidUntil.Equal(expires) && len(c.Authorization.AllowedIPs) == 0
		}},
		{"bind", func() error {
			_, err := e.s.Bind(e.ctx, authID, store.Binding{Group: "g", Environment: "online"}, actor)
			return err
		}, func(c *store.Credential) bool {
			return slices.Equal(c.Authorization.Bindings, []store.Binding{bind("g", "online")})
		}},
		{"unbind", func() error {
			_, err := e.s.Unbind(e.ctx, authID, store.Binding{Group: "g", Environment: "online"}, actor)
			return err
		}, func(c *store.Credential) bool { return len(c.Authorization.Bindings) == 0 }},
		{"rebind and delete group", func() error {
			if _, err := e.s.Bind(e.ctx, authID, store.Binding{Group: "g"}, actor); err != nil {
				return err
			}
			return e.s.DeleteGroup(e.ctx, "g", actor)
		}, func(c *store.Credential) bool { return len(c.Authorization.Bindings) == 0 }},
		{"reset", func() error {
			r, err := e.s.ResetKey(e.ctx, k.ID, 0, actor)
			k.APISecret = r.APISecret
			return err
		}, func(c *store.Credential) bool { return c.Secret == k.APISecret }},
		{"enable key", func() error {
			_, err := e.s.UpdateKey(e.ctx, k.ID, store.KeyPatch{Enabled: set(true), ExpiresAt: null[time.Time]()}, actor)
			return err
		}, func(c *store.Credential) bool { return c.Enabled && c.ExpiresAt.IsZero() }},
		{"delete authorization", func() error {
			return e.s.DeleteAuthorization(e.ctx, authID, actor)
		}, func(c *store.Credential) bool { return c.Authorization == nil }},
	}
	for _, step := range steps {
		if err := step.write(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if c := e.credential(k.APIKey); !step.check(c) {
			t.Errorf("%s: credential not recompiled: %+v %+v", step.name, c, c.Authorization)
		}
	}
	noErr(t, e.s.DeleteKey(e.ctx, k.ID, actor))
	_, err := e.s.LoadCredential(e.ctx, k.APIKey)
	wantErr(t, err, store.ErrNotFound)
}

func testAudit(t *testing.T, newBackend func(t *testing.T) store.Backend) {
	e := newEnv(t, newBackend)
	var secrets []string
	e.group("g")
	k := e.key("k")
	secrets = append(secrets, k.APISecret)
	imp := get(e.s.CreateKey(e.ctx, store.NewKey{Name: "imp", Kind: store.KindImported, APIKey: "IMPORTED-AK", APISecret: "imported-secret-value"}, actor)).must(t)
	secrets = append(secrets, imp.APISecret)
	r := get(e.s.ResetKey(e.ctx, k.ID, time.Minute, actor)).must(t)
	secrets = append(secrets, r.APISecret)
	get(e.s.UpdateKey(e.ctx, k.ID, store.KeyPatch{Description: set("x")}, actor)).must(t)
	a := e.authorize(k.ID)
	get(e.s.UpdateAuthorization(e.ctx, a.ID, store.AuthorizationPatch{Description: set("x")}, actor)).must(t)
	get(e.s.Bind(e.ctx, a.ID, store.Binding{Group: "g", Environment: "online"}, actor)).must(t)
	get(e.s.Unbind(e.ctx, a.ID, store.Binding{Group: "g", Environment: "online"}, actor)).must(t)
	noErr(t, e.s.DeleteAuthorization(e.ctx, a.ID, actor))
	noErr(t, e.s.DeleteGroup(e.ctx, "g", actor))
	noErr(t, e.s.DeleteKey(e.ctx, imp.ID, actor))
	noErr(t, e.s.MarkUsed(e.ctx, map[string]time.Time{k.ID: e.clock.Now()}))
	want := []struct{ action, target string }{
		{"key.delete", imp.ID},
		{"group.delete", "g"},
		{"authorization.delete", a.ID},
		{"authorization.unbind", a.ID + "/g/online"},
		{"authorization.bind", a.ID + "/g/online"},
		{"authorization.update", a.ID},
		{"authorization.create", a.ID},
		{"key.update", k.ID},
		{"key.reset", k.ID},
		{"key.import", imp.ID},
		{"key.create", k.ID},
		{"group.create", "g"},
	}
	records := e.audit()
	if len(records) != len(want) {
		t.Fatalf("%d audit records, want %d: %+v", len(records), len(want), records)
	}
	for i, rec := range records {
		if rec.Action != want[i].action || rec.Target != want[i].target || rec.Actor != actor.Name || rec.RemoteAddr != actor.RemoteAddr || rec.At.IsZero() {
			t.Errorf("audit[%d] = %+v, want %s %s", i, rec, want[i].action, want[i].target)
		}
		if i > 0 && rec.At.After(records[i-1].At) {
			t.Errorf("audit not newest first at %d", i)
		}
	}
	all, _ := json.Marshal(records)
	for _, secret := range secrets {
		if bytes.Contains(all, []byte(secret)) {
			t.Error("a secret appears in the audit log")
		}
	}
	// Paging walks the same records.
	var paged []store.AuditRecord
	for cursor := ""; ; {
		page, next, err := e.s.ListAudit(e.ctx, store.Page{Limit: 5, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		paged = append(paged, page...)
		if next == "" {
			break
		}
		cursor = next
	}
	if !equalJSON(paged, records) {
		t.Error("paged audit differs from one page")
	}
}

func testPaging(t *testing.T, newBackend func(t *testing.T) store.Backend) {
	e := newEnv(t, newBackend)
	// Import makes 501 groups in one transaction.
	exp := store.Export{Version: store.ExportVersion}
	for i := range 501 {
		exp.Groups = append(exp.Groups, store.Group{Name: fmt.Sprintf("g%03d", i)})
	}
	noErr(t, e.s.Import(e.ctx, exp, actor))
	if g := get(e.s.GetGroup(e.ctx, "g000")).must(t); g.CreatedAt.IsZero() {
		t.Error("a group imported without created_at has none")
	}
	for _, tt := range []struct{ limit, want int }{{0, store.DefaultPageLimit}, {-1, store.DefaultPageLimit}, {7, 7}, {1000, store.MaxPageLimit}} {
		items, next, err := e.s.ListGroups(e.ctx, store.Page{Limit: tt.limit})
		if err != nil || len(items) != tt.want || next != items[len(items)-1].Name {
			t.Errorf("limit %d: %d items, next %q, %v", tt.limit, len(items), next, err)
		}
	}
	var names []string
	pages := 0
	for cursor := ""; ; pages++ {
		items, next, err := e.s.ListGroups(e.ctx, store.Page{Limit: 100, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range items {
			names = append(names, g.Name)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if len(names) != 501 || pages != 5 || !slices.IsSorted(names) || slices.Compact(slices.Clone(names))[500] != "g500" {
		t.Errorf("paged %d groups in %d pages", len(names), pages)
	}
	// An exact fit ends with an empty cursor.
	items, next, err := e.s.ListGroups(e.ctx, store.Page{Limit: 1, Cursor: "g499"})
	if err != nil || len(items) != 1 || next != "" {
		t.Errorf("last page: %d items, next %q, %v", len(items), next, err)
	}
	// Keys come newest first.
	var ids []string
	for i := range 5 {
		ids = append(ids, e.key(fmt.Sprintf("k%d", i)).ID)
	}
	slices.Reverse(ids)
	page1, next, err := e.s.ListKeys(e.ctx, store.KeyFilter{}, store.Page{Limit: 3})
	if err != nil || len(page1) != 3 || next == "" {
		t.Fatalf("keys page 1: %d, %q, %v", len(page1), next, err)
	}
	page2, next2, err := e.s.ListKeys(e.ctx, store.KeyFilter{}, store.Page{Limit: 3, Cursor: next})
	if err != nil || len(page2) != 2 || next2 != "" {
		t.Fatalf("keys page 2: %d, %q, %v", len(page2), next2, err)
	}
	var got []string
	for _, k := range append(page1, page2...) {
		got = append(got, k.ID)
	}
	if !slices.Equal(got, ids) {
		t.Errorf("keys %v, want newest first %v", got, ids)
	}
}

func testListFilters(t *testing.T, newBackend func(t *testing.T) store.Backend) {
	e := newEnv(t, newBackend)
	e.group("g")
	e.group("h")
	var keys []store.AccessKey
	var auths []store.Authorization
	for i := range 6 {
		k := e.key(fmt.Sprintf("k%d", i))
		if i%2 == 1 {
			get(e.s.UpdateKey(e.ctx, k.ID, store.KeyPatch{Enabled: set(false)}, actor)).must(t)
		}
		keys = append(keys, k)
		group := "g"
		if i >= 4 {
			group = "h"
		}
		auths = append(auths, e.authorize(k.ID, store.Binding{Group: group}))
	}
	if got := page(e.s.ListKeys(e.ctx, store.KeyFilter{Name: "k3"}, store.Page{})).must(t); len(got) != 1 || got[0].ID != keys[3].ID {
		t.Errorf("name filter %v", got)
	}
	if got := page(e.s.ListKeys(e.ctx, store.KeyFilter{Name: "k3", Enabled: ptr(true)}, store.Page{})).must(t); len(got) != 0 {
		t.Errorf("name and enabled filter %v", got)
	}
	if got := page(e.s.ListKeys(e.ctx, store.KeyFilter{Name: "nope"}, store.Page{})).must(t); got == nil || len(got) != 0 {
		t.Errorf("unknown name %#v", got)
	}
	disabled, next, err := e.s.ListKeys(e.ctx, store.KeyFilter{Enabled: ptr(false)}, store.Page{Limit: 2})
	if err != nil || len(disabled) != 2 || disabled[0].ID != keys[5].ID || disabled[1].ID != keys[3].ID || next != keys[3].ID {
		t.Fatalf("disabled page 1 %v %q %v", disabled, next, err)
	}
	disabled, next, err = e.s.ListKeys(e.ctx, store.KeyFilter{Enabled: ptr(false)}, store.Page{Limit: 2, Cursor: next})
	if err != nil || len(disabled) != 1 || disabled[0].ID != keys[1].ID || next != "" {
		t.Fatalf("disabled page 2 %v %q %v", disabled, next, err)
	}
	if got := page(e.s.ListAuthorizations(e.ctx, store.AuthorizationFilter{AccessKeyID: keys[2].ID}, store.Page{})).must(t); len(got) != 1 || got[0].ID != auths[2].ID {
		t.Errorf("access_key_id filter %v", got)
	}
	if got := page(e.s.ListAuthorizations(e.ctx, store.AuthorizationFilter{AccessKeyID: keys[2].ID, Group: "h"}, store.Page{})).must(t); len(got) != 0 {
		t.Errorf("access_key_id and group filter %v", got)
	}
	inG, next, err := e.s.ListAuthorizations(e.ctx, store.AuthorizationFilter{Group: "g"}, store.Page{Limit: 3})
	if err != nil || len(inG) != 3 || next != inG[2].ID {
		t.Fatalf("group page 1 %v %q %v", inG, next, err)
	}
	rest, next, err := e.s.ListAuthorizations(e.ctx, store.AuthorizationFilter{Group: "g"}, store.Page{Limit: 3, Cursor: next})
	if err != nil || len(rest) != 1 || next != "" {
		t.Fatalf("group page 2 %v %q %v", rest, next, err)
	}
	var ids []string
	for _, a := range append(inG, rest...) {
		ids = append(ids, a.ID)
	}
	if want := []string{auths[3].ID, auths[2].ID, auths[1].ID, auths[0].ID}; !slices.Equal(ids, want) {
		t.Errorf("group g lists %v, want newest first %v", ids, want)
	}
	viaGroup := page(e.s.GroupAuthorizations(e.ctx, "h", store.Page{})).must(t)
	if len(viaGroup) != 2 || viaGroup[0].ID != auths[5].ID {
		t.Errorf("GroupAuthorizations(h) %v", viaGroup)
	}
	all := page(e.s.ListAuthorizations(e.ctx, store.AuthorizationFilter{}, store.Page{})).must(t)
	var allIDs []string
	for _, a := range all {
		allIDs = append(allIDs, a.ID)
	}
	var newestFirst []string
	for _, a := range slices.Backward(auths) {
		newestFirst = append(newestFirst, a.ID)
	}
	if !slices.Equal(allIDs, newestFirst) {
		t.Errorf("all authorizations %v, want newest first %v", allIDs, newestFirst)
	}
}

// testKeySearch: ?q= finds a substring of the name, ID or APIKey whatever
// its case; api_key and kind filter exactly; a filtered page examines at
// most store.KeyScanBudget keys and then hands out a cursor to go on.
func testKeySearch(t *testing.T, newBackend func(t *testing.T) store.Backend) {
	e := newEnv(t, newBackend)
	alice, bob := e.key("Alice-Prod"), e.key("bob")
	imported := get(e.s.CreateKey(e.ctx, store.NewKey{Name: "carol", Kind: store.KindImported, APIKey: "CarolAK123", APISecret: "s3cret"}, actor)).must(t)
	names := func(f store.KeyFilter) []string {
		t.Helper()
		var out []string
		for _, k := range page(e.s.ListKeys(e.ctx, f, store.Page{})).must(t) {
			out = append(out, k.Name)
		}
		return out
	}
	for _, tt := range []struct {
		name   string
		filter store.KeyFilter
		want   []string
	}{
		{"name substring, other case", store.KeyFilter{Query: "alice-p"}, []string{"Alice-Prod"}},
		{"shared substring, newest first", store.KeyFilter{Query: "o"}, []string{"carol", "bob", "Alice-Prod"}},
		{"ID substring", store.KeyFilter{Query: strings.ToUpper(bob.ID[3:20])}, []string{"bob"}},
		{"APIKey substring", store.KeyFilter{Query: strings.ToLower(alice.APIKey[4:14])}, []string{"Alice-Prod"}},
		{"no match", store.KeyFilter{Query: "zzz"}, nil},
		{"api_key exact", store.KeyFilter{APIKey: imported.APIKey}, []string{"carol"}},
		{"api_key is not a substring search", store.KeyFilter{APIKey: "CarolAK"}, nil},
		{"kind imported", store.KeyFilter{Kind: store.KindImported}, []string{"carol"}},
		{"kind generated", store.KeyFilter{Kind: store.KindGenerated}, []string{"bob", "Alice-Prod"}},
		{"query and kind", store.KeyFilter{Query: "o", Kind: store.KindGenerated}, []string{"bob", "Alice-Prod"}},
	} {
		if got := names(tt.filter); !slices.Equal(got, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
	if got, next, err := e.s.ListKeys(e.ctx, store.KeyFilter{APIKey: imported.APIKey}, store.Page{Cursor: imported.ID}); err != nil || len(got) != 0 || next != "" {
		t.Errorf("an exact lookup's second page: %v %q %v", got, next, err)
	}

	// Past the budget of non-matching keys, a search answers a short page
	// that goes on; following the cursors finds the oldest key.
	// The fillers are written as bare records of the "keys" table (see
	// store.Backend): the list reads nothing else.
	noErr(t, e.s.Backend().Update(e.ctx, func(tx store.Tx) error {
		for i := range store.KeyScanBudget + 10 {
			id := fmt.Sprintf("ak-zz%08d", i) // newer than every key made above
			filler, _ := json.Marshal(store.AccessKey{ID: id, Name: "filler-" + id, Kind: store.KindImported, APIKey: "FILLER" + id, Enabled: true})
			if err := tx.Put("keys", id, filler); err != nil {
				return err
			}
		}
		return nil
	}))
	items, next, err := e.s.ListKeys(e.ctx, store.KeyFilter{Query: "alice"}, store.Page{})
	if err != nil || len(items) != 0 || next == "" {
		t.Fatalf("search past the budget: %v, next %q, %v; want an empty page that goes on", items, next, err)
	}
	items, next, err = e.s.ListKeys(e.ctx, store.KeyFilter{Query: "alice"}, store.Page{Cursor: next})
	if err != nil || len(items) != 1 || items[0].ID != alice.ID || next != "" {
		t.Errorf("the search's next page: %v, next %q, %v", items, next, err)
	}
}

// populate writes a small data set and returns the secrets by API key.
func populate(t *testing.T, e *env) map[string]string {
	t.Helper()
	secrets := make(map[string]string)
	e.group("orders")
	noErr(t, e.s.RegisterGroup(e.ctx, "users", "online"))
	k1 := e.key("k1")
	k2 := get(e.s.CreateKey(e.ctx, store.NewKey{Name: "k2", Kind: store.KindImported, APIKey: "JD-AK-2", APISecret: "jd secret 2"}, actor)).must(t)
	k3 := e.key("k3")
	r := get(e.s.ResetKey(e.ctx, k3.ID, 24*time.Hour, actor)).must(t)
	secrets[k1.APIKey], secrets[k2.APIKey], secrets[k3.APIKey] = k1.APISecret, k2.APISecret, r.APISecret
	secrets["previous "+k3.APIKey] = k3.APISecret
	e.authorize(k1.ID, store.Binding{Group: "orders"}, store.Binding{Group: "users", Environment: "online"})
	get(e.s.CreateAuthorization(e.ctx, store.NewAuthorization{AccessKeyID: k2.ID, AllowedIPs: []string{"10.0.0.0/8"}, Bindings: []store.Binding{{Group: "users"}}}, actor)).must(t)
	return secrets
}

func testExportImport(t *testing.T, newBackend func(t *testing.T) store.Backend) {
	src := newEnv(t, newBackend)
	secrets := populate(t, src)
	exp := get(src.s.Export(src.ctx)).must(t)
	if exp.Version != store.ExportVersion || len(exp.Keys) != 3 || len(exp.Authorizations) != 2 || len(exp.Groups) != 2 {
		t.Fatalf("export has %d keys, %d authorizations, %d groups", len(exp.Keys), len(exp.Authorizations), len(exp.Groups))
	}
	raw, err := json.Marshal(exp)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range secrets {
		if bytes.Contains(raw, []byte(secret)) {
			t.Fatal("a plaintext secret appears in the export")
		}
	}
	for _, k := range exp.Keys {
		if k.SealedSecret == "" || k.APISecret != "" {
			t.Errorf("exported key %s: sealed %q, plain %q", k.ID, k.SealedSecret, k.APISecret)
		}
	}
	var decoded store.Export
	if err := json.Unmarshal(raw, &decoded); err != nil {
		t.Fatal(err)
	}

	dst := newEnv(t, newBackend)
	feed := dst.s.Subscribe(subscribeContext(t))
	noErr(t, dst.s.Import(dst.ctx, decoded, actor))
	checkSameData(t, src, dst, secrets)
	notified := map[string]bool{}
	for _, c := range collect(t, feed, 1) {
		for _, k := range c.APIKeys {
			notified[k] = true
		}
	}
	for _, k := range exp.Keys {
		if !notified[k.APIKey] {
			t.Errorf("import did not announce %s", k.APIKey)
		}
	}
	if records := dst.audit(); len(records) != 1 || records[0].Action != "store.import" {
		t.Errorf("import audit %+v", records)
	}
	// Idempotent: the same export again changes nothing.
	noErr(t, dst.s.Import(dst.ctx, decoded, actor))
	checkSameData(t, src, dst, secrets)
	// Importing onto the source itself is a no-op too.
	noErr(t, src.s.Import(src.ctx, decoded, actor))
	checkSameData(t, src, dst, secrets)

	// A store with another master key cannot open the secrets.
	other := newEnv(t, newBackend)
	other.s = other.open(masterKey2)
	err = other.s.Import(other.ctx, decoded, actor)
	var invalid *store.InvalidArgumentError
	if !errors.As(err, &invalid) || !strings.HasSuffix(invalid.Field, "sealed_secret") {
		t.Fatalf("import under another master key: %v", err)
	}
	if got := get(other.s.Export(other.ctx)).must(t); len(got.Keys)+len(got.Groups) != 0 {
		t.Error("a refused import left data")
	}
	// With the source's key configured second, it can; it seals under the first.
	other.s = other.open(masterKey2, masterKey1)
	noErr(t, other.s.Import(other.ctx, decoded, actor))
	checkSameData(t, src, other, secrets)
	onlyNew := other.open(masterKey2)
	for apiKey, secret := range secrets {
		if !strings.HasPrefix(apiKey, "previous ") {
			if c, err := onlyNew.LoadCredential(other.ctx, apiKey); err != nil || c.Secret != secret {
				t.Errorf("import did not re-seal %s under the first master key: %v", apiKey, err)
			}
		}
	}

	wantInvalid(t, dst.s.Import(dst.ctx, store.Export{}, actor), "version")
}

// checkSameData compares the data sets and credentials of two stores.
func checkSameData(t *testing.T, a, b *env, secrets map[string]string) {
	t.Helper()
	ea, eb := get(a.s.Export(a.ctx)).must(t), get(b.s.Export(b.ctx)).must(t)
	if len(ea.Keys) != len(eb.Keys) {
		t.Fatalf("%d keys, want %d", len(eb.Keys), len(ea.Keys))
	}
	for i := range ea.Keys {
		if !equalJSON(ea.Keys[i].AccessKey, eb.Keys[i].AccessKey) {
			t.Errorf("key %d: %+v, want %+v", i, eb.Keys[i].AccessKey, ea.Keys[i].AccessKey)
		}
	}
	if !equalJSON(ea.Authorizations, eb.Authorizations) || !equalJSON(ea.Groups, eb.Groups) {
		t.Errorf("authorizations or groups differ:\n%+v\n%+v", eb, ea)
	}
	for _, k := range ea.Keys {
		ca, cb := a.credential(k.APIKey), b.credential(k.APIKey)
		if cb.Secret != secrets[k.APIKey] || cb.PreviousSecret != secrets["previous "+k.APIKey] {
			t.Errorf("secrets of %s differ after import", k.ID)
		}
		if !equalJSON(ca, cb) {
			t.Errorf("credential of %s: %+v, want %+v", k.ID, cb, ca)
		}
	}
}

func testImportConflicts(t *testing.T, newBackend func(t *testing.T) store.Backend) {
	src := newEnv(t, newBackend)
	populate(t, src)
	exp := get(src.s.Export(src.ctx)).must(t)

	dst := newEnv(t, newBackend)
	dst.group("orders")
	dst.key("k1") // same name, another id
	err := dst.s.Import(dst.ctx, exp, actor)
	wantErr(t, err, store.ErrNameTaken)
	if got := get(dst.s.Export(dst.ctx)).must(t); len(got.Keys) != 1 || len(got.Groups) != 1 || len(got.Authorizations) != 0 {
		t.Errorf("a refused import left data: %d keys, %d groups", len(got.Keys), len(got.Groups))
	}

	missingGroup := exp
	missingGroup.Groups = nil
	err = newEnv(t, newBackend).s.Import(context.Background(), missingGroup, actor)
	wantErr(t, err, store.ErrGroupNotFound)

	dupe := exp
	dupe.Keys = append(slices.Clone(exp.Keys), exp.Keys[0])
	wantInvalid(t, dst.s.Import(dst.ctx, dupe, actor), "keys[3]")

	plain := exp
	plain.Keys = slices.Clone(exp.Keys)
	plain.Keys[0].APISecret = "plain"
	wantInvalid(t, dst.s.Import(dst.ctx, plain, actor), "keys[0].api_secret")

	// A sealed secret moved to another key does not open (bound to the ID).
	moved := exp
	moved.Keys = slices.Clone(exp.Keys)
	moved.Keys[0].SealedSecret = exp.Keys[1].SealedSecret
	wantInvalid(t, dst.s.Import(dst.ctx, moved, actor), "keys[0].sealed_secret")

	orphan := exp
	orphan.Keys = nil
	wantInvalid(t, newEnv(t, newBackend).s.Import(context.Background(), orphan, actor), "authorizations[0].access_key_id")
}

// testSecretsSealedAtRest reads every record of every table and looks for
// the plaintext secrets.
func testSecretsSealedAtRest(t *testing.T, newBackend func(t *testing.T) store.Backend) {
	e := newEnv(t, newBackend)
	secrets := populate(t, e)
	tables := []string{"keys", "key_names", "api_keys", "authorizations", "key_authorizations",
		"groups", "group_authorizations", "credentials", "audit", "meta"}
	records := 0
	err := e.backend.View(e.ctx, func(tx store.Tx) error {
		for _, table := range tables {
			all, err := tx.Scan(table, "", 0)
			if err != nil {
				return err
			}
			records += len(all)
			for _, r := range all {
				for _, secret := range secrets {
					if bytes.Contains(r.Value, []byte(secret)) || strings.Contains(r.ID, secret) {
						t.Errorf("table %s record %s holds a plaintext secret", table, r.ID)
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if records < 20 {
		t.Errorf("only %d records scanned", records)
	}
}

// testCheckMasterKeys follows a master key rotation: a start with keys that
// do not open every stored secret fails, and one whose dropped key sealed
// nothing any more passes.
func testCheckMasterKeys(t *testing.T, newBackend func(t *testing.T) store.Backend) {
	e := newEnv(t, newBackend)
	check := func(step string, wantLost map[string]int, masterKeys ...[]byte) {
		t.Helper()
		err := e.open(masterKeys...).CheckMasterKeys(e.ctx)
		var mismatch *store.MasterKeyMismatchError
		switch {
		case wantLost == nil && err != nil:
			t.Fatalf("%s: %v", step, err)
		case wantLost != nil && !errors.As(err, &mismatch):
			t.Fatalf("%s: %v, want a MasterKeyMismatchError", step, err)
		case wantLost != nil && !reflect.DeepEqual(mismatch.Lost, wantLost):
			t.Fatalf("%s: lost %v, want %v (%v)", step, mismatch.Lost, wantLost, err)
		}
	}
	fp1, fp2 := store.MasterKeyFingerprint(masterKey1), store.MasterKeyFingerprint(masterKey2)
	check("empty store, another key", nil, masterKey2)
	check("empty store, the first key", nil, masterKey1)
	k := e.key("k")
	e.key("k2")
	check("lost master key", map[string]int{fp1: 2}, masterKey2)
	check("rotation keeps the old key", nil, masterKey2, masterKey1)
	rotated := e.open(masterKey2, masterKey1)
	get(rotated.ResetKey(e.ctx, k.ID, time.Hour, actor)).must(t)
	check("the grace of a reset keeps the old secret", map[string]int{fp1: 2}, masterKey2)
	e.clock.Advance(2 * time.Hour)
	check("one secret left", map[string]int{fp1: 1}, masterKey2)
	check("no key opens any", map[string]int{fp1: 1, fp2: 1}, bytes.Repeat([]byte{0x33}, store.MasterKeySize))
	for _, key := range page(rotated.ListKeys(e.ctx, store.KeyFilter{}, store.Page{})).must(t) {
		if key.ID != k.ID {
			get(rotated.ResetKey(e.ctx, key.ID, 0, actor)).must(t)
		}
	}
	check("every secret sealed again", nil, masterKey2)
	check("the old key alone opens nothing now", map[string]int{fp2: 2}, masterKey1)
}

func testMasterKeyRotation(t *testing.T, newBackend func(t *testing.T) store.Backend) {
	e := newEnv(t, newBackend)
	k := e.key("k")
	rotated := e.open(masterKey2, masterKey1)
	if c, err := rotated.LoadCredential(e.ctx, k.APIKey); err != nil || c.Secret != k.APISecret {
		t.Fatalf("second master key does not open: %v", err)
	}
	k2 := get(rotated.CreateKey(e.ctx, store.NewKey{Name: "k2"}, actor)).must(t)
	if c, err := e.open(masterKey2).LoadCredential(e.ctx, k2.APIKey); err != nil || c.Secret != k2.APISecret {
		t.Fatalf("first master key does not seal: %v", err)
	}
	_, err := e.open(masterKey2).LoadCredential(e.ctx, k.APIKey)
	if err == nil || strings.Contains(err.Error(), k.APISecret) {
		t.Fatalf("LoadCredential without the sealing key: %v", err)
	}
	if _, err := store.Open(e.backend, store.Options{}); err == nil {
		t.Error("Open without a master key succeeded")
	}
	if _, err := store.Open(e.backend, store.Options{MasterKeys: [][]byte{make([]byte, 16)}}); err == nil {
		t.Error("Open with a short master key succeeded")
	}
}

func testMarkUsed(t *testing.T, newBackend func(t *testing.T) store.Backend) {
	e := newEnv(t, newBackend)
	k := e.key("k")
	feed := e.s.Subscribe(subscribeContext(t))
	audits := len(e.audit())
	at := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	noErr(t, e.s.MarkUsed(e.ctx, map[string]time.Time{k.ID: at, "ak-deleted": at}))
	noErr(t, e.s.MarkUsed(e.ctx, map[string]time.Time{k.ID: at.Add(-time.Hour)})) // older: kept
	got := get(e.s.GetKey(e.ctx, k.ID)).must(t)
	if got.LastUsedAt == nil || !got.LastUsedAt.Equal(at) || !got.UpdatedAt.Equal(k.UpdatedAt) {
		t.Errorf("last_used_at %v, updated_at %v", got.LastUsedAt, got.UpdatedAt)
	}
	if len(e.audit()) != audits {
		t.Error("MarkUsed wrote an audit record")
	}
	e.key("marker")
	if changes := collect(t, feed, 1); len(changes[0].APIKeys) != 1 || changes[0].APIKeys[0] == k.APIKey {
		t.Errorf("MarkUsed announced a change: %+v", changes)
	}
}

func subscribeContext(t *testing.T) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return ctx
}

// collect reads n changes that name API keys, failing after a generous
// wait.
func collect(t *testing.T, feed <-chan store.Change, n int) []store.Change {
	t.Helper()
	var changes []store.Change
	timeout := time.After(10 * time.Second)
	for len(changes) < n {
		select {
		case c, ok := <-feed:
			if !ok {
				t.Fatalf("feed closed after %d changes", len(changes))
			}
			if c.Reset {
				t.Fatalf("unexpected Reset after %d changes", len(changes))
			}
			if len(c.APIKeys) > 0 { // a backend may announce writes that changed no credential
				changes = append(changes, c)
			}
		case <-timeout:
			t.Fatalf("got %d changes, want %d", len(changes), n)
		}
	}
	return changes
}

func testChangeFeed(t *testing.T, newBackend func(t *testing.T) store.Backend) {
	e := newEnv(t, newBackend)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	feed := e.s.Subscribe(ctx)
	second := e.s.Subscribe(subscribeContext(t))
	e.group("g")
	k1 := e.key("k1")
	k2 := e.key("k2")
	a1 := e.authorize(k1.ID, store.Binding{Group: "g"})
	e.authorize(k2.ID, store.Binding{Group: "g"})
	noErr(t, e.s.RegisterGroup(e.ctx, "h", "online"))
	get(e.s.ResetKey(e.ctx, k1.ID, time.Hour, actor)).must(t)
	noErr(t, e.s.DeleteGroup(e.ctx, "g", actor))
	noErr(t, e.s.DeleteAuthorization(e.ctx, a1.ID, actor))
	noErr(t, e.s.DeleteKey(e.ctx, k1.ID, actor))
	want := [][]string{
		{k1.APIKey},
		{k2.APIKey},
		{k1.APIKey},
		{k2.APIKey},
		{k1.APIKey},
		{k1.APIKey, k2.APIKey},
		{k1.APIKey},
		{k1.APIKey},
	}
	for name, ch := range map[string]<-chan store.Change{"first": feed, "second": second} {
		changes := collect(t, ch, len(want))
		for i, c := range changes {
			keys := slices.Sorted(slices.Values(c.APIKeys))
			if !slices.Equal(keys, slices.Sorted(slices.Values(want[i]))) {
				t.Errorf("%s subscriber: change %d announces %v, want %v", name, i, c.APIKeys, want[i])
			}
			if i > 0 && c.Revision <= changes[i-1].Revision {
				t.Errorf("%s subscriber: revision %d after %d", name, c.Revision, changes[i-1].Revision)
			}
		}
	}
	cancel()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case _, ok := <-feed:
			if !ok {
				return
			}
		case <-timeout:
			t.Fatal("feed not closed after its context ended")
		}
	}
}

// testChangeCarriesCommitTime checks that every change carries its commit
// time, from which nodes measure the propagation lag
// (caddy_access_auth_propagation_lag_seconds).
func testChangeCarriesCommitTime(t *testing.T, newBackend func(t *testing.T) store.Backend) {
	b := newBackend(t)
	feed := b.Subscribe(subscribeContext(t))
	// Redis stamps the millisecond: compare at that precision.
	before := time.Now().Truncate(time.Millisecond)
	noErr(t, b.Update(context.Background(), func(tx store.Tx) error {
		tx.Notify("K1")
		return tx.Put("t", "k", []byte("v"))
	}))
	after := time.Now()
	if c := collect(t, feed, 1)[0]; c.At.Before(before) || c.At.After(after) {
		t.Fatalf("change committed between %v and %v says At %v", before, after, c.At)
	}
}

// failingBackend makes the Nth Put of its write transactions fail.
type failingBackend struct {
	store.Backend
	mu       sync.Mutex
	failAt   int // 1-based; 0 = never
	puts     int
	injected bool
}

var errInjected = errors.New("injected failure")

func (b *failingBackend) Update(ctx context.Context, fn func(store.Tx) error) error {
	return b.Backend.Update(ctx, func(tx store.Tx) error {
		return fn(&failingTx{Tx: tx, b: b})
	})
}

type failingTx struct {
	store.Tx
	b *failingBackend
}

func (t *failingTx) Put(table, id string, value []byte) error {
	t.b.mu.Lock()
	t.b.puts++
	fail := t.b.puts == t.b.failAt
	t.b.injected = t.b.injected || fail
	t.b.mu.Unlock()
	if fail {
		return errInjected
	}
	return t.Tx.Put(table, id, value)
}

// testAtomicity fails every write at each of its Puts in turn and checks
// that a failed write leaves no trace.
func testAtomicity(t *testing.T, newBackend func(t *testing.T) store.Backend) {
	writes := []struct {
		name  string
		write func(e *env, k store.AccessKey, a store.Authorization) error
	}{
		{"create key", func(e *env, _ store.AccessKey, _ store.Authorization) error {
			_, err := e.s.CreateKey(e.ctx, store.NewKey{Name: "new"}, actor)
			return err
		}},
		{"create authorization with bindings", func(e *env, _ store.AccessKey, _ store.Authorization) error {
			keys := page(e.s.ListKeys(e.ctx, store.KeyFilter{Name: "free"}, store.Page{})).must(e.t)
			_, err := e.s.CreateAuthorization(e.ctx, store.NewAuthorization{AccessKeyID: keys[0].ID, Bindings: []store.Binding{{Group: "g", Environment: "new-env"}}}, actor)
			return err
		}},
		{"reset", func(e *env, k store.AccessKey, _ store.Authorization) error {
			_, err := e.s.ResetKey(e.ctx, k.ID, time.Hour, actor)
			return err
		}},
		{"rename", func(e *env, k store.AccessKey, _ store.Authorization) error {
			_, err := e.s.UpdateKey(e.ctx, k.ID, store.KeyPatch{Name: set("renamed")}, actor)
			return err
		}},
		{"bind", func(e *env, _ store.AccessKey, a store.Authorization) error {
			_, err := e.s.Bind(e.ctx, a.ID, store.Binding{Group: "h", Environment: "new-env"}, actor)
			return err
		}},
		{"delete group", func(e *env, _ store.AccessKey, _ store.Authorization) error {
			return e.s.DeleteGroup(e.ctx, "g", actor)
		}},
		{"import", func(e *env, _ store.AccessKey, _ store.Authorization) error {
			exp, err := e.s.Export(e.ctx)
			if err != nil {
				return err
			}
			exp.Groups = append(exp.Groups, store.Group{Name: "imported"})
			for i := range exp.Keys {
				exp.Keys[i].Description = "imported"
			}
			return e.s.Import(e.ctx, exp, actor)
		}},
		{"apply with prune", func(e *env, _ store.AccessKey, _ store.Authorization) error {
			_, err := e.s.Apply(e.ctx, store.DesiredState{
				Groups: []store.DesiredGroup{{Name: "applied"}},
				Keys:   []store.DesiredKey{{Name: "k", Description: "applied"}, {Name: "new"}},
				Authorizations: []store.DesiredAuthorization{
					{Key: "new", NewAuthorization: store.NewAuthorization{Bindings: []store.Binding{{Group: "applied", Environment: "new-env"}}}},
				},
			}, store.ApplyOptions{Prune: true}, actor)
			return err
		}},
	}
	for _, w := range writes {
		t.Run(strings.ReplaceAll(w.name, " ", "_"), func(t *testing.T) {
			fb := &failingBackend{Backend: newBackend(t)}
			e := &env{t: t, ctx: context.Background(), backend: fb, clock: NewClock()}
			e.s = e.open(masterKey1)
			e.group("g")
			e.group("h")
			k := e.key("k")
			e.key("free")
			a := e.authorize(k.ID, store.Binding{Group: "g"})
			for failAt := 1; ; failAt++ {
				before := snapshot(t, e)
				fb.mu.Lock()
				fb.failAt, fb.puts, fb.injected = failAt, 0, false
				fb.mu.Unlock()
				err := w.write(e, k, a)
				fb.mu.Lock()
				injected := fb.injected
				fb.failAt = 0
				fb.mu.Unlock()
				if !injected {
					if err != nil {
						t.Fatalf("write without failure: %v", err)
					}
					if failAt == 1 {
						t.Fatal("the write made no Put")
					}
					return
				}
				if !errors.Is(err, errInjected) {
					t.Fatalf("Put %d failed, write answered %v", failAt, err)
				}
				if after := snapshot(t, e); after != before {
					t.Fatalf("failing Put %d left a trace:\nbefore %s\nafter  %s", failAt, before, after)
				}
			}
		})
	}
}

// snapshot renders everything a write could change.
func snapshot(t *testing.T, e *env) string {
	t.Helper()
	exp := get(e.s.Export(e.ctx)).must(t)
	exp.ExportedAt = time.Time{}
	var b strings.Builder
	for _, k := range exp.Keys {
		fmt.Fprintf(&b, "%s\n", mustJSON(k.AccessKey))
		c, err := e.s.LoadCredential(e.ctx, k.APIKey)
		fmt.Fprintf(&b, "%s %v\n", mustJSON(c), err)
		for _, name := range []string{k.Name, "new", "renamed"} {
			keys, _, _ := e.s.ListKeys(e.ctx, store.KeyFilter{Name: name}, store.Page{})
			fmt.Fprintf(&b, "%s: %d\n", name, len(keys))
		}
	}
	for _, g := range exp.Groups {
		auths, _, _ := e.s.GroupAuthorizations(e.ctx, g.Name, store.Page{})
		fmt.Fprintf(&b, "%s %s\n", mustJSON(g), mustJSON(auths))
	}
	fmt.Fprintf(&b, "%s\n%d audit records\n", mustJSON(exp.Authorizations), len(e.audit()))
	return b.String()
}

func testConcurrentCreate(t *testing.T, newBackend func(t *testing.T) store.Backend) {
	e := newEnv(t, newBackend)
	k := e.key("k")
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, errs[i] = e.s.CreateKey(e.ctx, store.NewKey{Name: "same"}, actor)
		}()
		go func() {
			defer wg.Done()
			// Authorizations for one key race too.
			_, err := e.s.CreateAuthorization(e.ctx, store.NewAuthorization{AccessKeyID: k.ID}, actor)
			if err != nil && !errors.Is(err, store.ErrAuthorizationExists) {
				t.Errorf("CreateAuthorization: %v", err)
			}
		}()
	}
	wg.Wait()
	created := 0
	for _, err := range errs {
		switch {
		case err == nil:
			created++
		case !errors.Is(err, store.ErrNameTaken):
			t.Errorf("CreateKey: %v", err)
		}
	}
	if created != 1 {
		t.Errorf("%d keys named alike were created", created)
	}
	if got := page(e.s.ListAuthorizations(e.ctx, store.AuthorizationFilter{}, store.Page{})).must(t); len(got) != 1 {
		t.Errorf("%d authorizations for one key", len(got))
	}
	if keys := page(e.s.ListKeys(e.ctx, store.KeyFilter{}, store.Page{})).must(t); len(keys) != 2 {
		t.Errorf("%d keys", len(keys))
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func equalJSON(a, b any) bool { return mustJSON(a) == mustJSON(b) }
