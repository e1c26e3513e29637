package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/accessauth/caddy-access-auth/store"
	boltstore "github.com/accessauth/caddy-access-auth/store/bolt"
)

// newStore opens a real store on a bbolt file in a temporary directory,
// sealing secrets under masterKey (a new key when nil).
func newStore(t testing.TB, masterKey []byte) *store.Store {
	t.Helper()
	dir := t.TempDir()
	backend, err := boltstore.Open(filepath.Join(dir, "store.db"))
	if err != nil {
		t.Fatal(err)
	}
	if masterKey == nil {
		masterKey, err = store.GenerateMasterKey()
		if err != nil {
			t.Fatal(err)
		}
	}
	s, err := store.Open(backend, store.Options{MasterKeys: [][]byte{masterKey}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// client sends requests to an admin handler and checks what every answer
// must have.
type client struct {
	t testing.TB
	h http.Handler
}

func newClient(t testing.TB, opts Options) (client, *store.Store) {
	s := newStore(t, nil)
	return client{t, New(s, opts)}, s
}

const testRemoteAddr = "192.0.2.7:41000"

func (c client) do(method, target, body string) *httptest.ResponseRecorder {
	c.t.Helper()
	return c.send(method, target, strings.NewReader(body))
}

func (c client) send(method, target string, body io.Reader) *httptest.ResponseRecorder {
	c.t.Helper()
	r := httptest.NewRequest(method, target, body)
	r.RemoteAddr = testRemoteAddr
	w := httptest.NewRecorder()
	c.h.ServeHTTP(w, r)
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		c.t.Errorf("%s %s: Content-Type %q", method, target, ct)
	}
	if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
		c.t.Errorf("%s %s: Cache-Control %q", method, target, cc)
	}
	if w.Code == http.StatusNoContent && w.Body.Len() != 0 {
		c.t.Errorf("%s %s: 204 with body %q", method, target, w.Body)
	}
	if w.Code != http.StatusNoContent && !json.Valid(w.Body.Bytes()) {
		c.t.Errorf("%s %s: answer is not JSON: %q", method, target, w.Body)
	}
	return w
}

// call sends a request, requires status and decodes the answer into out
// (when not nil).
func (c client) call(method, target, body string, status int, out any) {
	c.t.Helper()
	w := c.do(method, target, body)
	if w.Code != status {
		c.t.Fatalf("%s %s: status %d, want %d: %s", method, target, w.Code, status, w.Body)
	}
	if out != nil {
		if err := json.Unmarshal(w.Body.Bytes(), out); err != nil {
			c.t.Fatalf("%s %s: %v", method, target, err)
		}
	}
}

// fails sends a request that must be refused with status and code.
func (c client) fails(method, target, body string, status int, code string) {
	c.t.Helper()
	var e struct{ Error, Code string }
	c.call(method, target, body, status, &e)
	if e.Code != code || e.Error == "" {
		c.t.Errorf("%s %s: error %+v, want code %q with a message", method, target, e, code)
	}
}

type keyList struct {
	Items      []store.AccessKey
	NextCursor string `json:"next_cursor"`
}

type authorizationList struct {
	Items      []store.Authorization
	NextCursor string `json:"next_cursor"`
}

type groupList struct {
	Items      []store.Group
	NextCursor string `json:"next_cursor"`
}

func (c client) createKey(name string) store.AccessKey {
	c.t.Helper()
	var k store.AccessKey
	c.call("POST", "/access-auth/keys", fmt.Sprintf(`{"name":%q,"description":"d"}`, name), http.StatusCreated, &k)
	return k
}

func (c client) createGroup(name string) {
	c.t.Helper()
	c.call("POST", "/access-auth/groups", fmt.Sprintf(`{"name":%q}`, name), http.StatusCreated, nil)
}

var apiKeyPattern = regexp.MustCompile(`^[0-9A-F]{32}$`)

func TestKeys(t *testing.T) {
	c, _ := newClient(t, Options{})

	created := c.createKey("caller-one")
	if !strings.HasPrefix(created.ID, "ak-") || !apiKeyPattern.MatchString(created.APIKey) || len(created.APISecret) < 43 {
		t.Fatalf("created key %+v", created)
	}
	if !created.Enabled || created.Kind != store.KindGenerated {
		t.Errorf("new key not enabled and generated: %+v", created)
	}
	c.fails("POST", "/access-auth/keys", `{"name":"caller-one"}`, http.StatusConflict, "name_taken")

	// Reading a key never shows its secret.
	w := c.do("GET", "/access-auth/keys/"+created.ID, "")
	if w.Code != http.StatusOK || strings.Contains(w.Body.String(), "api_secret") || strings.Contains(w.Body.String(), created.APISecret) {
		t.Fatalf("GET key: %d %s", w.Code, w.Body)
	}
	var got store.AccessKey
	c.call("GET", "/access-auth/keys/"+created.ID, "", http.StatusOK, &got)
	if got.APIKey != created.APIKey || got.Name != "caller-one" || got.Description != "d" {
		t.Errorf("GET key %+v, created %+v", got, created)
	}

	var imported store.AccessKey
	c.call("POST", "/access-auth/keys", `{"name":"jd-account","kind":"imported","api_key":"JDC_AK_0001","api_secret":"sk-imported-secret"}`, http.StatusCreated, &imported)
	if imported.Kind != store.KindImported || imported.APIKey != "JDC_AK_0001" {
		t.Errorf("imported key %+v", imported)
	}

	var patched store.AccessKey
	c.call("PATCH", "/access-auth/keys/"+created.ID, `{"name":"caller-1","enabled":false,"expires_at":"2031-01-02T03:04:05Z"}`, http.StatusOK, &patched)
	if patched.Name != "caller-1" || patched.Enabled || patched.ExpiresAt == nil || patched.APISecret != "" {
		t.Errorf("patched key %+v", patched)
	}
	c.call("PATCH", "/access-auth/keys/"+created.ID, `{"expires_at":null}`, http.StatusOK, &patched)
	if patched.ExpiresAt != nil || patched.Name != "caller-1" {
		t.Errorf("expires_at not cleared, or other fields changed: %+v", patched)
	}

	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"", []string{"caller-1", "jd-account"}},
		{"?name=caller-1", []string{"caller-1"}},
		{"?name=nobody", []string{}},
		{"?enabled=false", []string{"caller-1"}},
		{"?enabled=true", []string{"jd-account"}},
	} {
		var l keyList
		c.call("GET", "/access-auth/keys"+tc.query, "", http.StatusOK, &l)
		names := []string{}
		for _, k := range l.Items {
			names = append(names, k.Name)
			if k.APISecret != "" {
				t.Errorf("list %q shows a secret", tc.query)
			}
		}
		slices.Sort(names)
		if !slices.Equal(names, tc.want) || l.NextCursor != "" {
			t.Errorf("list %q: %v (next %q), want %v", tc.query, names, l.NextCursor, tc.want)
		}
	}

	var reset store.AccessKey
	c.call("POST", "/access-auth/keys/"+created.ID+"/reset", `{"grace":"24h"}`, http.StatusOK, &reset)
	if reset.APISecret == "" || reset.APISecret == created.APISecret || reset.PreviousSecretExpiresAt == nil {
		t.Errorf("reset with grace: %+v", reset)
	} else if d := time.Until(*reset.PreviousSecretExpiresAt); d < 23*time.Hour || d > 25*time.Hour {
		t.Errorf("grace ends in %v, want 24h", d)
	}
	var again store.AccessKey
	c.call("POST", "/access-auth/keys/"+created.ID+"/reset", "", http.StatusOK, &again)
	if again.APISecret == "" || again.APISecret == reset.APISecret {
		t.Errorf("reset without body: %+v", again)
	}

	c.call("DELETE", "/access-auth/keys/"+created.ID, "", http.StatusNoContent, nil)
	c.fails("GET", "/access-auth/keys/"+created.ID, "", http.StatusNotFound, "not_found")
	c.fails("DELETE", "/access-auth/keys/"+created.ID, "", http.StatusNotFound, "not_found")
	c.fails("PATCH", "/access-auth/keys/ak-missing", `{"description":"x"}`, http.StatusNotFound, "not_found")
	c.fails("POST", "/access-auth/keys/ak-missing/reset", "", http.StatusNotFound, "not_found")
}

