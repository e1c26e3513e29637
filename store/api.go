package store

import (
	"encoding/json"
	"time"
)

// This file declares the Store API that admin, cache and caddymodule use.
// Bodies live beside it (store.go); the contract of each method is here.

// Optional carries a PATCH field: Set is false when the field was absent,
// Value is nil when it was JSON null.
type Optional[T any] struct {
	Set   bool
	Value *T
}

// UnmarshalJSON marks the field as present.
func (o *Optional[T]) UnmarshalJSON(b []byte) error {
	o.Set = true
	if string(b) == "null" {
		o.Value = nil
		return nil
	}
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	o.Value = &v
	return nil
}

// NewKey is the body of POST /access-auth/keys.
type NewKey struct {
	Name        string     `json:"name"`
	Description string     `json:"description"`
	Kind        string     `json:"kind"`       // "" or generated; imported takes APIKey and APISecret
	APIKey      string     `json:"api_key"`    // imported only
	APISecret   string     `json:"api_secret"` // imported only
	Enabled     *bool      `json:"enabled"`    // default true
	ExpiresAt   *time.Time `json:"expires_at"`
}

// KeyPatch is the body of PATCH /access-auth/keys/{id}.
type KeyPatch struct {
	Name        Optional[string]    `json:"name"`
	Description Optional[string]    `json:"description"`
	Enabled     Optional[bool]      `json:"enabled"`
	ExpiresAt   Optional[time.Time] `json:"expires_at"`
}

// KeyFilter narrows GET /access-auth/keys. Name and APIKey are exact
// lookups in an index (one read); Query, Enabled and Kind are checked on
// each key, so a page of them examines at most KeyScanBudget keys.
type KeyFilter struct {
	Name    string // exact
	APIKey  string // exact
	Query   string // substring of the name, ID or APIKey, ignoring case
	Enabled *bool
	Kind    string // KindGenerated or KindImported
}

// NewAuthorization is the body of POST /access-auth/authorizations.
type NewAuthorization struct {
	AccessKeyID string     `json:"access_key_id"` // either this
	APIKey      string     `json:"api_key"`       // or this
	Description string     `json:"description"`
	Enabled     *bool      `json:"enabled"` // default true
	ValidFrom   *time.Time `json:"valid_from"`
	ValidUntil  *time.Time `json:"valid_until"`
	AllowedIPs  []string   `json:"allowed_ips"`
	Bindings    []Binding  `json:"bindings"`
	Plan        PlanRef    `json:"plan"`
}

// AuthorizationPatch is the body of PATCH /access-auth/authorizations/{id}.
type AuthorizationPatch struct {
	Description Optional[string]    `json:"description"`
	Enabled     Optional[bool]      `json:"enabled"`
	ValidFrom   Optional[time.Time] `json:"valid_from"`
	ValidUntil  Optional[time.Time] `json:"valid_until"`
	AllowedIPs  Optional[[]string]  `json:"allowed_ips"`
	Plan        Optional[string]    `json:"plan"` // null detaches
}

// NewPlan is the body of POST /access-auth/plans.
type NewPlan struct {
	Name        string     `json:"name"`
	Description string     `json:"description"`
	Rate        *PlanRate  `json:"rate"`
	Burst       int64      `json:"burst"`
	Quota       *PlanQuota `json:"quota"`
}

// PlanPatch is the body of PATCH /access-auth/plans/{name}; null clears
// rate or quota (one must remain).
type PlanPatch struct {
	Description Optional[string]    `json:"description"`
	Rate        Optional[PlanRate]  `json:"rate"`
	Burst       Optional[int64]     `json:"burst"`
	Quota       Optional[PlanQuota] `json:"quota"`
}

// AuthorizationFilter narrows GET /access-auth/authorizations.
type AuthorizationFilter struct {
	AccessKeyID string
	Group       string
}

// Page asks for one page of a list. Cursor is opaque ("" = first page).
type Page struct {
	Limit  int // 1..500, the admin API defaults to 50
	Cursor string
}

// Export is the whole data set, secrets encrypted under the master key, as
// GET /access-auth/export answers and POST /access-auth/import takes.
type Export struct {
	Version        int             `json:"version"`
	ExportedAt     time.Time       `json:"exported_at"`
	Keys           []ExportedKey   `json:"keys"`
	Authorizations []Authorization `json:"authorizations"`
	Groups         []Group         `json:"groups"`
	Plans          []Plan          `json:"plans"`
}

