package enforcement

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"os"
	"time"

	"github.com/accessauth/caddy-access-auth/cache"
	"github.com/accessauth/caddy-access-auth/limits"
	"github.com/accessauth/caddy-access-auth/replay"
	"github.com/accessauth/caddy-access-auth/signature"
)

// Defaults of Config (docs/configuration.md).
const (
	DefaultEnvironment = "online"
	DefaultMaxSkew     = 15 * time.Minute
	// MaxMaxSkew bounds max_skew: a wider window accepts a request signed
	// that long ago (a leaked one stays usable) and keeps its nonce twice
	// as long.
	MaxMaxSkew     = 7 * 24 * time.Hour
	DefaultMaxBody = 100 << 20
)

// Checker is one route's request check. It is safe for concurrent use.
type Checker struct {
	cfg            Config
	keys           Keys
	keysAt         keysAt // keys, when it takes the check's clock reading
	wallClock      bool   // cfg.Now is time.Now: CheckAt may take the caller's reading
	nonceTTL       time.Duration
	fallbackScheme signature.Scheme // challenged when a request names no scheme
}

// NewChecker applies cfg's defaults, validates it and makes its check,
// which looks keys up in keys.
func NewChecker(cfg Config, keys Keys) (*Checker, error) {
	if keys == nil {
		return nil, errors.New("access_auth: no key source")
	}
	if cfg.Environment == "" {
		cfg.Environment = DefaultEnvironment
	}
	if cfg.Schemes == 0 {
		cfg.Schemes = signature.AllSchemes
	}
	if cfg.MaxSkew == 0 {
		cfg.MaxSkew = DefaultMaxSkew
	}
	if cfg.MaxBody == 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	wallClock := cfg.Now == nil
	if wallClock {
		cfg.Now = time.Now
	}
	switch {
	case cfg.Group == "":
		return nil, errors.New("access_auth: group: required")
	case cfg.Schemes&^signature.AllSchemes != 0:
		return nil, fmt.Errorf("access_auth: schemes: unknown scheme in set %#x", uint8(cfg.Schemes))
	}
	for _, err := range []error{CheckMaxSkew(cfg.MaxSkew), CheckMaxBody(cfg.MaxBody)} {
		if err != nil {
			return nil, fmt.Errorf("access_auth: %w", err)
		}
	}
	c := &Checker{cfg: cfg, keys: keys, wallClock: wallClock, nonceTTL: 2 * cfg.MaxSkew}
	if k, ok := keys.(keysAt); ok && wallClock {
		c.keysAt = k
	}
	c.fallbackScheme = cfg.Schemes.First()
	return c, nil
}

// Decision is the outcome of Check. Call Cleanup once the request is done
// with, whatever the reason: it releases a spooled body.
type Decision struct {
	Reason   Reason
	Identity Identity
	// Plan is the usage plan's decision (Applied false when no plan
	// governs the request or it was refused before that step).
	Plan limits.Result

	fallbackScheme signature.Scheme
	// debugForm is what the signature check hashed, for a
	// signature_mismatch answer with Config.DebugSignature; nil otherwise.
	debugForm *signature.Form
	lease     *bodyLease // a buffered body's share of the node's budget
	spool     *os.File
	spoolName string // set when the file could not be unlinked while open
}

// Cleanup releases what the check holds for the request (a buffered body's
// share of the node's budget, its temporary file). It is safe to call more
// than once.
func (d *Decision) Cleanup() {
	if d.lease != nil {
		d.lease.release()
		d.lease = nil
	}
	if d.spool == nil {
		return
	}
	d.spool.Close()
	if d.spoolName != "" {
		os.Remove(d.spoolName)
	}
	d.spool, d.spoolName = nil, ""
}

// Check decides on r in this order: credentials of an allowed scheme → API
// key known → key enabled and not expired → date within max_skew → body,
// read only when the signature needs it (no signed content hash, or a form
// whose parameters are signed; within the node's BodyBudget) → signature
// (with the previous secret during a rotation grace) → a body of at most
// 1 MiB with a signed hash, verified (a larger one is checked as it
// streams) → replay → authorization valid → binding to the route's group
// and environment → client IP → usage plan (rate, then quota; only a
// request that passed every other step spends its tokens). orig is the request as the client sent it
// (before any rewrite); remote the client's address (invalid: found with
// Config.ClientIP when a step needs it). When the decision allows a request
// with a body, r.Body has been replaced by one that is safe to pass on.
func (c *Checker) Check(ctx context.Context, r *http.Request, orig signature.Request, remote netip.Addr) Decision {
	return c.decide(ctx, r, &orig, remote, c.cfg.Now())
}

// CheckAt is Check at now, the caller's reading of the wall clock: a
// handler that times its decisions reads the clock anyway, and each reading
// costs ~40 ns. A Checker made with its own Config.Now reads that instead.
func (c *Checker) CheckAt(ctx context.Context, r *http.Request, orig signature.Request, remote netip.Addr, now time.Time) Decision {
	if !c.wallClock {
		now = c.cfg.Now()
	}
	return c.decide(ctx, r, &orig, remote, now)
}