func TestAuthorizationsAndBindings(t *testing.T) {
	c, _ := newClient(t, Options{})
	c.createGroup("orders")
	c.createGroup("billing")
	key := c.createKey("shop")

	var auth store.Authorization
	c.call("POST", "/access-auth/authorizations",
		fmt.Sprintf(`{"access_key_id":%q,"description":"shop","bindings":[{"group":"orders"}]}`, key.ID),
		http.StatusCreated, &auth)
	if !strings.HasPrefix(auth.ID, "auth-") || auth.AccessKeyID != key.ID || auth.APIKey != key.APIKey || !auth.Enabled {
		t.Fatalf("created authorization %+v", auth)
	}
	if want := []store.Binding{{Group: "orders", Environment: "*"}}; !slices.Equal(auth.Bindings, want) {
		t.Errorf("bindings %v, want %v", auth.Bindings, want)
	}
	if auth.AllowedIPs == nil {
		t.Error("allowed_ips is null, want []")
	}
	c.fails("POST", "/access-auth/authorizations", fmt.Sprintf(`{"api_key":%q}`, key.APIKey), http.StatusConflict, "authorization_exists")
	c.fails("POST", "/access-auth/authorizations", `{"access_key_id":"ak-missing"}`, http.StatusNotFound, "not_found")
	c.fails("DELETE", "/access-auth/keys/"+key.ID, "", http.StatusConflict, "key_in_use")

	base := "/access-auth/authorizations/" + auth.ID
	c.call("PUT", base+"/bindings/billing?environment=online", "", http.StatusOK, &auth)
	c.call("PUT", base+"/bindings/billing?environment=online", "", http.StatusOK, &auth) // idempotent
	if want := []store.Binding{{Group: "billing", Environment: "online"}, {Group: "orders", Environment: "*"}}; !sameBindings(auth.Bindings, want) {
		t.Errorf("after bind: %v, want %v", auth.Bindings, want)
	}
	c.fails("PUT", base+"/bindings/biling", "", http.StatusNotFound, "group_not_found")
	c.fails("PUT", "/access-auth/authorizations/auth-missing/bindings/orders", "", http.StatusNotFound, "not_found")

	var groups struct{ Items []store.Binding }
	c.call("GET", "/access-auth/keys/"+key.ID+"/groups", "", http.StatusOK, &groups)
	if !sameBindings(groups.Items, auth.Bindings) {
		t.Errorf("key groups %v, want %v", groups.Items, auth.Bindings)
	}

	other := c.createKey("other")
	c.call("POST", "/access-auth/authorizations", fmt.Sprintf(`{"access_key_id":%q,"allowed_ips":["10.0.0.0/8"]}`, other.ID), http.StatusCreated, nil)
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"/access-auth/authorizations", []string{key.ID, other.ID}},
		{"/access-auth/authorizations?access_key_id=" + other.ID, []string{other.ID}},
		{"/access-auth/authorizations?group=billing", []string{key.ID}},
		{"/access-auth/groups/orders/authorizations", []string{key.ID}},
	} {
		var l authorizationList
		c.call("GET", tc.query, "", http.StatusOK, &l)
		ids := []string{}
		for _, a := range l.Items {
			ids = append(ids, a.AccessKeyID)
		}
		slices.Sort(ids)
		want := slices.Sorted(slices.Values(tc.want))
		if !slices.Equal(ids, want) {
			t.Errorf("%s: access keys %v, want %v", tc.query, ids, want)
		}
	}

	var patched store.Authorization
	c.call("PATCH", base, `{"enabled":false,"allowed_ips":["192.0.2.0/24"],"valid_until":"2030-01-01T00:00:00Z"}`, http.StatusOK, &patched)
	if patched.Enabled || !slices.Equal(patched.AllowedIPs, []string{"192.0.2.0/24"}) || patched.ValidUntil == nil {
		t.Errorf("patched authorization %+v", patched)
	}
	c.fails("PATCH", base, `{"allowed_ips":["not-a-cidr"]}`, http.StatusBadRequest, "invalid_argument")

	c.call("DELETE", base+"/bindings/billing?environment=online", "", http.StatusNoContent, nil)
	var read store.Authorization
	c.call("GET", base, "", http.StatusOK, &read)
	if want := []store.Binding{{Group: "orders", Environment: "*"}}; !slices.Equal(read.Bindings, want) {
		t.Errorf("after unbind: %v, want %v", read.Bindings, want)
	}
	c.fails("DELETE", base+"/bindings/billing?environment=online", "", http.StatusNotFound, "not_found")
	// Without ?environment= the key loses the group in every environment.
	c.call("PUT", base+"/bindings/orders?environment=online", "", http.StatusOK, nil)
	c.call("DELETE", base+"/bindings/orders", "", http.StatusNoContent, nil)
	c.call("GET", base, "", http.StatusOK, &read)
	if len(read.Bindings) != 0 {
		t.Errorf("after unbinding the group: %v, want none", read.Bindings)
	}

	c.call("DELETE", base, "", http.StatusNoContent, nil)
	c.fails("GET", base, "", http.StatusNotFound, "not_found")
	c.call("DELETE", "/access-auth/keys/"+key.ID, "", http.StatusNoContent, nil)
}

