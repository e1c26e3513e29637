package admin

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func TestRequireToken(t *testing.T) {
	reached := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	for _, tc := range []struct {
		name          string
		tokens        []string
		authorization string
		pass          bool
	}{
		{"first token", []string{"s3cret-one", "s3cret-two"}, "Bearer s3cret-one", true},
		{"second token", []string{"s3cret-one", "s3cret-two"}, "Bearer s3cret-two", true},
		{"scheme in lower case", []string{"s3cret-one"}, "bearer s3cret-one", true},
		{"no header", []string{"s3cret-one"}, "", false},
		{"wrong token", []string{"s3cret-one"}, "Bearer s3cret-on", false},
		{"token prefix of configured", []string{"s3cret-one"}, "Bearer s3cret", false},
		{"longer token", []string{"s3cret-one"}, "Bearer s3cret-one-more", false},
		{"basic scheme", []string{"s3cret-one"}, "Basic s3cret-one", false},
		{"scheme only", []string{"s3cret-one"}, "Bearer", false},
		{"empty token", []string{"s3cret-one", ""}, "Bearer ", false},
		{"no tokens configured", nil, "Bearer anything", false},
		{"only empty tokens configured", []string{""}, "Bearer ", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/access-auth/keys", nil)
			if tc.authorization != "" {
				r.Header.Set("Authorization", tc.authorization)
			}
			w := httptest.NewRecorder()
			RequireToken(tc.tokens, nil, reached).ServeHTTP(w, r)
			if tc.pass {
				if w.Code != http.StatusTeapot {
					t.Errorf("refused: %d %s", w.Code, w.Body)
				}
				return
			}
			var e struct{ Error, Code string }
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || w.Code != http.StatusUnauthorized || e.Code != "unauthenticated" {
				t.Errorf("answer %d %s, want 401 unauthenticated", w.Code, w.Body)
			}
			if got := w.Header().Get("WWW-Authenticate"); got != "Bearer" {
				t.Errorf("WWW-Authenticate %q", got)
			}
			if got := w.Header().Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type %q", got)
			}
		})
	}
}

// TestRequireTokenSlowsFailingClients: a client that keeps presenting
// wrong tokens is answered 429, even with the right one, while other
// clients sign in; each failure is logged with the address, never with
// what was presented.
func TestRequireTokenSlowsFailingClients(t *testing.T) {
	const right, wrong = "right-token-0123456789abcdef0123456789", "wrong-token-0123456789abcdef012345678"
	core, logs := observer.New(zap.WarnLevel)
	h := RequireToken([]string{right}, zap.New(core), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) }))
	call := func(remoteAddr, token string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/access-auth/keys", nil)
		r.RemoteAddr = remoteAddr
		r.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	for i := range signInFailures {
		if w := call("192.0.2.1:4000", wrong); w.Code != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d, want 401", i+1, w.Code)
		}
	}
	w := call("192.0.2.1:4001", right)
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" {
		t.Errorf("after %d failures: %d, Retry-After %q; want 429 with Retry-After", signInFailures, w.Code, w.Header().Get("Retry-After"))
	}
	if w := call("192.0.2.2:4000", right); w.Code != http.StatusTeapot {
		t.Errorf("another client: %d, want through", w.Code)
	}
	if n := logs.FilterMessageSnippet("sign-in failed").FilterField(zap.String("remote_ip", "192.0.2.1")).Len(); n != signInFailures {
		t.Errorf("%d failed sign-ins logged with the remote IP, want %d", n, signInFailures)
	}
	for _, entry := range logs.All() {
		for _, f := range entry.Context {
			if strings.Contains(f.String, "token-0123") {
				t.Errorf("the log holds the presented token: %v", entry)
			}
		}
	}
}

func BenchmarkRequireToken(b *testing.B) {
	h := RequireToken([]string{"token-one", "token-two", "token-three"}, nil, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	r := httptest.NewRequest("GET", "/access-auth/keys", nil)
	r.Header.Set("Authorization", "Bearer token-three")
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}
