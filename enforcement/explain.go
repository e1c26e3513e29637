package enforcement

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/accessauth/caddy-access-auth/cache"
	"github.com/accessauth/caddy-access-auth/limits"
	"github.com/accessauth/caddy-access-auth/replay"
	"github.com/accessauth/caddy-access-auth/signature"
)

// The steps of an Explanation, in the order of the check
// (docs/explain.md).
const (
	StepRoute         = "route"
	StepCredentials   = "credentials"
	StepKey           = "key"
	StepKeyEnabled    = "key_enabled"
	StepDate          = "date"
	StepBody          = "body"
	StepSignature     = "signature"
	StepBodyHash      = "body_hash"
	StepReplay        = "replay"
	StepAuthorization = "authorization"
	StepBinding       = "binding"
	StepClientIP      = "client_ip"
	StepUsagePlan     = "usage_plan"
)

// ExplainRequest is a captured request to explain.
type ExplainRequest struct {
	// Request is the request as the client sent it: method, host, escaped
	// path, query and headers.
	Request signature.Request
	Body    []byte
	// Group and Environment are what the authorization steps check; with
	// no Group they are skipped. Environment "" is the check's own.
	Group, Environment string
	// ClientIP is the caller's address; the client IP step is skipped
	// when it is not valid.
	ClientIP netip.Addr
	// Route says which route's settings the check runs with; when set it
	// is the first step.
	Route string
}

// Step is one step of an explained check: whether it passed and what it
// computed. A detail never holds a secret nor the expected signature.
type Step struct {
	Name   string
	OK     bool
	Detail string
}

// Explanation is what the check computes for a request, step by step.
type Explanation struct {
	Decision    Reason
	Scheme      signature.Scheme // 0 when the request names none
	APIKey      string
	AccessKeyID string
	Steps       []Step
	// Forms are the canonical forms the signature check hashed, the
	// documented one first; nil when the check stopped before it.
	Forms []signature.Form
}

// Explain runs the check on in as Check would, noting each step, and
// changes nothing: the replay step asks whether the nonce is recorded
// without recording it (it says so when the route's replay store cannot
// be asked that way), and no body is passed on.
func (c *Checker) Explain(ctx context.Context, in ExplainRequest) Explanation {
	x := &explainer{skipAuth: in.Group == "", skipIP: !in.ClientIP.IsValid()}
	if in.Route != "" {
		x.note(StepRoute, true, in.Route)
	}
	environment := in.Environment
	if environment == "" {
		environment = c.cfg.Environment
	}
	d := Decision{Identity: Identity{Group: in.Group, Environment: environment}, fallbackScheme: c.fallbackScheme}
	defer d.Cleanup()
	c.run(ctx, explainedRequest(in), &in.Request, in.ClientIP, c.cfg.Now(), &d, x)
	return Explanation{
		Decision:    d.Reason,
		Scheme:      d.Identity.Scheme,
		APIKey:      d.Identity.APIKey,
		AccessKeyID: d.Identity.AccessKeyID,
		Steps:       x.steps,
		Forms:       x.forms,
	}
}

// explainedRequest is the server request the check reads the body from
// (the signature is checked against in.Request).
func explainedRequest(in ExplainRequest) *http.Request {
	req := in.Request
	r := &http.Request{
		Method:        req.Method,
		URL:           &url.URL{RawQuery: req.RawQuery},
		Host:          req.Host,
		Header:        req.Header,
		ContentLength: int64(len(in.Body)),
		Body:          http.NoBody,
	}
	if len(in.Body) > 0 {
		r.Body = io.NopCloser(bytes.NewReader(in.Body))
	}
	return r
}

// explainer collects the steps of an explained check. Its methods do
// nothing on a nil explainer: the check calls them on every request.
type explainer struct {
	steps    []Step
	forms    []signature.Form
	skipAuth bool // no group given: no authorization steps
	skipIP   bool // no client address given
}

func (x *explainer) note(name string, ok bool, detail string) {
	x.steps = append(x.steps, Step{Name: name, OK: ok, Detail: detail})
}

func (x *explainer) credentials(scheme signature.Scheme, cr *signature.Credentials, reason Reason) {
	if x == nil {
		return
	}
	switch {
	case reason != Allowed && scheme == 0:
		x.note(StepCredentials, false, reason.String()+": no credentials of an accepted scheme")
	case reason != Allowed:
		x.note(StepCredentials, false, fmt.Sprintf("%s: scheme %s, %s", reason, scheme, reason.MessageFor(scheme)))
	default:
		detail := fmt.Sprintf("scheme %s, API key %s", scheme, cr.APIKey)
		if cr.Region != "" || cr.Service != "" {
			detail += fmt.Sprintf(", region %q, service %q", cr.Region, cr.Service)
		}
		x.note(StepCredentials, true, detail)
	}
}