func sameBindings(a, b []store.Binding) bool {
	key := func(x store.Binding) string { return x.Group + "/" + x.Environment }
	as, bs := make([]string, len(a)), make([]string, len(b))
	for i := range a {
		as[i] = key(a[i])
	}
	for i := range b {
		bs[i] = key(b[i])
	}
	slices.Sort(as)
	slices.Sort(bs)
	return slices.Equal(as, bs)
}

func TestGroups(t *testing.T) {
	c, _ := newClient(t, Options{Configured: func(group string) bool { return group == "orders" }})
	var g store.Group
	c.call("POST", "/access-auth/groups", `{"name":"orders","description":"order API"}`, http.StatusCreated, &g)
	if g.Name != "orders" || g.Description != "order API" || !g.Configured || g.Environments == nil {
		t.Errorf("created group %+v", g)
	}
	c.createGroup("billing")
	c.fails("POST", "/access-auth/groups", `{"name":"orders"}`, http.StatusConflict, "name_taken")
	c.fails("POST", "/access-auth/groups", `{"name":"Not A Name"}`, http.StatusBadRequest, "invalid_argument")

	var l groupList
	c.call("GET", "/access-auth/groups", "", http.StatusOK, &l)
	configured := map[string]bool{}
	for _, g := range l.Items {
		configured[g.Name] = g.Configured
	}
	if want := map[string]bool{"orders": true, "billing": false}; !maps(configured, want) {
		t.Errorf("groups %v, want %v", configured, want)
	}
	c.call("GET", "/access-auth/groups/billing", "", http.StatusOK, &g)
	if g.Name != "billing" || g.Configured {
		t.Errorf("GET group %+v", g)
	}

	key := c.createKey("k")
	c.call("POST", "/access-auth/authorizations", fmt.Sprintf(`{"access_key_id":%q,"bindings":[{"group":"billing","environment":"test"}]}`, key.ID), http.StatusCreated, nil)
	c.call("DELETE", "/access-auth/groups/billing", "", http.StatusNoContent, nil)
	c.fails("GET", "/access-auth/groups/billing", "", http.StatusNotFound, "not_found")
	c.fails("GET", "/access-auth/groups/billing/authorizations", "", http.StatusNotFound, "not_found")
	var a authorizationList
	c.call("GET", "/access-auth/authorizations", "", http.StatusOK, &a)
	if len(a.Items) != 1 || len(a.Items[0].Bindings) != 0 {
		t.Errorf("deleting the group left bindings: %+v", a.Items)
	}
}

