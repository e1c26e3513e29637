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
		{"a short admin token", "access_auth_admin {\n\t\ttoken a\n\t}", nil,
			[]string{"access_auth_admin: token 1", "too short", "openssl rand -hex 32", "{env.ACCESS_AUTH_ADMIN_TOKEN}"}},
		{"a short admin token from the environment", "access_auth_admin {\n\t\ttoken {env.E2E_ADMIN_TOKEN}\n\t}", []string{"E2E_ADMIN_TOKEN=abc"},
			[]string{"access_auth_admin: token 1", "3 characters once its placeholders are replaced", "openssl rand -hex 32"}},
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
	if out, ok := gatewaytest.Validate(t, "", "access_auth_admin {\n\t\ttoken {env.E2E_ADMIN_TOKEN}\n\t}", "E2E_ADMIN_TOKEN="+adminToken); !ok {
		t.Errorf("a token of 32 characters refused:\n%s", out)
	}
}

// adminToken is a token of the shortest length access_auth_admin takes.
const adminToken = "0123456789abcdef0123456789abcdef"

// TestAdminSignInFailuresSlowed: wrong bearer tokens on access_auth_admin
// are logged with the client's address, never the token, and a client
// that keeps failing is answered 429 for a while.
func TestAdminSignInFailuresSlowed(t *testing.T) {
	t.Setenv("E2E_ADMIN_TOKEN", adminToken)
	n := gatewaytest.Start(t, "admin", "", "access_auth_admin {\n\t\ttoken {env.E2E_ADMIN_TOKEN}\n\t}")
	call := func(token string) *http.Response {
		req, err := http.NewRequest(http.MethodGet, n.Site+"/access-auth/groups", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := gatewaytest.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := call(adminToken); resp.StatusCode != http.StatusOK {
		t.Fatalf("the right token: %d", resp.StatusCode)
	}
	const wrong = "wrong-token-that-must-not-be-logged"
	failures := 0
	for ; failures < 20; failures++ {
		resp := call(wrong)
		if resp.StatusCode == http.StatusTooManyRequests {
			if resp.Header.Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
			break
		}
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong token %d: %d", failures+1, resp.StatusCode)
		}
	}
	if failures != 10 {
		t.Errorf("429 after %d failures, want 10", failures)
	}
	if resp := call(adminToken); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("the right token from the client being slowed: %d, want 429", resp.StatusCode)
	}
	logs := n.Logs()
	if c := strings.Count(logs, "admin sign-in failed"); c != 10 || !strings.Contains(logs, `"remote_ip":"127.0.0.1"`) {
		t.Errorf("%d failed sign-ins logged (want 10, with remote_ip):\n%s", c, gatewaytest.Tail(logs, 3000))
	}
	if strings.Contains(logs, wrong) {
		t.Error("the log holds the presented token")
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
