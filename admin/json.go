package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/accessauth/caddy-access-auth/store"
)

// apiError is an error answer: {"error": message, "code": code}.
type apiError struct {
	status  int
	code    string
	message string
}

func (e *apiError) Error() string { return e.message }

func invalid(format string, args ...any) error {
	return &apiError{http.StatusBadRequest, "invalid_argument", fmt.Sprintf(format, args...)}
}

// storeErrors maps the store's errors to answers; the store's own message
// is shown for 4xx, a generic one for 5xx (whose details go to the log).
var storeErrors = []struct {
	err    error
	status int
	code   string
}{
	{store.ErrNotFound, http.StatusNotFound, "not_found"},
	{store.ErrGroupNotFound, http.StatusNotFound, "group_not_found"},
	{store.ErrNameTaken, http.StatusConflict, "name_taken"},
	{store.ErrAuthorizationExists, http.StatusConflict, "authorization_exists"},
	{store.ErrKeyInUse, http.StatusConflict, "key_in_use"},
	{store.ErrPlanNotFound, http.StatusNotFound, "plan_not_found"},
	{store.ErrPlanInUse, http.StatusConflict, "plan_in_use"},
	{store.ErrUnavailable, http.StatusServiceUnavailable, "store_unavailable"},
	{context.DeadlineExceeded, http.StatusServiceUnavailable, "store_unavailable"},
	{context.Canceled, http.StatusServiceUnavailable, "store_unavailable"},
}

// classify turns any error into the answer the client gets.
func classify(err error) *apiError {
	var (
		answer   *apiError
		argument *store.InvalidArgumentError
		tooLarge *http.MaxBytesError
	)
	switch {
	case errors.As(err, &answer):
		return answer
	case errors.As(err, &argument):
		return &apiError{http.StatusBadRequest, "invalid_argument", argument.Error()}
	case errors.As(err, &tooLarge):
		return &apiError{http.StatusRequestEntityTooLarge, "body_too_large",
			fmt.Sprintf("request body is larger than %d bytes", tooLarge.Limit)}
	}
	for _, m := range storeErrors {
		if !errors.Is(err, m.err) {
			continue
		}
		if m.status >= http.StatusInternalServerError {
			return &apiError{m.status, m.code, store.ErrUnavailable.Error()}
		}
		return &apiError{m.status, m.code, err.Error()}
	}
	return &apiError{http.StatusInternalServerError, "internal", "internal error"}
}

func writeError(w http.ResponseWriter, e *apiError) {
	writeJSON(w, e.status, struct {
		Error string `json:"error"`
		Code  string `json:"code"`
	}{e.message, e.code})
}

// writeJSON writes every answer of the admin API, so each one carries the
// same headers. A 204 has no body.
func setJSONHeaders(h http.Header) {
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	setJSONHeaders(w.Header())
	if status == http.StatusNoContent {
		w.WriteHeader(status)
		return
	}
	b, err := json.Marshal(body)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":"internal error","code":"internal"}`)
	}
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// decode reads a request body holding exactly one JSON value into dst,
// refusing unknown fields. An empty body is an error unless optional.
func decode(r *http.Request, dst any, optional bool) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		if errors.Is(err, io.EOF) && optional {
			return nil
		}
		return bodyError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err != nil {
			return bodyError(err)
		}
		return invalid("request body must hold a single JSON value")
	}
	return nil
}

func bodyError(err error) error {
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return err
	case errors.Is(err, io.EOF):
		return invalid("request body is empty, expected a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return invalid("request body is truncated JSON")
	}
	return invalid("invalid JSON body: %v", err)
}

// List limits (docs/admin-api.md).
const (
	defaultLimit = 50
	maxLimit     = 500
)

// pageOf reads ?limit= and ?cursor=.
func pageOf(r *http.Request) (store.Page, error) {
	q := r.URL.Query()
	position, ok := decodeCursor(q.Get("cursor"))
	if !ok {
		return store.Page{}, invalid("cursor is not one this API gave out; take next_cursor of the previous page, or leave it out for the first")
	}
	page := store.Page{Limit: defaultLimit, Cursor: position}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxLimit {
			return page, invalid("limit must be a whole number from 1 to %d", maxLimit)
		}
		page.Limit = n
	}
	return page, nil
}

// listAnswer is the answer of every list; Items is never null.
type listAnswer[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor"`
}

func list[T any](items []T, next string, err error) (int, any, error) {
	return http.StatusOK, listAnswer[T]{Items: nonNil(items), NextCursor: encodeCursor(next)}, err
}

func ok[T any](v T, err error) (int, any, error) { return http.StatusOK, v, err }

func created[T any](v T, err error) (int, any, error) { return http.StatusCreated, v, err }

func noContent(err error) (int, any, error) { return http.StatusNoContent, nil, err }

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