func maps(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestPagination(t *testing.T) {
	c, _ := newClient(t, Options{})
	var want []string
	for i := range 7 {
		name := fmt.Sprintf("group-%d", i)
		c.createGroup(name)
		want = append(want, name)
	}
	var got []string
	cursor, pages := "", 0
	for {
		var l groupList
		c.call("GET", "/access-auth/groups?limit=3&cursor="+cursor, "", http.StatusOK, &l)
		pages++
		if len(l.Items) > 3 {
			t.Fatalf("page of %d items with limit 3", len(l.Items))
		}
		for _, g := range l.Items {
			got = append(got, g.Name)
		}
		if l.NextCursor == "" {
			break
		}
		if pages > 10 {
			t.Fatal("pagination does not end")
		}
		cursor = l.NextCursor
	}
	slices.Sort(got)
	if !slices.Equal(got, want) || pages != 3 {
		t.Errorf("%d pages of %v, want 3 pages of %v", pages, got, want)
	}

	var l groupList
	c.call("GET", "/access-auth/groups?limit=500", "", http.StatusOK, &l)
	if len(l.Items) != 7 || l.NextCursor != "" {
		t.Errorf("limit=500: %d items, next %q", len(l.Items), l.NextCursor)
	}
}

// TestKeyListFilters: the list's query parameters reach the store's filter.
func TestKeyListFilters(t *testing.T) {
	c, _ := newClient(t, Options{})
	xavier, wyatt := c.createKey("Xavier"), c.createKey("wyatt")
	var imported store.AccessKey
	c.call("POST", "/access-auth/keys", `{"name":"zoe","kind":"imported","api_key":"CAROL-AK","api_secret":"s"}`, http.StatusCreated, &imported)
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"", []string{"zoe", "wyatt", "Xavier"}},
		{"?q=XAV", []string{"Xavier"}},
		{"?q=" + wyatt.ID[len(wyatt.ID)-10:], []string{"wyatt"}}, // the random part: the start is the time
		{"?q=" + strings.ToLower(xavier.APIKey[3:12]), []string{"Xavier"}},
		{"?api_key=CAROL-AK", []string{"zoe"}},
		{"?kind=imported", []string{"zoe"}},
		{"?kind=generated&q=y", []string{"wyatt"}},
		{"?enabled=true&name=wyatt", []string{"wyatt"}},
	} {
		var l keyList
		c.call("GET", "/access-auth/keys"+tc.query, "", http.StatusOK, &l)
		var got []string
		for _, k := range l.Items {
			got = append(got, k.Name)
		}
		if !slices.Equal(got, tc.want) || l.NextCursor != "" {
			t.Errorf("GET keys%s: %v (next %q), want %v", tc.query, got, l.NextCursor, tc.want)
		}
	}
}

