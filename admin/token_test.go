package admin

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
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
			RequireToken(tc.tokens, reached).ServeHTTP(w, r)
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

func BenchmarkRequireToken(b *testing.B) {
	h := RequireToken([]string{"token-one", "token-two", "token-three"}, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	r := httptest.NewRequest("GET", "/access-auth/keys", nil)
	r.Header.Set("Authorization", "Bearer token-three")
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}
