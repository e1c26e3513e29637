// Package enforcement is the request check of access authorization:
// credentials → signature → authorization and binding → decision. It does not
// import Caddy; caddymodule adapts it to a Caddy handler.
package enforcement

import (
	"context"
	"net/http"
	"net/netip"
	"time"

	"github.com/accessauth/caddy-access-auth/cache"
	"github.com/accessauth/caddy-access-auth/limits"
	"github.com/accessauth/caddy-access-auth/replay"
	"github.com/accessauth/caddy-access-auth/signature"
)

// Reason says why a request was refused (or Allowed). Its String is the
// stable `reason` of the error body.
type Reason uint8

// The reasons of docs/request-check.md, in the order of its table.
const (
	Allowed Reason = iota
	MissingCredentials
	MalformedCredentials
	MissingDate
	MissingSignedHeaders
	MissingNonce
	InvalidKey
	SignatureMismatch
	DateOutOfRange
	ReplayedNonce
	NotAuthorized
	IPNotAllowed
	BodyTooLarge
	RateLimited
	QuotaExceeded
	StoreUnavailable
	Overloaded
)

// Config is one route's check.
type Config struct {
	Group                string
	Environment          string // default "online"
	Schemes              signature.Schemes
	MaxSkew              time.Duration // default 15m
	MaxBody              int64         // default 100 MiB
	AllowUnsignedPayload bool
	Region               string           // "" = any
	Service              string           // "" = any
	Nonces               replay.Guard     // nil = replay protection off
	Now                  func() time.Time // default time.Now
	TempDir              string           // where large bodies are spooled, default os.TempDir()
	// Bodies bounds the bodies read before their signature is checked;
	// nil: no bound but max_body.
	Bodies *BodyBudget
	// Limits enforces usage plans; nil: plans are not enforced.
	Limits Limits
	// DebugSignature puts the canonical request and string to sign the
	// check computed into a signature_mismatch answer (WriteDenial).
	DebugSignature bool
	// ClientIP finds the client's address of a request checked without one
	// (an invalid remote): called only when the authorization limits the
	// addresses, so that most requests never compute it. nil: the remote
	// given is the address.
	ClientIP func(*http.Request) netip.Addr
}

// Keys looks API keys up; *cache.Cache implements it. Get returns
// cache.ErrUnknownKey for a key the store does not know and
// cache.ErrUnavailable when it cannot tell.
type Keys interface {
	Get(ctx context.Context, apiKey string) (*cache.Entry, error)
}

// Limits decides on the usage plan that governs a request and spends its
// tokens (Take), or says what it would decide spending nothing (Peek, for
// Explain); *limits.Limiter implements it.
type Limits interface {
	Take(ctx context.Context, b limits.Budget, now time.Time) limits.Result
	Peek(ctx context.Context, b limits.Budget, now time.Time) limits.Standing
}

// Identity is who a request was checked as. On a denial the fields known by
// then are set (Scheme and APIKey once the credentials parsed, the rest once
// the key was found), for the log.
type Identity struct {
	AccessKeyID     string
	APIKey          string
	AuthorizationID string
	Group           string
	Environment     string
	Scheme          signature.Scheme
}