func TestEmptyListsAreArrays(t *testing.T) {
	c, _ := newClient(t, Options{})
	for _, path := range []string{"/access-auth/keys", "/access-auth/authorizations", "/access-auth/groups"} {
		w := c.do("GET", path, "")
		if want := `{"items":[],"next_cursor":""}`; strings.TrimSpace(w.Body.String()) != want {
			t.Errorf("GET %s: %s, want %s", path, w.Body, want)
		}
	}
}

func TestAuditNewestFirst(t *testing.T) {
	c, _ := newClient(t, Options{Actor: func(r *http.Request) string { return r.Header.Get("X-Test-User") }})
	c.createGroup("orders")
	key := c.createKey("k")
	r := httptest.NewRequest("DELETE", "/access-auth/keys/"+key.ID, nil)
	r.Header.Set("X-Test-User", "alice")
	r.RemoteAddr = "198.51.100.1:5000"
	w := httptest.NewRecorder()
	c.h.ServeHTTP(w, r)
	if w.Code != http.StatusNoContent {
		t.Fatalf("delete: %d %s", w.Code, w.Body)
	}

	var audit struct{ Items []store.AuditRecord }
	c.call("GET", "/access-auth/audit", "", http.StatusOK, &audit)
	if len(audit.Items) != 3 {
		t.Fatalf("audit %+v, want 3 records", audit.Items)
	}
	newest := audit.Items[0]
	if newest.Actor != "alice" || newest.RemoteAddr != "198.51.100.1:5000" || !strings.Contains(newest.Target, key.ID) {
		t.Errorf("newest record %+v, want alice deleting %s", newest, key.ID)
	}
	oldest := audit.Items[2]
	if oldest.Actor != "admin" || oldest.RemoteAddr != testRemoteAddr || !strings.Contains(oldest.Target, "orders") {
		t.Errorf("oldest record %+v, want admin creating group orders", oldest)
	}
	for i := 1; i < len(audit.Items); i++ {
		if audit.Items[i].At.After(audit.Items[i-1].At) {
			t.Errorf("audit not newest first: %v", audit.Items)
		}
	}
	if strings.Contains(fmt.Sprint(audit.Items), key.APISecret) {
		t.Error("audit shows a secret")
	}
	var page struct {
		Items      []store.AuditRecord
		NextCursor string `json:"next_cursor"`
	}
	c.call("GET", "/access-auth/audit?limit=2", "", http.StatusOK, &page)
	if len(page.Items) != 2 || page.NextCursor == "" || page.Items[0] != newest {
		t.Errorf("audit page %+v", page)
	}
}

