// Package store holds the data model of access authorization (access keys,
// authorizations, groups and their bindings), the rules that keep it
// consistent, and Backend, the interface of the engines that persist it:
// store/bolt, an embedded bbolt file for a single node, and store/redis,
// Redis for several nodes. Every write is one atomic transaction that also
// appends an audit record and announces the API keys whose compiled
// credentials changed on the change feed.
package store

import (
	"encoding/json"
	"errors"
	"time"
)

// Kinds of access key.
const (
	KindGenerated = "generated"
	KindImported  = "imported"
)

// AnyEnvironment is the environment of a binding that covers every
// environment of its group.
const AnyEnvironment = "*"

// AccessKey is an API caller's credential. APISecret is set only in the
// answers to create and reset.
type AccessKey struct {
	ID                      string     `json:"id"`
	Name                    string     `json:"name"`
	Description             string     `json:"description"`
	Kind                    string     `json:"kind"`
	APIKey                  string     `json:"api_key"`
	Enabled                 bool       `json:"enabled"`
	ExpiresAt               *time.Time `json:"expires_at"`
	CreatedAt               time.Time  `json:"created_at"`
	UpdatedAt               time.Time  `json:"updated_at"`
	LastUsedAt              *time.Time `json:"last_used_at"`
	SecretRotatedAt         *time.Time `json:"secret_rotated_at"`
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at"`
	APISecret               string     `json:"api_secret,omitempty"`
}

// Binding grants an authorization access to one environment of a group
// (or every environment, with AnyEnvironment).
// Plan, when set, is the group's own usage plan for this binding, in place
// of the authorization's.
type Binding struct {
	Group       string  `json:"group"`
	Environment string  `json:"environment"`
	Plan        PlanRef `json:"plan"`
}

// PlanRef names a usage plan; "" is none, null in JSON. A string, not a
// pointer, so bindings stay comparable.
type PlanRef string

// MarshalJSON writes none as null.
func (p PlanRef) MarshalJSON() ([]byte, error) {
	if p == "" {
		return []byte("null"), nil
	}
	return json.Marshal(string(p))
}

// UnmarshalJSON reads null as none.
func (p *PlanRef) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*p = ""
		return nil
	}
	return json.Unmarshal(b, (*string)(p))
}

// Authorization names one access key and the groups it may call.
type Authorization struct {
	ID          string     `json:"id"`
	AccessKeyID string     `json:"access_key_id"`
	APIKey      string     `json:"api_key"`
	Description string     `json:"description"`
	Enabled     bool       `json:"enabled"`
	ValidFrom   *time.Time `json:"valid_from"`
	ValidUntil  *time.Time `json:"valid_until"`
	AllowedIPs  []string   `json:"allowed_ips"`
	Bindings    []Binding  `json:"bindings"`
	Plan        PlanRef    `json:"plan"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
}

// Group is an API group. Configured is filled in by the caller that knows
// which routes run (admin.Options.Configured); the store does not persist it.
type Group struct {
	Name         string    `json:"name"`
	Description  string    `json:"description"`
	Environments []string  `json:"environments"`
	CreatedAt    time.Time `json:"created_at"`
	Configured   bool      `json:"configured"`
}

// Periods of a plan's rate and of its quota.
const (
	PerSecond = "1s"
	PerMinute = "1m"
	PerHour   = "1h"

	PeriodDay   = "day"
	PeriodWeek  = "week"
	PeriodMonth = "month"
)

// Plan is a usage plan: a rate (with Burst extra requests at once) and a
// quota per calendar period in UTC, either optional but not both.
type Plan struct {
	Name        string     `json:"name"`
	Description string     `json:"description"`
	Rate        *PlanRate  `json:"rate"`
	Burst       int64      `json:"burst"`
	Quota       *PlanQuota `json:"quota"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
}

// PlanRate is Requests per Per (PerSecond, PerMinute or PerHour).
type PlanRate struct {
	Requests int64  `json:"requests"`
	Per      string `json:"per"`
}

// PlanQuota is Requests per calendar Period (PeriodDay, PeriodWeek from
// Monday, or PeriodMonth), UTC.
type PlanQuota struct {
	Requests int64  `json:"requests"`
	Period   string `json:"period"`
}

// AuditRecord is appended by every admin write.
type AuditRecord struct {
	At         time.Time `json:"at"`
	Actor      string    `json:"actor"`
	Action     string    `json:"action"`
	Target     string    `json:"target"`
	RemoteAddr string    `json:"remote_addr"`
}

// Actor says who makes a write, for the audit record.
type Actor struct {
	Name       string
	RemoteAddr string
}

// Credential is everything the request check needs for one API key, as one
// record: it is what a cache miss loads in one store round trip. Secrets are
// decrypted.
type Credential struct {
	AccessKeyID             string
	APIKey                  string
	Enabled                 bool
	ExpiresAt               time.Time // zero: never
	Secret                  string
	PreviousSecret          string                   // empty: none (LoadCredential leaves out an expired one)
	PreviousSecretExpiresAt time.Time                // end of the rotation grace: a cached entry must still check it
	Authorization           *CredentialAuthorization // nil: no authorization names the key
}

// CredentialAuthorization is the part of an authorization the check needs.
type CredentialAuthorization struct {
	ID         string
	Enabled    bool
	ValidFrom  time.Time // zero: open
	ValidUntil time.Time // zero: open
	AllowedIPs []string
	Bindings   []Binding // with their plans
	Plan       PlanRef   // the authorization's plan; "" none
}

// Errors with a stable meaning; the admin API maps them to its codes.
var (
	ErrNotFound            = errors.New("not found")
	ErrGroupNotFound       = errors.New("group not found")
	ErrNameTaken           = errors.New("name taken")
	ErrAuthorizationExists = errors.New("authorized access key repeated")
	ErrKeyInUse            = errors.New("access key is in use by an authorization")
	ErrPlanNotFound        = errors.New("plan not found")
	ErrPlanInUse           = errors.New("plan is in use by an authorization or binding")
	ErrUnavailable         = errors.New("store unavailable")
)

// InvalidArgumentError reports a bad field in an admin request.
type InvalidArgumentError struct {
	Field   string
	Message string
}

func (e *InvalidArgumentError) Error() string { return e.Field + ": " + e.Message }
