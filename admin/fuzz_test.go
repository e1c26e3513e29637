package admin

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/accessauth/caddy-access-auth/store"
)

// fuzzMethods are the methods FuzzAdminRequest picks from: the fuzzer's time
// is better spent on paths and bodies than on invalid method tokens.
var fuzzMethods = []string{"GET", "POST", "PATCH", "PUT", "DELETE", "HEAD", "OPTIONS", "TRACE", "PROPFIND"}

// FuzzAdminRequest sends arbitrary requests to an admin API over a real
// store: none may panic or get a 5xx, and every answer is JSON. In paths
// and bodies {key}, {api_key} and {auth} stand for records that exist, so
// the fuzzer reaches past "not found".
func FuzzAdminRequest(f *testing.F) {
	for _, seed := range [][3]string{
		{"POST", "/access-auth/keys", `{"name":"k","description":"d"}`},
		{"POST", "/access-auth/keys", `{"name":"i","kind":"imported","api_key":"AK","api_secret":"SK"}`},
		{"PATCH", "/access-auth/keys/{key}", `{"name":null,"enabled":true,"expires_at":"2030-01-01T00:00:00Z"}`},
		{"PATCH", "/access-auth/keys/{key}", `{"expires_at":"9999-12-31T23:59:59-23:00"}`},
		{"POST", "/access-auth/keys/{key}/reset", `{"grace":"24h"}`},
		{"GET", "/access-auth/keys/{key}/groups", ``},
		{"POST", "/access-auth/authorizations", `{"api_key":"AK","allowed_ips":["10.0.0.0/8"],"bindings":[{"group":"g","environment":"online"}]}`},
		{"PATCH", "/access-auth/authorizations/{auth}", `{"valid_from":"2020-01-01T00:00:00Z","valid_until":null,"allowed_ips":["::1"]}`},
		{"PUT", "/access-auth/authorizations/{auth}/bindings/g?environment=test", ``},
		{"GET", "/access-auth/authorizations?access_key_id={key}&group=g&limit=1", ``},
		{"POST", "/access-auth/groups", `{"name":"g2","environments":["online"]}`},
		{"GET", "/access-auth/groups?limit=2&cursor=zz", ``},
		{"POST", "/access-auth/import", `{"version":1,"keys":[{"id":"{key}","api_key":"{api_key}","sealed_secret":"v1.x"}]}`},
		{"GET", "/access-auth/keys/%zz", ``},
		{"POST", "/access-auth/plans", `{"name":"gold","rate":{"requests":5,"per":"1s"},"burst":2,"quota":{"requests":9,"period":"day"}}`},
		{"PATCH", "/access-auth/plans/gold", `{"rate":null,"burst":null,"quota":{"requests":1e3,"period":"week"}}`},
		{"PUT", "/access-auth/authorizations/{auth}/bindings/g?plan=gold", ``},
		{"PATCH", "/access-auth/authorizations/{auth}", `{"plan":"gold"}`},
		{"DELETE", "/access-auth/plans/gold", ``},
	} {
		f.Add(uint8(slices.Index(fuzzMethods, seed[0])), seed[1], seed[2])
	}
	s := newStore(f, nil)
	ctx, actor := context.Background(), store.Actor{Name: "fuzz"}
	key, err := s.CreateKey(ctx, store.NewKey{Name: "fuzz"}, actor)
	if err != nil {
		f.Fatal(err)
	}
	if _, err := s.CreateGroup(ctx, store.Group{Name: "g"}, actor); err != nil {
		f.Fatal(err)
	}
	auth, err := s.CreateAuthorization(ctx, store.NewAuthorization{AccessKeyID: key.ID, Bindings: []store.Binding{{Group: "g"}}}, actor)
	if err != nil {
		f.Fatal(err)
	}
	fixtures := strings.NewReplacer("{key}", key.ID, "{api_key}", key.APIKey, "{auth}", auth.ID)
	h := New(s, Options{})
	f.Fuzz(func(t *testing.T, methodIndex uint8, target, body string) {
		method := fuzzMethods[int(methodIndex)%len(fuzzMethods)]
		target, body = fixtures.Replace(target), fixtures.Replace(body)
		r, err := http.NewRequest(method, "http://admin.test"+target, strings.NewReader(body))
		if err != nil || !strings.HasPrefix(r.URL.Path, "/") {
			return // not a request a server would hand over
		}
		r.RequestURI = r.URL.RequestURI()
		r.RemoteAddr = testRemoteAddr
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code >= 500 {
			t.Fatalf("%s %q %q: %d %s", method, target, body, w.Code, w.Body)
		}
		if w.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("%s %q: Content-Type %q", method, target, w.Header().Get("Content-Type"))
		}
	})
}
