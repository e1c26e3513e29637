package caddymodule

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/accessauth/caddy-access-auth/enforcement"
	"github.com/accessauth/caddy-access-auth/replay"
	"github.com/accessauth/caddy-access-auth/signature"
	"github.com/accessauth/caddy-access-auth/store"
	dailyusage "github.com/accessauth/caddy-access-auth/usage"
)

func init() {
	caddy.RegisterModule(new(Handler))
}

// unreadBodyDrainTimeout bounds how long a refused request's unread body
// is read before the answer goes out: enough for a client sending at
// 256 KiB/s to get a graceful close, short for one that stalls.
const unreadBodyDrainTimeout = time.Second

// Headers set for the upstream with forward_identity on; with it off, client
// copies are removed all the same.
const (
	HeaderAccessKeyID     = "X-Access-Key-Id"
	HeaderAuthorizationID = "X-Access-Authorization-Id"
	HeaderGroup           = "X-Api-Group"
	HeaderEnvironment     = "X-Api-Environment"
)

// Handler lets a request through only when it is signed by an access key
// whose authorization is bound to the route's API group and environment;
// otherwise it answers itself with the JD Cloud error envelope.
//
// On success it sets `{http.auth.user.id}` (the access key ID) and the
// placeholders `{access_auth.access_key_id}`, `{access_auth.api_key}`,
// `{access_auth.authorization_id}`, `{access_auth.group}`,
// `{access_auth.environment}` and `{access_auth.scheme}`; on failure
// `{access_auth.reason}`.
type Handler struct {
	// The API group this route belongs to. Required.
	Group string `json:"group,omitempty"`
	// The group's environment. Default: online.
	Environment string `json:"environment,omitempty"`
	// Signature schemes accepted: jdcloud2, jdcloud3, sigv4, aliyun.
	// Default: all.
	Schemes []string `json:"schemes,omitempty"`
	// How far the request date may be from the clock, both ways. Default 15m.
	MaxSkew caddy.Duration `json:"max_skew,omitempty"`
	// auto (default: store with Redis, else local), store, local or off.
	ReplayProtection string `json:"replay_protection,omitempty"`
	// Largest body in bytes; larger bodies get 413. Default 100 MiB.
	MaxBody int64 `json:"max_body,omitempty"`
	// Accept an UNSIGNED-PAYLOAD content-sha256 header.
	AllowUnsignedPayload bool `json:"allow_unsigned_payload,omitempty"`
	// When set, the credential scope must name this region.
	Region string `json:"region,omitempty"`
	// When set, the credential scope must name this service.
	Service string `json:"service,omitempty"`
	// Remove Authorization and the scheme's signature headers before the
	// request goes on.
	HideCredentials bool `json:"hide_credentials,omitempty"`
	// Set the X-Access-Key-Id, X-Access-Authorization-Id, X-Api-Group and
	// X-Api-Environment request headers. Default on. Client copies are
	// removed either way.
	ForwardIdentity *bool `json:"forward_identity,omitempty"`
	// Set RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset on every
	// answer a usage plan governs (docs/usage-plans.md). Default on.
	RateLimitHeaders *bool `json:"rate_limit_headers,omitempty"`
	// Show, in a 401 signature_mismatch answer, the canonical request and
	// string to sign the gateway computed (never a secret nor the expected
	// signature), so an integrator can diff them against the client's.
	DebugSignature bool `json:"debug_signature,omitempty"`

	app     *App
	logger  *zap.Logger
	cfg     enforcement.Config
	replay  replay.Mode // never replay.ModeAuto once provisioned
	forward bool
	// rateLimitHeaders: RateLimit-* on the answers a plan governs.
	rateLimitHeaders bool
	metrics          *routeMetrics

	mu      sync.Mutex
	usage   *usage               // set before checker
	daily   *dailyusage.Recorder // set before checker
	checker atomic.Pointer[enforcement.Checker]
}

// CaddyModule returns the Caddy module information.
func (*Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.access_auth",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision prepares the check and registers the route's group with the
// access_auth app (which provisions the app when the config has none).
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	appModule, err := ctx.App("access_auth")
	if err != nil {
		return err
	}
	if err := registerMetrics(ctx); err != nil {
		return fmt.Errorf("access_auth: metrics: %w", err)
	}
	if h.DebugSignature {
		h.logger.Warn("debug_signature is on: signature_mismatch answers show callers the canonical request "+
			"and string to sign the gateway computed; turn it off once the integration works",
			zap.String("group", h.Group))
	}
	return h.provision(appModule.(*App))
}