func (x *explainer) key(apiKey string, e *cache.Entry, reason Reason) {
	switch {
	case x == nil:
	case reason == InvalidKey:
		x.note(StepKey, false, fmt.Sprintf("invalid_key: no access key has API key %s", apiKey))
	case reason != Allowed:
		x.note(StepKey, false, reason.String()+": the key is not cached and the store cannot be reached")
	default:
		x.note(StepKey, true, "access key "+e.AccessKeyID)
	}
}

func (x *explainer) keyUsable(e *cache.Entry, now time.Time, ok bool) {
	if x == nil {
		return
	}
	expires := e.ExpiresAt()
	switch {
	case !e.Enabled:
		x.note(StepKeyEnabled, false, "invalid_key: the key is disabled")
	case !ok:
		x.note(StepKeyEnabled, false, "invalid_key: the key expired at "+expires.Format(time.RFC3339))
	case expires.IsZero():
		x.note(StepKeyEnabled, true, "enabled, does not expire")
	default:
		x.note(StepKeyEnabled, true, "enabled, expires at "+expires.Format(time.RFC3339))
	}
}

func (x *explainer) date(cr *signature.Credentials, skew, maxSkew time.Duration, ok bool) {
	if x == nil {
		return
	}
	detail := fmt.Sprintf("signed at %s, %s the gateway's clock (max_skew %s)",
		cr.Date.UTC().Format(time.RFC3339), skewText(skew), maxSkew)
	if !ok {
		detail = "date_out_of_range: " + detail
	}
	x.note(StepDate, ok, detail)
}

// skewText says how far a request's date is from the clock, and which way.
func skewText(skew time.Duration) string {
	skew = skew.Round(time.Millisecond)
	if skew < 0 {
		return (-skew).String() + " ahead of"
	}
	return skew.String() + " behind"
}

func (x *explainer) body(r *http.Request, payloadHash string, reason Reason) {
	switch {
	case x == nil:
	case reason != Allowed:
		x.note(StepBody, false, fmt.Sprintf("%s: %d-byte body", reason, r.ContentLength))
	case r.ContentLength == 0 && payloadHash == "":
		x.note(StepBody, true, "no body")
	case payloadHash == "":
		x.note(StepBody, true, fmt.Sprintf("%d-byte body, signed as the scheme signs bodies (Content-MD5, form parameters)", r.ContentLength))
	default:
		x.note(StepBody, true, fmt.Sprintf("%d-byte body, payload hash %s", r.ContentLength, payloadHash))
	}
}

func (x *explainer) signature(req *signature.Request, cr *signature.Credentials, payloadHash string, inScope, ok bool) {
	if x == nil {
		return
	}
	x.forms = signature.Forms(req, cr, payloadHash)
	names := make([]string, len(x.forms))
	for i, f := range x.forms {
		names[i] = f.Name
	}
	tried := strings.Join(names, ", ")
	switch {
	case !inScope:
		x.note(StepSignature, false, fmt.Sprintf("signature_mismatch: signed for region %q, service %q, which this route does not serve",
			cr.Region, cr.Service))
	case !ok:
		x.note(StepSignature, false, "signature_mismatch: the signature matches none of the canonical forms tried ("+tried+")")
	default:
		x.note(StepSignature, true, "the signature matches (canonical forms tried: "+tried+")")
	}
}

func (x *explainer) bodyHash(r *http.Request, reason Reason) {
	switch {
	case x == nil || r.ContentLength == 0:
	case reason != Allowed:
		x.note(StepBodyHash, false, reason.String()+": the body does not match its signed hash")
	default:
		x.note(StepBodyHash, true, "the body matches its signed hash (or is checked as it streams)")
	}
}

func (x *explainer) replayOff() {
	if x != nil {
		x.note(StepReplay, true, "replay protection is off on this route")
	}
}

