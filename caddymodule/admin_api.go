package caddymodule

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"unicode/utf8"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/accessauth/caddy-access-auth/admin"
)

func init() {
	caddy.RegisterModule(adminAPI{})
	caddy.RegisterModule(new(AdminHandler))
}

// Audit actors of the two ways into the admin API.
const (
	actorAdminEndpoint = "admin-endpoint"
	actorRemoteAdmin   = "remote-admin"
)

// adminAPI serves the access_auth admin API on Caddy's admin endpoint, over
// the store of the running config. Caddy makes it with no config and never
// cleans it up, so it holds nothing: each request finds the running app.
type adminAPI struct{}

// CaddyModule returns the Caddy module information.
func (adminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.access_auth",
		New: func() caddy.Module { return adminAPI{} },
	}
}

// Routes returns the route of the /access-auth/ paths.
func (adminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{{
		Pattern: admin.PathPrefix,
		Handler: caddy.AdminHandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			if !localAdminClient(r) {
				writeAdminError(w, http.StatusForbidden, "forbidden", errAdminNotLocal.Error())
				return nil
			}
			serveAdmin(w, r, current.Load(), actorAdminEndpoint)
			return nil
		}),
	}}
}

var errAdminNotLocal = errors.New("the access_auth admin API answers only local clients on Caddy's admin endpoint; " +
	"from the network use the access_auth_admin handler (bearer token) or Caddy's remote admin (mutual TLS)")

// localAdminClient reports whether a request to the admin endpoint may use
// the admin API without a token: it came over a Unix socket, from a loopback
// address, or through Caddy's remote admin, whose TLS client certificates
// already authenticated it. An admin endpoint bound to a public address must
// not hand out access keys to whoever reaches it.
func localAdminClient(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip, err := netip.ParseAddr(host)
	return err != nil || ip.IsLoopback() // not an IP address: a Unix socket
}

// serveAdmin answers an admin API request with app's store, or 503 when
// no app runs or its store cannot be opened.
func serveAdmin(w http.ResponseWriter, r *http.Request, app *App, actor string) {
	if app == nil {
		writeStoreUnavailable(w, errAppStopped.Error())
		return
	}
	api, err := app.adminHandler(actor)
	if err != nil {
		writeStoreUnavailable(w, err.Error())
		return
	}
	api.ServeHTTP(w, r)
}

func writeStoreUnavailable(w http.ResponseWriter, message string) {
	writeAdminError(w, http.StatusServiceUnavailable, "store_unavailable", message)
}

// writeAdminError answers in the admin API's error shape.
func writeAdminError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"error":%q,"code":%q}`+"\n", message, code)
}

// adminHandler returns the admin API over the app's store for one audit
// actor, making it on first use.
func (a *App) adminHandler(actor string) (http.Handler, error) {
	st, err := a.acquire()
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if h, ok := a.admins[actor]; ok {
		return h, nil
	}
	h := admin.New(st.store, admin.Options{
		Configured: a.configured,
		Explainer:  explainer{a},
		Actor:      func(*http.Request) string { return actor },
		Logger:     a.logger.Named("admin"),
	})
	if a.admins == nil {
		a.admins = make(map[string]http.Handler)
	}
	a.admins[actor] = h
	return h, nil
}

// AdminHandler serves the access_auth admin API on a site, at the same
// /access-auth/ paths as the admin endpoint, to requests that carry
// "Authorization: Bearer <token>" with one of its tokens. Requests for
// other paths go on to the next handler.
type AdminHandler struct {
	// Bearer tokens that grant access; required. {env.*} placeholders work.
	Tokens []string `json:"tokens,omitempty"`
	// Serve the web console at /access-auth/console/. Default on. Its
	// files need no token (they hold no secrets); the API calls it makes
	// carry the token its user signs in with. Off: its paths answer 404.
	Console *bool `json:"console,omitempty"`

	app     *App
	serve   http.Handler
	console http.Handler
}

// CaddyModule returns the Caddy module information.
func (*AdminHandler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.access_auth_admin",
		New: func() caddy.Module { return new(AdminHandler) },
	}
}

// Provision resolves the tokens and finds the access_auth app.
func (h *AdminHandler) Provision(ctx caddy.Context) error {
	if err := h.check(); err != nil {
		return fmt.Errorf("access_auth_admin: %w", err)
	}
	repl := caddy.NewReplacer()
	tokens := make([]string, 0, len(h.Tokens))
	for i, t := range h.Tokens {
		replaced := repl.ReplaceKnown(t, "")
		if replaced == "" {
			continue
		}
		if err := checkTokenLength(i, replaced, " once its placeholders are replaced"); err != nil {
			return fmt.Errorf("access_auth_admin: %w", err)
		}
		tokens = append(tokens, replaced)
	}
	if len(tokens) == 0 {
		return errors.New("access_auth_admin: token: required, and every token is empty (is an {env.*} variable unset?)")
	}
	appModule, err := ctx.App("access_auth")
	if err != nil {
		return err
	}
	h.app = appModule.(*App)
	h.serve = admin.RequireToken(tokens, ctx.Logger(), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serveAdmin(w, r, h.app, actorRemoteAdmin)
	}))
	h.console = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeAdminError(w, http.StatusNotFound, "not_found", "the web console is off (console off)")
	})
	if h.Console == nil || *h.Console {
		h.console = admin.Console()
	}
	return nil
}

// minTokenLength is the shortest token access_auth_admin takes: 32 hex
// characters are 128 random bits, beyond guessing.
const minTokenLength = 32

// tokenAdvice says how to make a token and how to give it.
const tokenAdvice = "a token needs at least 32 characters: make one with `openssl rand -hex 32` and give it as " +
	"token {env.ACCESS_AUTH_ADMIN_TOKEN}, not literally (Caddy shows its configuration at /config/ and saves it in autosave.json)"

// check validates the handler's fields; the Caddyfile adapter runs it too.
// A token with a placeholder is checked in Provision, once replaced.
func (h *AdminHandler) check() error {
	if len(h.Tokens) == 0 {
		return errors.New("token: required (token <token>...); requests must carry Authorization: Bearer <token>")
	}
	for i, t := range h.Tokens {
		if err := checkToken(i, t); err != nil {
			return err
		}
	}
	return nil
}

// checkToken checks the i-th token as configured: one with a placeholder
// passes (it is replaced, then checked, in Provision).
func checkToken(i int, token string) error {
	if strings.Contains(token, "{") {
		return nil
	}
	return checkTokenLength(i, token, "")
}

// checkTokenLength refuses the i-th token when it is too short; the error
// names the token by its place and length, never by its value.
func checkTokenLength(i int, token, when string) error {
	if n := utf8.RuneCountInString(token); n < minTokenLength {
		return fmt.Errorf("token %d: %d characters%s is too short; %s", i+1, n, when, tokenAdvice)
	}
	return nil
}

// ServeHTTP serves the web console and the admin API paths and passes every
// other request on.
func (h *AdminHandler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	switch {
	case admin.IsConsolePath(r.URL.Path):
		h.console.ServeHTTP(w, r)
	case strings.HasPrefix(r.URL.Path, admin.PathPrefix):
		h.serve.ServeHTTP(w, r)
	default:
		return next.ServeHTTP(w, r)
	}
	return nil
}

// Interface guards
var (
	_ caddy.AdminRouter           = adminAPI{}
	_ caddy.Provisioner           = (*AdminHandler)(nil)
	_ caddyhttp.MiddlewareHandler = (*AdminHandler)(nil)
)