// provision prepares the check for app's store.
func (h *Handler) provision(app *App) error {
	h.app = app
	if h.Environment == "" {
		h.Environment = enforcement.DefaultEnvironment
	}
	if err := h.check(); err != nil {
		return fmt.Errorf("access_auth: %w", err)
	}
	var schemes signature.Schemes // none: every scheme
	for _, name := range h.Schemes {
		s, _ := signature.ParseScheme(name) // check() refused unknown names
		schemes = schemes.With(s)
	}
	h.cfg = enforcement.Config{
		Group:                h.Group,
		Environment:          h.Environment,
		Schemes:              schemes,
		MaxSkew:              time.Duration(h.MaxSkew),
		MaxBody:              h.MaxBody,
		AllowUnsignedPayload: h.AllowUnsignedPayload,
		Region:               h.Region,
		Service:              h.Service,
		Bodies:               bodyBudget,
		DebugSignature:       h.DebugSignature,
		// Only an authorization with allowed_ips needs the address: most
		// requests skip the context lookups and the parse.
		ClientIP: clientIP,
	}
	h.replay, _ = replay.ParseMode(h.ReplayProtection) // check() refused unknown modes
	if h.replay == replay.ModeAuto {
		h.replay = replay.ModeLocal
		if app.isRedis() {
			h.replay = replay.ModeStore
		}
	}
	if h.replay == replay.ModeStore && !app.isRedis() {
		return errors.New("access_auth: replay_protection store: needs store redis in the access_auth global option; use local or auto")
	}
	h.forward = h.ForwardIdentity == nil || *h.ForwardIdentity
	h.rateLimitHeaders = h.RateLimitHeaders == nil || *h.RateLimitHeaders
	h.metrics = newRouteMetrics(h.Group)
	app.registerRoute(h.Group, h.Environment)
	app.registerExplained(h)
	return nil
}

// check validates the handler's fields; the Caddyfile adapter runs it too.
func (h *Handler) check() error {
	if h.Group == "" {
		return errors.New("group: required (access_auth <group>, or group <name> in the block)")
	}
	if err := checkGroup(h.Group); err != nil {
		return err
	}
	if err := checkEnvironment(h.Environment); err != nil {
		return err
	}
	if err := enforcement.CheckMaxSkew(time.Duration(h.MaxSkew)); err != nil {
		return err
	}
	if err := enforcement.CheckMaxBody(h.MaxBody); err != nil {
		return err
	}
	for _, name := range h.Schemes {
		if err := checkScheme(name); err != nil {
			return err
		}
	}
	return checkReplayProtection(h.ReplayProtection)
}

// The rules of the handler's fields, one each, so that the Caddyfile
// adapter can check a value at its token (and name its line).

func checkGroup(name string) error {
	if !store.ValidGroupName(name) {
		return fmt.Errorf("group: invalid name %q, expected [a-z0-9][a-z0-9_-]{0,63}", name)
	}
	return nil
}

// checkEnvironment applies the store's rule, so that every environment a
// binding can name can be served by a route ("" is the default).
func checkEnvironment(name string) error {
	if name != "" && !store.ValidEnvironment(name) {
		return fmt.Errorf("environment: invalid name %q, expected [A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name)
	}
	return nil
}

func checkScheme(name string) error {
	if _, err := signature.ParseScheme(name); err != nil {
		return fmt.Errorf("schemes: %w", err)
	}
	return nil
}

func checkReplayProtection(mode string) error {
	if _, err := replay.ParseMode(mode); err != nil {
		return fmt.Errorf("replay_protection: %w", err)
	}
	return nil
}

// ServeHTTP checks the request against the signature of the request as the
// client sent it, then passes it on or answers the denial.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	start := time.Now()
	checker, err := h.getChecker()
	if err != nil {
		h.metrics.observe(enforcement.StoreUnavailable, time.Since(start))
		h.deny(w, r, repl, enforcement.Decision{Reason: enforcement.StoreUnavailable}, err)
		return nil
	}
	decision := checker.CheckAt(r.Context(), r, originalRequest(r), netip.Addr{}, start)
	defer decision.Cleanup()
	h.metrics.observe(decision.Reason, time.Since(start))
	if decision.Plan.Applied {
		h.metrics.observePlan(decision.Plan.Verdict)
		if h.rateLimitHeaders {
			enforcement.SetRateLimitHeaders(w.Header(), decision.Plan)
		}
	}
	if decision.Reason != enforcement.Allowed {
		h.deny(w, r, repl, decision, nil)
		// A plan's refusal is the key's usage too: a provider bills on
		// what was let through and shows what was held back.
		if decision.Reason.HTTPStatus() == http.StatusTooManyRequests && decision.Identity.AccessKeyID != "" {
			h.daily.Record(decision.Identity.AccessKeyID, h.Group, true, start)
		}
		return nil
	}
	id := decision.Identity
	h.usage.record(id.AccessKeyID, start)
	// One provider answers the placeholders when they are used, instead of
	// seven values boxed into the replacer's map on every request (its
	// first entry allocates the map's storage). Set values come before
	// providers: an earlier handler's user ID is deleted so that ours wins,
	// as a Set would.
	repl.Delete("http.auth.user.id")
	repl.Map(func(key string) (any, bool) {
		switch key {
		case "http.auth.user.id", "access_auth.access_key_id":
			return id.AccessKeyID, true
		case "access_auth.api_key":
			return id.APIKey, true
		case "access_auth.authorization_id":
			return id.AuthorizationID, true
		case "access_auth.group":
			return id.Group, true
		case "access_auth.environment":
			return id.Environment, true
		case "access_auth.scheme":
			return id.Scheme.String(), true
		}
		return nil, false
	})
	if h.HideCredentials {
		hideCredentials(r.Header)
	}
	if h.forward {
		// Replacing the map entries drops any client-sent copies; the
		// four values share one backing array.
		values := [4]string{id.AccessKeyID, id.AuthorizationID, id.Group, id.Environment}
		r.Header[HeaderAccessKeyID] = values[0:1:1]
		r.Header[HeaderAuthorizationID] = values[1:2:2]
		r.Header[HeaderGroup] = values[2:3:3]
		r.Header[HeaderEnvironment] = values[3:4:4]
	} else {
		// Upstreams may trust these names: never pass a client's own on.
		for _, name := range [...]string{HeaderAccessKeyID, HeaderAuthorizationID, HeaderGroup, HeaderEnvironment} {
			delete(r.Header, name)
		}
	}
	err = next.ServeHTTP(w, r)
	if err != nil {
		// A streamed body that failed its signed hash (or max_body) only
		// shows once the next handler read it: answer the client's fault as
		// such, not as the proxy's 502.
		if reason := enforcement.BodyFailure(r); reason != enforcement.Allowed {
			decision.Reason = reason
			h.deny(w, r, repl, decision, err)
			return nil
		}
	}
	h.daily.Record(id.AccessKeyID, h.Group, false, start)
	return err
}

