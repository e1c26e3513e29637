package e2e

import (
	"net/http"
	"strings"
	"testing"

	"github.com/accessauth/caddy-access-auth/internal/gatewaytest"
)

// TestValidateRefuses runs `caddy validate` on configurations the module
// must refuse, each with a message naming the directive and what it takes.
func TestValidateRefuses(t *testing.T) {
	for _, tc := range []struct {
		name   string
		routes string
		env    []string
		want   []string
	}{
		{"max_skew above 7 days", "access_auth orders {\n\t\tmax_skew 8d\n\t}\n\trespond ok", nil,
			[]string{"max_skew", "at most 7d"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, ok := gatewaytest.Validate(t, "", tc.routes, tc.env...)
			if ok {
				t.Fatalf("caddy validate accepted it:\n%s", out)
			}
			for _, want := range tc.want {
				if !strings.Contains(out, want) {
					t.Errorf("the refusal does not say %q:\n%s", want, gatewaytest.Tail(out, 2000))
				}
			}
		})
	}
	if out, ok := gatewaytest.Validate(t, "", "access_auth orders {\n\t\tmax_skew 7d\n\t}\n\trespond ok"); !ok {
		t.Errorf("max_skew 7d refused:\n%s", out)
	}
}

// TestListCursorNotGivenOut: a list cursor the API did not give out is
// 400 invalid_argument; next_cursor pages on.
func TestListCursorNotGivenOut(t *testing.T) {
	n := gatewaytest.Start(t, "cursor", "", ordersSite)
	for _, name := range []string{"a", "b", "c"} {
		n.AdminJSON(http.MethodPost, "/access-auth/groups", map[string]any{"name": name}, http.StatusCreated, nil)
	}
	var page struct {
		NextCursor string `json:"next_cursor"`
	}
	n.AdminJSON(http.MethodGet, "/access-auth/groups?limit=1", nil, http.StatusOK, &page)
	n.AdminJSON(http.MethodGet, "/access-auth/groups?limit=1&cursor="+page.NextCursor, nil, http.StatusOK, nil)
	for _, path := range []string{"/access-auth/groups?cursor=a", "/access-auth/keys?cursor=bogus", "/access-auth/audit?cursor=ak-0"} {
		var refusal struct{ Code string }
		n.AdminJSON(http.MethodGet, path, nil, http.StatusBadRequest, &refusal)
		if refusal.Code != "invalid_argument" {
			t.Errorf("%s: code %q, want invalid_argument", path, refusal.Code)
		}
	}
}

// TestKeyNamesRefuseInvisibleCharacters: a key name with a zero-width or
// bidirectional control character is 400 invalid_argument, on create and
// on rename.
func TestKeyNamesRefuseInvisibleCharacters(t *testing.T) {
	n := gatewaytest.Start(t, "names", "", ordersSite)
	key := n.CreateKey("alice")
	for _, name := range []string{"al\u200bice", "invoice\u202efdp.exe", "bob\x07"} {
		var refusal struct{ Code string }
		n.AdminJSON(http.MethodPost, "/access-auth/keys", map[string]any{"name": name}, http.StatusBadRequest, &refusal)
		if refusal.Code != "invalid_argument" {
			t.Errorf("create %q: code %q, want invalid_argument", name, refusal.Code)
		}
		n.AdminJSON(http.MethodPatch, "/access-auth/keys/"+key.ID, map[string]any{"name": name}, http.StatusBadRequest, nil)
	}
	n.AdminJSON(http.MethodPost, "/access-auth/keys", map[string]any{"name": "café crème"}, http.StatusCreated, nil)
}