func TestExportImportRoundTrip(t *testing.T) {
	masterKey, err := store.GenerateMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	from := client{t, New(newStore(t, masterKey), Options{})}
	from.createGroup("orders")
	key := from.createKey("shop")
	from.call("POST", "/access-auth/authorizations", fmt.Sprintf(`{"access_key_id":%q,"bindings":[{"group":"orders","environment":"online"}]}`, key.ID), http.StatusCreated, nil)

	w := from.do("GET", "/access-auth/export", "")
	if w.Code != http.StatusOK || strings.Contains(w.Body.String(), key.APISecret) {
		t.Fatalf("export: %d, or it shows the secret in clear: %s", w.Code, w.Body)
	}

	target := newStore(t, masterKey)
	to := client{t, New(target, Options{})}
	var summary store.ImportSummary
	to.call("POST", "/access-auth/import", w.Body.String(), http.StatusOK, &summary)
	if summary != (store.ImportSummary{Keys: 1, Authorizations: 1, Groups: 1}) {
		t.Errorf("import summary %+v", summary)
	}

	var keys keyList
	to.call("GET", "/access-auth/keys", "", http.StatusOK, &keys)
	if len(keys.Items) != 1 || keys.Items[0].ID != key.ID || keys.Items[0].APIKey != key.APIKey {
		t.Fatalf("imported keys %+v", keys.Items)
	}
	var groups struct{ Items []store.Binding }
	to.call("GET", "/access-auth/keys/"+key.ID+"/groups", "", http.StatusOK, &groups)
	if want := []store.Binding{{Group: "orders", Environment: "online"}}; !slices.Equal(groups.Items, want) {
		t.Errorf("imported bindings %v, want %v", groups.Items, want)
	}
	cred, err := target.LoadCredential(context.Background(), key.APIKey)
	if err != nil || cred.Secret != key.APISecret {
		t.Errorf("imported credential does not carry the secret: %v", err)
	}
	to.fails("POST", "/access-auth/import", `{"version":1,"keys":"no"}`, http.StatusBadRequest, "invalid_argument")
}