// deny answers a refused request and logs why (never a secret or a
// signature).
func (h *Handler) deny(w http.ResponseWriter, r *http.Request, repl *caddy.Replacer, d enforcement.Decision, cause error) {
	reason := d.Reason.String()
	repl.Set("access_auth.reason", reason)
	if r.ContentLength != 0 {
		// Before it answers, net/http reads up to 256 KiB of a body left
		// unread, so that the connection can be kept or closed gracefully;
		// a client that stalls its body would hold the answer until Caddy's
		// read timeout. Bound that wait.
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(unreadBodyDrainTimeout))
	}
	requestID, _ := repl.GetString("http.request.uuid")
	if ce := h.logger.Check(zapcore.InfoLevel, "request refused"); ce != nil {
		fields := []zap.Field{
			zap.String("reason", reason),
			zap.String("group", h.Group),
			zap.String("environment", h.Environment),
			zap.String("remote_ip", clientIP(r).String()),
			zap.String("request_id", requestID),
		}
		if d.Identity.AccessKeyID != "" {
			fields = append(fields, zap.String("access_key_id", d.Identity.AccessKeyID))
		}
		if d.Identity.APIKey != "" {
			fields = append(fields, zap.String("api_key", d.Identity.APIKey))
		}
		if cause != nil {
			fields = append(fields, zap.Error(cause))
		}
		ce.Write(fields...)
	}
	enforcement.WriteDenial(w, d, requestID)
}

// getChecker returns the route's check, building it on first use: the
// shared store and cache exist only once the app has started (or, when the
// http app started first, once this request asks for them).
func (h *Handler) getChecker() (*enforcement.Checker, error) {
	if c := h.checker.Load(); c != nil {
		return c, nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if c := h.checker.Load(); c != nil {
		return c, nil
	}
	st, err := h.app.acquire()
	if err != nil {
		return nil, err
	}
	cfg := h.cfg
	cfg.Nonces = st.replay.guard(h.replay)
	cfg.Limits = st.limiter
	c, err := enforcement.NewChecker(cfg, st.cache)
	if err != nil {
		return nil, err
	}
	h.usage, h.daily = st.usage, st.daily
	h.checker.Store(c)
	return c, nil
}

// originalRequest is the request as the client sent it, before any rewrite.
// Caddy's copy of the original request keeps its method and URL but not its
// Host or headers, which rewrites leave alone: those come from r.
func originalRequest(r *http.Request) signature.Request {
	method, u := r.Method, r.URL
	if o, ok := r.Context().Value(caddyhttp.OriginalRequestCtxKey).(http.Request); ok && o.URL != nil {
		method, u = o.Method, o.URL
	}
	return signature.Request{
		Method:   method,
		Host:     r.Host,
		Path:     u.EscapedPath(),
		RawQuery: u.RawQuery,
		Header:   r.Header,
	}
}

// clientIP is the client's address as Caddy determined it (trusted_proxies
// respected), else the connection's peer.
func clientIP(r *http.Request) netip.Addr {
	// Caddy leaves the variable empty when it has no server (tests).
	if s, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok && s != "" {
		if ip, err := netip.ParseAddr(s); err == nil {
			return ip.Unmap()
		}
	}
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

// hideCredentials removes Authorization and the signature headers of every
// scheme, so that no credential material, not even a second scheme's, goes
// upstream.
func hideCredentials(h http.Header) {
	for name := range h {
		if signature.IsCredentialHeader(name) {
			delete(h, name)
		}
	}
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
