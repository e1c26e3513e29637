package admin

import (
	"context"
	"io"
	"net/http"
	"path"
	"time"

	"go.uber.org/zap"

	"github.com/accessauth/caddy-access-auth/store"
)

// Options configures the admin API handler.
type Options struct {
	// Configured reports whether a running route enforces the group; it
	// fills the groups' configured field. Nil means no group is configured.
	Configured func(group string) bool
	// Actor names who makes a request, for the audit log. Nil means "admin".
	Actor func(*http.Request) string
	// Logger receives store failures (never secrets). Nil discards them.
	Logger *zap.Logger
	// Explainer answers POST /access-auth/explain. Nil: 503.
	Explainer Explainer
}

// PathPrefix is the path every route of the admin API lies under; mount the
// handler there (Caddy's admin.api routes take a pattern prefix).
const PathPrefix = "/access-auth/"

// Body limits: a JSON request is small; an apply file carries a whole
// desired state; an import streams the whole data set (a million keys is
// about 1 GiB), one record of at most store.MaxImportRecordBytes in memory
// at a time.
const (
	maxBodyBytes  = 1 << 20
	maxApplyBytes = 64 << 20
)

var maxImportBytes int64 = 16 << 30

// storeAPI is the part of *store.Store the admin API uses; an interface so
// unit tests can make the store fail on demand.
type storeAPI interface {
	CreateKey(context.Context, store.NewKey, store.Actor) (store.AccessKey, error)
	GetKey(context.Context, string) (store.AccessKey, error)
	ListKeys(context.Context, store.KeyFilter, store.Page) ([]store.AccessKey, string, error)
	UpdateKey(context.Context, string, store.KeyPatch, store.Actor) (store.AccessKey, error)
	ResetKey(context.Context, string, time.Duration, store.Actor) (store.AccessKey, error)
	DeleteKey(context.Context, string, store.Actor) error
	KeyGroups(context.Context, string) ([]store.Binding, error)
	CreateAuthorization(context.Context, store.NewAuthorization, store.Actor) (store.Authorization, error)
	GetAuthorization(context.Context, string) (store.Authorization, error)
	ListAuthorizations(context.Context, store.AuthorizationFilter, store.Page) ([]store.Authorization, string, error)
	UpdateAuthorization(context.Context, string, store.AuthorizationPatch, store.Actor) (store.Authorization, error)
	DeleteAuthorization(context.Context, string, store.Actor) error
	Bind(context.Context, string, store.Binding, store.Actor) (store.Authorization, error)
	Unbind(context.Context, string, store.Binding, store.Actor) (store.Authorization, error)
	CreateGroup(context.Context, store.Group, store.Actor) (store.Group, error)
	GetGroup(context.Context, string) (store.Group, error)
	ListGroups(context.Context, store.Page) ([]store.Group, string, error)
	GroupAuthorizations(context.Context, string, store.Page) ([]store.Authorization, string, error)
	DeleteGroup(context.Context, string, store.Actor) error
	CreatePlan(context.Context, store.NewPlan, store.Actor) (store.Plan, error)
	GetPlan(context.Context, string) (store.Plan, error)
	ListPlans(context.Context, store.Page) ([]store.Plan, string, error)
	UpdatePlan(context.Context, string, store.PlanPatch, store.Actor) (store.Plan, error)
	DeletePlan(context.Context, string, store.Actor) error
	ListAudit(context.Context, store.Page) ([]store.AuditRecord, string, error)
	ExportTo(context.Context, io.Writer) error
	ImportFrom(context.Context, io.Reader, store.Actor) (store.ImportSummary, error)
	Apply(context.Context, store.DesiredState, store.ApplyOptions, store.Actor) (store.ApplyResult, error)
	Counts(context.Context, []string) ([]int64, error)
}

var _ storeAPI = (*store.Store)(nil)

// handler serves the admin API over a store.
type handler struct {
	store    storeAPI
	opts     Options
	log      *zap.Logger
	mux      *http.ServeMux
	patterns map[string]bool
}

// New returns the admin REST API (docs/admin-api.md) over s, serving the paths under
// /access-auth/. It does no authentication: put it behind Caddy's admin
// endpoint or RequireToken. s must not be nil.
func New(s *store.Store, opts Options) http.Handler {
	return newHandler(s, opts)
}

func newHandler(s storeAPI, opts Options) *handler {
	h := &handler{
		store:    s,
		opts:     opts,
		log:      opts.Logger,
		mux:      http.NewServeMux(),
		patterns: make(map[string]bool),
	}
	if h.log == nil {
		h.log = zap.NewNop()
	}
	h.routes()
	return h
}

