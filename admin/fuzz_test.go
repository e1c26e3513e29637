package admin

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// fuzzMethods are the methods FuzzAdminRequest picks from: the fuzzer's time
// is better spent on paths and bodies than on invalid method tokens.
var fuzzMethods = []string{"GET", "POST", "PATCH", "PUT", "DELETE", "HEAD", "OPTIONS", "TRACE", "PROPFIND"}

// FuzzAdminRequest sends arbitrary requests to an admin API over a real
// store: none may panic or get a 5xx, and every answer is JSON.
func FuzzAdminRequest(f *testing.F) {
	for _, seed := range [][3]string{
		{"POST", "/access-auth/keys", `{"name":"k","description":"d"}`},
		{"POST", "/access-auth/keys", `{"name":"i","kind":"imported","api_key":"AK","api_secret":"SK"}`},
		{"PATCH", "/access-auth/keys/ak-1", `{"name":null,"enabled":true,"expires_at":"2030-01-01T00:00:00Z"}`},
		{"POST", "/access-auth/keys/ak-1/reset", `{"grace":"24h"}`},
		{"POST", "/access-auth/authorizations", `{"api_key":"AK","allowed_ips":["10.0.0.0/8"],"bindings":[{"group":"g","environment":"online"}]}`},
		{"PUT", "/access-auth/authorizations/auth-1/bindings/g?environment=test", ``},
		{"POST", "/access-auth/groups", `{"name":"g","environments":["online"]}`},
		{"GET", "/access-auth/groups?limit=2&cursor=zz", ``},
		{"POST", "/access-auth/import", `{"version":1,"keys":[{"id":"ak-1","sealed_secret":"v1.x"}]}`},
		{"GET", "/access-auth/keys/%zz", ``},
	} {
		f.Add(uint8(slices.Index(fuzzMethods, seed[0])), seed[1], seed[2])
	}
	h := New(newStore(f, nil), Options{})
	f.Fuzz(func(t *testing.T, methodIndex uint8, target, body string) {
		method := fuzzMethods[int(methodIndex)%len(fuzzMethods)]
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