// keysAt is a key source that takes the check's clock reading instead of
// reading the clock again (*cache.Cache).
type keysAt interface {
	GetAt(ctx context.Context, apiKey string, now time.Time) (*cache.Entry, error)
}

func (c *Checker) decide(ctx context.Context, r *http.Request, orig *signature.Request, remote netip.Addr, now time.Time) Decision {
	d := Decision{
		Identity:       Identity{Group: c.cfg.Group, Environment: c.cfg.Environment},
		fallbackScheme: c.fallbackScheme,
	}
	c.run(ctx, r, orig, remote, now, &d, nil)
	return d
}

// run sets d.Reason to the check's decision on r; x, when not nil, notes
// each step for Explain and has the replay step ask without recording. orig
// is copied once, into the pooled verification the check works in.
func (c *Checker) run(ctx context.Context, r *http.Request, orig *signature.Request, remote netip.Addr, now time.Time, d *Decision, x *explainer) {
	v := signature.NewVerification()
	v.Request = *orig
	d.Reason = c.check(ctx, r, v, remote, now, d, x)
	v.Release()
}

// check is the request check; every step notes itself to x when x is not
// nil, so that Explain reports what the check does, never a copy of it. The
// notes are called only when explaining: a request pays no call for them.
func (c *Checker) check(ctx context.Context, r *http.Request, v *signature.Verification, remote netip.Addr, now time.Time, d *Decision, x *explainer) Reason {
	cr, req := &v.Credentials, &v.Request
	if err := v.Parse(c.cfg.Schemes); err != nil {
		d.Identity.Scheme = signature.Sniff(req.Header, c.cfg.Schemes)
		reason := parseReason(err)
		if x != nil {
			x.credentials(d.Identity.Scheme, cr, reason)
		}
		return reason
	}
	if x != nil {
		x.credentials(cr.Scheme, cr, Allowed)
	}
	d.Identity.Scheme, d.Identity.APIKey = cr.Scheme, cr.APIKey

	var entry *cache.Entry
	var err error
	if c.keysAt != nil {
		entry, err = c.keysAt.GetAt(ctx, cr.APIKey, now)
	} else {
		entry, err = c.keys.Get(ctx, cr.APIKey)
	}
	if err != nil {
		reason := StoreUnavailable
		if errors.Is(err, cache.ErrUnknownKey) {
			reason = InvalidKey
		}
		if x != nil {
			x.key(cr.APIKey, nil, reason)
		}
		return reason
	}
	if x != nil {
		x.key(cr.APIKey, entry, Allowed)
	}
	d.Identity.APIKey, d.Identity.AccessKeyID = entry.APIKey, entry.AccessKeyID
	if entry.Authorization != nil {
		d.Identity.AuthorizationID = entry.Authorization.ID
	}
	usable := entry.Usable(now)
	if x != nil {
		x.keyUsable(entry, now, usable)
	}
	if !usable {
		return InvalidKey
	}
	skew := signedAgo(now, cr.Date)
	inRange := skew <= c.cfg.MaxSkew && skew >= -c.cfg.MaxSkew
	if x != nil {
		x.date(cr, skew, c.cfg.MaxSkew, inRange)
	}
	if !inRange {
		return DateOutOfRange
	}

	// The replay key: Parse gives the nonce as the signature covers it, and
	// takes a nonce-less scheme's signature in one spelling only, so a
	// replay written another way on the wire has the same key.
	nonce := cr.Nonce
	if nonce == "" {
		nonce = cr.Signature // schemes without a nonce: a signature is used once
	}
	// Prepared before the signature is verified: the node's table loads the
	// nonce's bucket meanwhile.
	var ticket replay.Ticket
	if c.cfg.Nonces != nil {
		ticket = c.cfg.Nonces.Prepare(entry.APIKey, nonce)
	}

	payloadHash, reason := c.prepareBody(r, cr, req, d)
	if x != nil {
		x.body(r, payloadHash, reason)
	}
	if reason != Allowed {
		return reason
	}
	// A request signed for another region or service than the route pins
	// carries a signature that is not valid here: signature_mismatch,
	// checked where the signature is, after the key and date, so that the
	// answer tells nothing more about the key.
	inScope := cr.InScope(c.cfg.Region, c.cfg.Service)
	matches := inScope && verify(v, entry, payloadHash, now)
	if x != nil {
		x.signature(req, cr, payloadHash, inScope, matches)
	}
	if !matches {
		if c.cfg.DebugSignature {
			d.debugForm = documentedForm(req, cr, payloadHash)
		}
		return SignatureMismatch
	}
	reason = verifySmallBody(r)
	if x != nil {
		x.bodyHash(r, reason)
	}
	if reason != Allowed {
		return reason
	}

	if c.cfg.Nonces == nil {
		if x != nil {
			x.replayOff()
		}
	} else {
		// A nonce is kept two skew windows from its request's date, not
		// from its arrival: a replay, which carries the same signed date,
		// is refused by the date check once the nonce expires, and its
		// expiry is known before the table is asked (see replay.LocalNonces).
		ttl := c.nonceTTL - skew // = date + nonceTTL - now, from the one reading
		var verdict replay.Verdict
		if x == nil {
			verdict = c.cfg.Nonces.Record(ctx, ticket, cr.Date, now, ttl)
		} else {
			verdict = x.peekNonce(ctx, c.cfg.Nonces, ticket, cr.Date, now, ttl)
		}
		switch verdict {
		case replay.Replayed:
			return ReplayedNonce
		case replay.TooOld:
			// The node's table started empty after a crash, or is full: it
			// can vouch only for requests signed more recently.
			return DateOutOfRange
		case replay.Unavailable:
			return StoreUnavailable
		}
	}

	if x.skipsAuthorization() {
		return Allowed
	}
	a := entry.Authorization
	valid := a != nil && a.ValidAt(now)
	if x != nil {
		x.authorization(a, now, valid)
	}
	if !valid {
		return NotAuthorized
	}
	bound := a.Allows(d.Identity.Group, d.Identity.Environment)
	if x != nil {
		x.binding(d.Identity.Group, d.Identity.Environment, bound)
	}
	if !bound {
		return NotAuthorized
	}
	if !x.skipsClientIP() {
		if len(a.AllowedIPs) > 0 && !remote.IsValid() && c.cfg.ClientIP != nil {
			remote = c.cfg.ClientIP(r)
		}
		allowed := a.AllowsIP(remote)
		if x != nil {
			x.clientIP(a, remote, allowed)
		}
		if !allowed {
			return IPNotAllowed
		}
	}
	if c.cfg.Limits != nil {
		plan, group := a.PlanBudget(d.Identity.Group, d.Identity.Environment)
		if plan == "" {
			if x != nil {
				x.noPlan(d.Identity.Group)
			}
			return Allowed
		}
		b := limits.Budget{AuthorizationID: a.ID, Group: group, Plan: plan}
		if x == nil {
			d.Plan = c.cfg.Limits.Take(ctx, b, now)
		} else {
			d.Plan = x.plan(c.cfg.Limits.Peek(ctx, b, now), b)
		}
		return planReason(d.Plan.Verdict)
	}
	return Allowed
}