func TestBadRequests(t *testing.T) {
	c, _ := newClient(t, Options{})
	c.createGroup("orders")
	key := c.createKey("k")
	huge := `{"name":"` + strings.Repeat("a", maxBodyBytes) + `"}`
	for _, tc := range []struct {
		method, target, body string
		status               int
		code                 string
	}{
		{"POST", "/access-auth/keys", `{"name":`, 400, "invalid_argument"},
		{"POST", "/access-auth/keys", `{"name":"x"} {"name":"y"}`, 400, "invalid_argument"},
		{"POST", "/access-auth/keys", `{"name":"x"}garbage`, 400, "invalid_argument"},
		{"POST", "/access-auth/keys", ``, 400, "invalid_argument"},
		{"POST", "/access-auth/keys", `[]`, 400, "invalid_argument"},
		{"POST", "/access-auth/keys", `{"name":7}`, 400, "invalid_argument"},
		{"POST", "/access-auth/keys", `{"name":"x","secret_sauce":1}`, 400, "invalid_argument"},
		{"POST", "/access-auth/keys", `{"name":""}`, 400, "invalid_argument"},
		{"POST", "/access-auth/keys", `{"name":"x","kind":"stolen"}`, 400, "invalid_argument"},
		{"POST", "/access-auth/keys", `{"name":"x","kind":"imported","api_key":"","api_secret":""}`, 400, "invalid_argument"},
		{"POST", "/access-auth/keys", huge, 413, "body_too_large"},
		{"PATCH", "/access-auth/keys/" + key.ID, `{"enabled":"yes"}`, 400, "invalid_argument"},
		{"PATCH", "/access-auth/keys/" + key.ID, `{"expires_at":"tomorrow"}`, 400, "invalid_argument"},
		{"PATCH", "/access-auth/keys/" + key.ID, `{"api_key":"mine"}`, 400, "invalid_argument"},
		{"PATCH", "/access-auth/keys/" + key.ID, `{"expires_at":"9999-12-31T23:59:59-23:00"}`, 400, "invalid_argument"},
		{"POST", "/access-auth/keys", `{"name":"y","expires_at":"0000-01-01T00:30:00+01:00"}`, 400, "invalid_argument"},
		{"POST", "/access-auth/authorizations", `{"access_key_id":"` + key.ID + `","valid_until":"9999-12-31T23:00:00-01:00"}`, 400, "invalid_argument"},
		{"PATCH", "/access-auth/authorizations/auth-x", `{"valid_from":"9999-12-31T23:00:00-01:00"}`, 400, "invalid_argument"},
		{"POST", "/access-auth/keys/" + key.ID + "/reset", `{"grace":"forever"}`, 400, "invalid_argument"},
		{"POST", "/access-auth/keys/" + key.ID + "/reset", `{"grace":"-1h"}`, 400, "invalid_argument"},
		{"POST", "/access-auth/keys/" + key.ID + "/reset", `{"grace":86400}`, 400, "invalid_argument"},
		{"POST", "/access-auth/authorizations", `{"access_key_id":` + `"` + key.ID + `","valid_from":5}`, 400, "invalid_argument"},
		{"POST", "/access-auth/authorizations", `{}`, 400, "invalid_argument"},
		{"POST", "/access-auth/groups", `{"name":"ok","configured":true}`, 400, "invalid_argument"},
		{"POST", "/access-auth/import", `not json`, 400, "invalid_argument"},
		{"GET", "/access-auth/keys?limit=0", "", 400, "invalid_argument"},
		{"GET", "/access-auth/keys?limit=501", "", 400, "invalid_argument"},
		{"GET", "/access-auth/groups?limit=ten", "", 400, "invalid_argument"},
		{"GET", "/access-auth/audit?limit=-1", "", 400, "invalid_argument"},
		{"GET", "/access-auth/keys?enabled=maybe", "", 400, "invalid_argument"},
		{"GET", "/access-auth/keys?kind=stolen", "", 400, "invalid_argument"},
		{"GET", "/access-auth/keys?q=" + strings.Repeat("a", 257), "", 400, "invalid_argument"},
		{"GET", "/access-auth/nothing", "", 404, "not_found"},
		{"GET", "/access-auth/", "", 404, "not_found"},
		{"GET", "/", "", 404, "not_found"},
		{"GET", "/access-auth/keys/" + key.ID + "/secret", "", 404, "not_found"},
		{"GET", "/access-auth//keys", "", 404, "not_found"},
		{"GET", "/access-auth/keys/../groups", "", 404, "not_found"},
		{"DELETE", "/access-auth/keys", "", 405, "method_not_allowed"},
		{"PUT", "/access-auth/keys/" + key.ID, "{}", 405, "method_not_allowed"},
		{"GET", "/access-auth/import", "", 405, "method_not_allowed"},
		{"PATCH", "/access-auth/groups/orders", "{}", 405, "method_not_allowed"},
	} {
		t.Run(tc.method+" "+tc.target[:min(len(tc.target), 60)]+" "+tc.body[:min(len(tc.body), 30)], func(t *testing.T) {
			client{t, c.h}.fails(tc.method, tc.target, tc.body, tc.status, tc.code)
		})
	}

	w := c.do("DELETE", "/access-auth/keys", "")
	if allow := w.Header().Get("Allow"); !strings.Contains(allow, "GET") || !strings.Contains(allow, "POST") {
		t.Errorf("405 Allow %q, want GET and POST", allow)
	}
}

func TestImportBodyLimit(t *testing.T) {
	c, _ := newClient(t, Options{})
	// Larger than a request body may be, well within an import's limit.
	keys := strings.Repeat(`{"id":"ak-x","name":"`+strings.Repeat("n", 1000)+`"},`, 2000)
	body := `{"version":1,"keys":[` + strings.TrimSuffix(keys, ",") + `]}`
	if len(body) <= maxBodyBytes {
		t.Fatalf("test body of %d bytes is within the ordinary limit", len(body))
	}
	w := c.do("POST", "/access-auth/import", body)
	if w.Code == http.StatusRequestEntityTooLarge || w.Code >= 500 {
		t.Errorf("import of %d bytes: %d %s", len(body), w.Code, w.Body)
	}
	// One value is held in memory at a time, and it is bounded.
	huge := io.MultiReader(strings.NewReader(`{"version":1,"keys":[],"pad":"`), io.LimitReader(padding{}, store.MaxImportRecordBytes+1))
	w = c.send("POST", "/access-auth/import", huge)
	if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "larger than") {
		t.Errorf("import of a value beyond the record limit: %d %s", w.Code, w.Body)
	}
}

