package admin

import (
	"io"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/accessauth/caddy-access-auth/store"
)

// Access keys. Only create and reset answer with api_secret.

func (h *handler) createKey(r *http.Request) (int, any, error) {
	var in store.NewKey
	if err := decode(r, &in, false); err != nil {
		return 0, nil, err
	}
	if err := checkTime("expires_at", in.ExpiresAt); err != nil {
		return 0, nil, err
	}
	return created(h.store.CreateKey(r.Context(), in, h.actor(r)))
}

func (h *handler) listKeys(r *http.Request) (int, any, error) {
	page, err := pageOf(r)
	if err != nil {
		return 0, nil, err
	}
	q := r.URL.Query()
	filter := store.KeyFilter{Name: q.Get("name"), APIKey: q.Get("api_key"), Query: q.Get("q"), Kind: q.Get("kind")}
	if len(filter.Query) > maxKeyQuery {
		return 0, nil, invalid("q must be at most %d bytes", maxKeyQuery)
	}
	if k := filter.Kind; k != "" && k != store.KindGenerated && k != store.KindImported {
		return 0, nil, invalid("kind must be %s or %s", store.KindGenerated, store.KindImported)
	}
	if s := q.Get("enabled"); s != "" {
		enabled, err := strconv.ParseBool(s)
		if err != nil {
			return 0, nil, invalid("enabled must be true or false")
		}
		filter.Enabled = &enabled
	}
	keys, next, err := h.store.ListKeys(r.Context(), filter, page)
	for i := range keys {
		keys[i].APISecret = ""
	}
	return list(keys, next, err)
}

// maxKeyQuery bounds ?q= of the key list: longer than any name, ID or
// APIKey it could be found in.
const maxKeyQuery = 256

func (h *handler) getKey(r *http.Request) (int, any, error) {
	return ok(withoutSecret(h.store.GetKey(r.Context(), r.PathValue("id"))))
}

func (h *handler) updateKey(r *http.Request) (int, any, error) {
	var patch store.KeyPatch
	if err := decode(r, &patch, false); err != nil {
		return 0, nil, err
	}
	if err := checkTime("expires_at", patch.ExpiresAt.Value); err != nil {
		return 0, nil, err
	}
	return ok(withoutSecret(h.store.UpdateKey(r.Context(), r.PathValue("id"), patch, h.actor(r))))
}

func (h *handler) deleteKey(r *http.Request) (int, any, error) {
	return noContent(h.store.DeleteKey(r.Context(), r.PathValue("id"), h.actor(r)))
}

// resetKey takes {"grace":"24h"}, or no body for no grace.
func (h *handler) resetKey(r *http.Request) (int, any, error) {
	var in struct {
		Grace string `json:"grace"`
	}
	if err := decode(r, &in, true); err != nil {
		return 0, nil, err
	}
	var grace time.Duration
	if in.Grace != "" {
		d, err := time.ParseDuration(in.Grace)
		if err != nil || d < 0 {
			return 0, nil, invalid("grace must be a duration such as 24h")
		}
		grace = d
	}
	return ok(h.store.ResetKey(r.Context(), r.PathValue("id"), grace, h.actor(r)))
}

func (h *handler) keyGroups(r *http.Request) (int, any, error) {
	bindings, err := h.store.KeyGroups(r.Context(), r.PathValue("id"))
	return list(bindings, "", err)
}

// checkTime refuses instants that JSON cannot carry once the store turns
// them to UTC (RFC 3339 has years 0000 to 9999 only).
func checkTime(field string, t *time.Time) error {
	if t != nil {
		if y := t.UTC().Year(); y < 1 || y > 9999 {
			return invalid("%s must lie between the years 0001 and 9999 (UTC)", field)
		}
	}
	return nil
}

func checkWindow(from, until *time.Time) error {
	if err := checkTime("valid_from", from); err != nil {
		return err
	}
	return checkTime("valid_until", until)
}

func withoutSecret(k store.AccessKey, err error) (store.AccessKey, error) {
	k.APISecret = ""
	return k, err
}

// Authorizations.

func (h *handler) createAuthorization(r *http.Request) (int, any, error) {
	var in store.NewAuthorization
	if err := decode(r, &in, false); err != nil {
		return 0, nil, err
	}
	if err := checkWindow(in.ValidFrom, in.ValidUntil); err != nil {
		return 0, nil, err
	}
	return created(tidy(h.store.CreateAuthorization(r.Context(), in, h.actor(r))))
}

func (h *handler) listAuthorizations(r *http.Request) (int, any, error) {
	page, err := pageOf(r)
	if err != nil {
		return 0, nil, err
	}
	q := r.URL.Query()
	filter := store.AuthorizationFilter{AccessKeyID: q.Get("access_key_id"), Group: q.Get("group")}
	return list(tidyAll(h.store.ListAuthorizations(r.Context(), filter, page)))
}

func (h *handler) getAuthorization(r *http.Request) (int, any, error) {
	return ok(tidy(h.store.GetAuthorization(r.Context(), r.PathValue("id"))))
}

func (h *handler) updateAuthorization(r *http.Request) (int, any, error) {
	var patch store.AuthorizationPatch
	if err := decode(r, &patch, false); err != nil {
		return 0, nil, err
	}
	if err := checkWindow(patch.ValidFrom.Value, patch.ValidUntil.Value); err != nil {
		return 0, nil, err
	}
	return ok(tidy(h.store.UpdateAuthorization(r.Context(), r.PathValue("id"), patch, h.actor(r))))
}