// ExportedKey is an access key with its sealed secrets.
type ExportedKey struct {
	AccessKey
	SealedSecret         string `json:"sealed_secret"`
	SealedPreviousSecret string `json:"sealed_previous_secret,omitempty"`
}

// Change is one message of the change feed: the API keys whose compiled
// credentials changed with revision Revision. Reset asks listeners to drop
// everything they cached (the feed had a gap).
type Change struct {
	Revision uint64
	APIKeys  []string
	Reset    bool
	// At is when the change was committed, by the clock of the store (the
	// Redis server's, to the millisecond): receivers measure propagation
	// lag from it. Zero when unknown (a Reset).
	At time.Time
}

// The Store API (implemented by *Store in store.go, opened with
// Open(Backend, Options)). Validation errors are *InvalidArgumentError naming
// the JSON field; lookups of a missing id or name wrap ErrNotFound; every
// error keeps its sentinel under errors.Is. An imported api_key already in
// use is ErrNameTaken with a message naming api_key.
//
//	CreateKey(ctx, NewKey, Actor) (AccessKey, error)           // answer carries APISecret
//	GetKey(ctx, id) (AccessKey, error)
//	ListKeys(ctx, KeyFilter, Page) ([]AccessKey, string, error)  // items, next cursor
//	UpdateKey(ctx, id, KeyPatch, Actor) (AccessKey, error)
//	ResetKey(ctx, id, grace time.Duration, Actor) (AccessKey, error) // answer carries APISecret
//	DeleteKey(ctx, id, Actor) error                              // ErrKeyInUse
//	KeyGroups(ctx, id) ([]Binding, error)                        // the caller's view
//	CreateAuthorization(ctx, NewAuthorization, Actor) (Authorization, error)
//	GetAuthorization(ctx, id) (Authorization, error)
//	ListAuthorizations(ctx, AuthorizationFilter, Page) ([]Authorization, string, error)
//	UpdateAuthorization(ctx, id, AuthorizationPatch, Actor) (Authorization, error)
//	DeleteAuthorization(ctx, id, Actor) error
//	Bind(ctx, authorizationID string, Binding, Actor) (Authorization, error)   // idempotent
//	Unbind(ctx, authorizationID string, Binding, Actor) (Authorization, error) // Environment "" = every environment; nothing bound: ErrNotFound
//	CreateGroup(ctx, Group, Actor) (Group, error)                // ErrNameTaken
//	GetGroup(ctx, name) (Group, error)                           // ErrNotFound (ErrGroupNotFound is for bindings)
//	ListGroups(ctx, Page) ([]Group, string, error)
//	GroupAuthorizations(ctx, name, Page) ([]Authorization, string, error)
//	DeleteGroup(ctx, name, Actor) error                          // removes its bindings
//	RegisterGroup(ctx, name, environment) error                  // routes: create if missing, add env; idempotent, no audit actor but "route"
//	CreatePlan(ctx, NewPlan, Actor) (Plan, error)               // ErrNameTaken
//	GetPlan(ctx, name) (Plan, error)                             // ErrNotFound (ErrPlanNotFound is for attaching)
//	ListPlans(ctx, Page) ([]Plan, string, error)                 // name order
//	UpdatePlan(ctx, name, PlanPatch, Actor) (Plan, error)        // announces the keys that use it
//	DeletePlan(ctx, name, Actor) error                           // ErrPlanInUse
//	ListAudit(ctx, Page) ([]AuditRecord, string, error)          // newest first
//	Export(ctx) (Export, error)
//	Import(ctx, Export, Actor) error                             // atomic merge: same id/name replaced, rest kept; idempotent
//	Apply(ctx, DesiredState, ApplyOptions, Actor) (ApplyResult, error) // one transaction; no write when nothing differs (docs/apply.md)
//	LoadCredential(ctx, apiKey) (*Credential, error)             // one backend read; ErrNotFound; ErrUnsealable
//	CheckMasterKeys(ctx) error                                   // at start: *MasterKeyMismatchError when secrets would be lost
//	MarkUsed(ctx, map[string]time.Time) error                    // access key ID → last use; no audit, no change
//	Subscribe(ctx) <-chan Change                                  // the change feed; closed when ctx ends
//	Close() error                                                 // closes the Backend too