// peekNonce is the replay step's verdict, asked without recording the
// nonce; a guard that cannot be asked so counts the nonce fresh, and the
// step says so.
func (x *explainer) peekNonce(ctx context.Context, g replay.Guard, t replay.Ticket, date, now time.Time, ttl time.Duration) replay.Verdict {
	p, ok := g.(replay.Peeker)
	if !ok {
		x.note(StepReplay, true, "not checked: this replay store cannot be asked without recording the nonce")
		return replay.Fresh
	}
	v := p.Peek(ctx, t, date, now, ttl)
	switch v {
	case replay.Replayed:
		x.note(StepReplay, false, "replayed_nonce: the nonce is recorded already")
	case replay.TooOld:
		x.note(StepReplay, false, "date_out_of_range: the nonce table cannot vouch for a request signed that long ago")
	case replay.Unavailable:
		x.note(StepReplay, false, "store_unavailable: the replay store cannot be reached")
	default:
		x.note(StepReplay, true, "the nonce is not recorded (explain does not record it)")
	}
	return v
}

func (x *explainer) skipsAuthorization() bool { return x != nil && x.skipAuth }

func (x *explainer) skipsClientIP() bool { return x != nil && x.skipIP }

func (x *explainer) authorization(a *cache.Authorization, now time.Time, ok bool) {
	if x == nil {
		return
	}
	if a == nil {
		x.note(StepAuthorization, false, "not_authorized: no authorization names the key")
		return
	}
	from, until := a.Window()
	window := "valid from " + timeText(from, "any time") + " until " + timeText(until, "no end")
	switch {
	case !a.Enabled:
		x.note(StepAuthorization, false, "not_authorized: authorization "+a.ID+" is disabled")
	case !ok:
		x.note(StepAuthorization, false, "not_authorized: authorization "+a.ID+" is not valid at "+
			now.UTC().Format(time.RFC3339)+" ("+window+")")
	default:
		x.note(StepAuthorization, true, "authorization "+a.ID+", enabled, "+window)
	}
}

// timeText is t in RFC 3339, or none for the zero Time.
func timeText(t time.Time, none string) string {
	if t.IsZero() {
		return none
	}
	return t.Format(time.RFC3339)
}

func (x *explainer) binding(group, environment string, ok bool) {
	if x == nil {
		return
	}
	if ok {
		x.note(StepBinding, true, fmt.Sprintf("bound to group %q, environment %q", group, environment))
		return
	}
	x.note(StepBinding, false, fmt.Sprintf("not_authorized: not bound to group %q, environment %q", group, environment))
}

func (x *explainer) clientIP(a *cache.Authorization, remote netip.Addr, ok bool) {
	switch {
	case x == nil:
	case !ok:
		x.note(StepClientIP, false, fmt.Sprintf("ip_not_allowed: %s is not in the authorization's allowed_ips", remote))
	case len(a.AllowedIPs) == 0:
		x.note(StepClientIP, true, fmt.Sprintf("%s: the authorization allows any address", remote))
	default:
		x.note(StepClientIP, true, fmt.Sprintf("%s is in the authorization's allowed_ips", remote))
	}
}

func (x *explainer) noPlan(group string) {
	if x != nil {
		x.note(StepUsagePlan, true, fmt.Sprintf("no usage plan governs group %q for this authorization", group))
	}
}

// plan notes the usage plan's standing, peeked without spending, and
// returns its decision.
func (x *explainer) plan(st limits.Standing, b limits.Budget) limits.Result {
	which := fmt.Sprintf("plan %q, the authorization's (one budget for all its groups)", b.Plan)
	if b.Group != "" {
		which = fmt.Sprintf("plan %q, the binding's (a budget of its own for group %q)", b.Plan, b.Group)
	}
	if !st.Applied {
		x.note(StepUsagePlan, true, which+": the store has no such plan or cannot be reached: no limit applies")
		return st.Result
	}
	var budgets []string
	if st.RateLeft.Checked {
		budgets = append(budgets, fmt.Sprintf("rate %d per %s, burst %d: %d of %d tokens left, whole in %ds",
			st.Rate.Requests, st.Rate.Per, st.Burst, st.RateLeft.Remaining, st.Rate.Requests+st.Burst, st.RateLeft.Reset))
	}
	if st.QuotaLeft.Checked {
		budgets = append(budgets, fmt.Sprintf("quota %d per %s: %d of %d left, resets in %ds",
			st.Quota.Requests, st.Quota.Period, st.QuotaLeft.Remaining, st.Quota.Requests, st.QuotaLeft.Reset))
	}
	detail := which + "; " + strings.Join(budgets, "; ")
	if reason := planReason(st.Verdict); reason != Allowed {
		x.note(StepUsagePlan, false, fmt.Sprintf("%s: %s; retry after %ds", reason, detail, st.RetryAfter))
	} else {
		x.note(StepUsagePlan, true, detail+" (explain spends none)")
	}
	return st.Result
}