// The whole import is bounded too, though far beyond what memory holds: it
// streams.
func TestImportTotalLimit(t *testing.T) {
	defer func(n int64) { maxImportBytes = n }(maxImportBytes)
	maxImportBytes = 3 << 20
	c, _ := newClient(t, Options{})
	fields := []io.Reader{strings.NewReader(`{"version":1,"keys":[]`)}
	for i := range 4 {
		fields = append(fields, strings.NewReader(fmt.Sprintf(`,"pad%d":"`, i)), io.LimitReader(padding{}, 1<<20), strings.NewReader(`"`))
	}
	fields = append(fields, strings.NewReader(`}`))
	w := c.send("POST", "/access-auth/import", io.MultiReader(fields...))
	if w.Code != http.StatusRequestEntityTooLarge || !strings.Contains(w.Body.String(), `"body_too_large"`) {
		t.Errorf("import beyond the limit: %d %s", w.Code, w.Body)
	}
}

// padding reads as endless letters.
type padding struct{}

func (padding) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'p'
	}
	return len(p), nil
}

// failingStore fails every call the tests make with err.
type failingStore struct {
	storeAPI
	err error
}

func (f failingStore) GetKey(context.Context, string) (store.AccessKey, error) {
	return store.AccessKey{}, f.err
}

func (f failingStore) ListGroups(context.Context, store.Page) ([]store.Group, string, error) {
	return nil, "", f.err
}

func (f failingStore) CreateKey(context.Context, store.NewKey, store.Actor) (store.AccessKey, error) {
	return store.AccessKey{}, f.err
}

func TestStoreFailures(t *testing.T) {
	for _, tc := range []struct {
		err    error
		status int
		code   string
		level  zapcore.Level
	}{
		{fmt.Errorf("dial tcp 10.1.2.3:6379: %w", store.ErrUnavailable), 503, "store_unavailable", zap.WarnLevel},
		{context.DeadlineExceeded, 503, "store_unavailable", zap.WarnLevel},
		{errors.New("bucket keys: page 7 corrupt"), 500, "internal", zap.ErrorLevel},
		{fmt.Errorf("key ak-1: %w", store.ErrNotFound), 404, "not_found", zap.DebugLevel},
	} {
		t.Run(tc.code, func(t *testing.T) {
			core, logs := observer.New(zap.InfoLevel)
			c := client{t, newHandler(failingStore{err: tc.err}, Options{Logger: zap.New(core)})}
			for _, req := range [][2]string{{"GET", "/access-auth/keys/ak-1"}, {"GET", "/access-auth/groups"}, {"POST", "/access-auth/keys"}} {
				body := ""
				if req[0] == "POST" {
					body = `{"name":"n"}`
				}
				w := c.do(req[0], req[1], body)
				var e struct{ Error, Code string }
				_ = json.Unmarshal(w.Body.Bytes(), &e)
				if w.Code != tc.status || e.Code != tc.code {
					t.Errorf("%v: %d %+v, want %d %s", req, w.Code, e, tc.status, tc.code)
				}
				if tc.status >= 500 && (strings.Contains(e.Error, "10.1.2.3") || strings.Contains(e.Error, "corrupt")) {
					t.Errorf("%v: answer shows internal detail %q", req, e.Error)
				}
			}
			entries := logs.All()
			if tc.level < zap.InfoLevel {
				if len(entries) != 0 {
					t.Errorf("client errors logged: %v", entries)
				}
				return
			}
			if len(entries) != 3 || entries[0].Level != tc.level || !strings.Contains(fmt.Sprint(entries[0].ContextMap()["error"]), tc.err.Error()) {
				t.Errorf("logs %v, want 3 at %v with the error", entries, tc.level)
			}
		})
	}
}