func (h *handler) routes() {
	h.handle("POST /access-auth/keys", h.createKey)
	h.handle("GET /access-auth/keys", h.listKeys)
	h.handle("GET /access-auth/keys/{id}", h.getKey)
	h.handle("PATCH /access-auth/keys/{id}", h.updateKey)
	h.handle("DELETE /access-auth/keys/{id}", h.deleteKey)
	h.handle("POST /access-auth/keys/{id}/reset", h.resetKey)
	h.handle("GET /access-auth/keys/{id}/groups", h.keyGroups)
	h.handle("GET /access-auth/keys/{id}/usage", h.keyUsage)

	h.handle("POST /access-auth/authorizations", h.createAuthorization)
	h.handle("GET /access-auth/authorizations", h.listAuthorizations)
	h.handle("GET /access-auth/authorizations/{id}", h.getAuthorization)
	h.handle("PATCH /access-auth/authorizations/{id}", h.updateAuthorization)
	h.handle("DELETE /access-auth/authorizations/{id}", h.deleteAuthorization)
	h.handle("PUT /access-auth/authorizations/{id}/bindings/{group}", h.bind)
	h.handle("DELETE /access-auth/authorizations/{id}/bindings/{group}", h.unbind)

	h.handle("POST /access-auth/groups", h.createGroup)
	h.handle("GET /access-auth/groups", h.listGroups)
	h.handle("GET /access-auth/groups/{name}", h.getGroup)
	h.handle("DELETE /access-auth/groups/{name}", h.deleteGroup)
	h.handle("GET /access-auth/groups/{name}/authorizations", h.groupAuthorizations)

	h.handle("POST /access-auth/plans", h.createPlan)
	h.handle("GET /access-auth/plans", h.listPlans)
	h.handle("GET /access-auth/plans/{name}", h.getPlan)
	h.handle("PATCH /access-auth/plans/{name}", h.updatePlan)
	h.handle("DELETE /access-auth/plans/{name}", h.deletePlan)

	h.handle("GET /access-auth/audit", h.listAudit)
	h.handleStream("GET /access-auth/export", h.export)
	h.handleStream("POST /access-auth/import", h.importData)
	h.handleLimit("POST /access-auth/apply", maxApplyBytes, h.apply)

	h.handle("POST /access-auth/explain", h.explain)

	h.handle("GET /access-auth/openapi.json", h.openAPI)
}

// endpoint answers one request: the status and body of a success, or an
// error that fail turns into the JSON error answer.
type endpoint func(r *http.Request) (status int, body any, err error)

func (h *handler) handle(pattern string, fn endpoint) {
	h.handleLimit(pattern, maxBodyBytes, fn)
}

func (h *handler) handleLimit(pattern string, limit int64, fn endpoint) {
	h.patterns[pattern] = true
	h.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		status, body, err := fn(r)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		writeJSON(w, status, body)
	})
}

// handleStream routes to a handler that writes its own answer as it goes.
func (h *handler) handleStream(pattern string, fn func(w http.ResponseWriter, r *http.Request) error) {
	h.patterns[pattern] = true
	h.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if err := fn(w, r); err != nil {
			h.fail(w, r, err)
		}
	})
}

// ServeHTTP routes the request. Requests that match no route get the JSON
// error answers too, instead of ServeMux's plain-text ones, and unclean
// paths are not redirected (ServeMux would, even where a route matches).
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, pattern := h.mux.Handler(r); !h.patterns[pattern] || path.Clean(r.URL.Path) != r.URL.Path {
		h.unrouted(w, r)
		return
	}
	h.mux.ServeHTTP(w, r)
}

// unrouted answers 405 (with Allow) when the path exists under another
// method, else 404; unclean paths are not redirected.
func (h *handler) unrouted(w http.ResponseWriter, r *http.Request) {
	probe := &headerRecorder{header: make(http.Header)}
	h.mux.ServeHTTP(probe, r)
	if probe.status == http.StatusMethodNotAllowed {
		w.Header()["Allow"] = probe.header["Allow"]
		writeError(w, &apiError{http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed"})
		return
	}
	writeError(w, &apiError{http.StatusNotFound, "not_found", "no such endpoint"})
}

// headerRecorder keeps the status and headers ServeMux answers with and
// drops its plain-text body.
type headerRecorder struct {
	header http.Header
	status int
}

func (h *headerRecorder) Header() http.Header         { return h.header }
func (h *headerRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (h *headerRecorder) WriteHeader(status int)      { h.status = status }

// actor says who makes the request, for the audit record.
func (h *handler) actor(r *http.Request) store.Actor {
	name := "admin"
	if h.opts.Actor != nil {
		if n := h.opts.Actor(r); n != "" {
			name = n
		}
	}
	return store.Actor{Name: name, RemoteAddr: r.RemoteAddr}
}

// fail writes the JSON error answer for err, logging what the client is
// not told.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	e := classify(err)
	switch {
	case e.status == http.StatusServiceUnavailable:
		h.log.Warn("store unavailable", zap.String("method", r.Method), zap.String("route", r.Pattern), zap.Error(err))
	case e.status >= http.StatusInternalServerError:
		h.log.Error("admin request failed", zap.String("method", r.Method), zap.String("route", r.Pattern), zap.Error(err))
	}
	writeError(w, e)
}
