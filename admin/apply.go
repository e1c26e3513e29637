package admin

import (
	"io"
	"net/http"
	"strconv"

	"github.com/accessauth/caddy-access-auth/store"
)

// apply brings the store to the state of an apply file (docs/apply.md) in
// one transaction and answers the diff and the secrets of the generated
// keys it created. ?dry_run=true only computes the diff; ?prune=true also
// deletes what the file neither declares nor refers to.
func (h *handler) apply(r *http.Request) (int, any, error) {
	var opts store.ApplyOptions
	for _, flag := range []struct {
		name string
		dst  *bool
	}{{"dry_run", &opts.DryRun}, {"prune", &opts.Prune}} {
		if s := r.URL.Query().Get(flag.name); s != "" {
			v, err := strconv.ParseBool(s)
			if err != nil {
				return 0, nil, invalid("%s must be true or false", flag.name)
			}
			*flag.dst = v
		}
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return 0, nil, bodyError(err)
	}
	// The store's parser, not decode: its errors name the path of the bad
	// entry, such as authorizations[3].bindings[0].group.
	desired, err := store.ParseDesiredState(body)
	if err != nil {
		return 0, nil, err
	}
	return ok(h.store.Apply(r.Context(), desired, opts, h.actor(r)))
}