func (h *handler) deleteAuthorization(r *http.Request) (int, any, error) {
	return noContent(h.store.DeleteAuthorization(r.Context(), r.PathValue("id"), h.actor(r)))
}

// bind is idempotent and answers with the authorization.
func (h *handler) bind(r *http.Request) (int, any, error) {
	return ok(tidy(h.store.Bind(r.Context(), r.PathValue("id"), bindingOf(r), h.actor(r))))
}

// unbind without ?environment= removes every binding to the group: the key
// loses the group whatever environments it was bound to.
func (h *handler) unbind(r *http.Request) (int, any, error) {
	binding := store.Binding{Group: r.PathValue("group"), Environment: r.URL.Query().Get("environment")}
	_, err := h.store.Unbind(r.Context(), r.PathValue("id"), binding, h.actor(r))
	return noContent(err)
}

// bindingOf reads the group from the path, ?environment= (default "*")
// and ?plan= (default none).
func bindingOf(r *http.Request) store.Binding {
	q := r.URL.Query()
	env := q.Get("environment")
	if env == "" {
		env = store.AnyEnvironment
	}
	return store.Binding{Group: r.PathValue("group"), Environment: env, Plan: store.PlanRef(q.Get("plan"))}
}

// tidy answers empty lists as [] rather than null.
func tidy(a store.Authorization, err error) (store.Authorization, error) {
	a.AllowedIPs = nonNil(a.AllowedIPs)
	a.Bindings = nonNil(a.Bindings)
	return a, err
}

func tidyAll(as []store.Authorization, next string, err error) ([]store.Authorization, string, error) {
	for i := range as {
		as[i], _ = tidy(as[i], nil)
	}
	return as, next, err
}

// Groups.

func (h *handler) createGroup(r *http.Request) (int, any, error) {
	var in struct {
		Name         string   `json:"name"`
		Description  string   `json:"description"`
		Environments []string `json:"environments"`
	}
	if err := decode(r, &in, false); err != nil {
		return 0, nil, err
	}
	g := store.Group{Name: in.Name, Description: in.Description, Environments: in.Environments}
	return created(h.group(h.store.CreateGroup(r.Context(), g, h.actor(r))))
}

func (h *handler) listGroups(r *http.Request) (int, any, error) {
	page, err := pageOf(r)
	if err != nil {
		return 0, nil, err
	}
	groups, next, err := h.store.ListGroups(r.Context(), page)
	for i := range groups {
		groups[i], _ = h.group(groups[i], nil)
	}
	return list(groups, next, err)
}

func (h *handler) getGroup(r *http.Request) (int, any, error) {
	return ok(h.group(h.store.GetGroup(r.Context(), r.PathValue("name"))))
}

func (h *handler) deleteGroup(r *http.Request) (int, any, error) {
	return noContent(h.store.DeleteGroup(r.Context(), r.PathValue("name"), h.actor(r)))
}

func (h *handler) groupAuthorizations(r *http.Request) (int, any, error) {
	page, err := pageOf(r)
	if err != nil {
		return 0, nil, err
	}
	return list(tidyAll(h.store.GroupAuthorizations(r.Context(), r.PathValue("name"), page)))
}

// group fills in configured, which only the caller knows.
func (h *handler) group(g store.Group, err error) (store.Group, error) {
	g.Environments = nonNil(g.Environments)
	g.Configured = h.opts.Configured != nil && h.opts.Configured(g.Name)
	return g, err
}

// Audit, export and import.

func (h *handler) listAudit(r *http.Request) (int, any, error) {
	page, err := pageOf(r)
	if err != nil {
		return 0, nil, err
	}
	return list(h.store.ListAudit(r.Context(), page))
}

// export streams the data set. Once the first bytes are out an error can
// no longer change the status: the answer is cut short (invalid JSON) and
// the error logged.
func (h *handler) export(w http.ResponseWriter, r *http.Request) error {
	out := &startedWriter{w: w}
	err := h.store.ExportTo(r.Context(), out)
	if err != nil && out.started {
		h.log.Error("export cut short", zap.Error(err))
		return nil
	}
	return err
}

// startedWriter sets the JSON headers before the first byte of a stream.
type startedWriter struct {
	w       http.ResponseWriter
	started bool
}

func (s *startedWriter) Write(p []byte) (int, error) {
	if !s.started {
		s.started = true
		setJSONHeaders(s.w.Header())
		s.w.WriteHeader(http.StatusOK)
	}
	return s.w.Write(p)
}

// importData streams the body into the store. Caddy's admin server gives a
// whole request 10 s to arrive; an import of a million keys takes longer,
// so the read deadline moves on with every read instead: only a body that
// stalls for importIdle fails.
func (h *handler) importData(w http.ResponseWriter, r *http.Request) error {
	body := &movingDeadline{r: http.MaxBytesReader(w, r.Body, maxImportBytes), rc: http.NewResponseController(w)}
	summary, err := h.store.ImportFrom(r.Context(), body, h.actor(r))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, summary)
	return nil
}

// importIdle is how long an import's body may stall.
const importIdle = 30 * time.Second

// movingDeadline sets the connection's read deadline importIdle ahead
// before each read.
type movingDeadline struct {
	r  io.Reader
	rc *http.ResponseController
}

func (m *movingDeadline) Read(p []byte) (int, error) {
	_ = m.rc.SetReadDeadline(time.Now().Add(importIdle)) // unsupported: the server's own limit stays
	return m.r.Read(p)
}