// signedAgo is how long before now the request was signed (negative when
// its date is ahead of the gateway's clock): the one computation against
// the clock that the date step and the replay step's nonce expiry share.
// A signed date may be any year from 0000 to 9999, beyond int64
// nanoseconds: a difference of more than maxSignedAgo seconds saturates
// (as time.Time.Sub does, without its overflow check's Add and Equal).
func signedAgo(now, date time.Time) time.Duration {
	secs := now.Unix() - date.Unix()
	switch {
	case secs > maxSignedAgo:
		return math.MaxInt64
	case secs < -maxSignedAgo:
		return math.MinInt64
	}
	return time.Duration(secs)*time.Second + time.Duration(now.Nanosecond()-date.Nanosecond())
}

// maxSignedAgo bounds signedAgo's seconds well inside int64 nanoseconds
// (about 292 years) and far beyond any max_skew.
const maxSignedAgo = 100 * 365 * 24 * 3600

// planReason is the check's reason for a plan's verdict.
func planReason(v limits.Verdict) Reason {
	switch v {
	case limits.RateLimited:
		return RateLimited
	case limits.QuotaExceeded:
		return QuotaExceeded
	}
	return Allowed
}

// verify checks the signature with the key's secret, then with the secret
// it replaced while the rotation grace lasts.
func verify(v *signature.Verification, e *cache.Entry, payloadHash string, now time.Time) bool {
	if v.Verify(e.Secret, payloadHash) {
		return true
	}
	previous := e.PreviousSecretAt(now)
	return previous != nil && v.Verify(previous, payloadHash)
}

// documentedForm is the first form the signature check hashed (the
// documented one), nil when there is none.
func documentedForm(req *signature.Request, cr *signature.Credentials, payloadHash string) *signature.Form {
	if forms := signature.Forms(req, cr, payloadHash); len(forms) > 0 {
		return &forms[0]
	}
	return nil
}

func parseReason(err error) Reason {
	switch {
	case errors.Is(err, signature.ErrMissingCredentials):
		return MissingCredentials
	case errors.Is(err, signature.ErrMissingDate):
		return MissingDate
	case errors.Is(err, signature.ErrMissingSignedHeaders):
		return MissingSignedHeaders
	case errors.Is(err, signature.ErrMissingNonce):
		return MissingNonce
	}
	return MalformedCredentials
}

// The check finds the cache's clock-taking lookup by a type assertion; this
// guard (here, since cache cannot name keysAt) keeps it from drifting apart.
var _ keysAt = (*cache.Cache)(nil)
