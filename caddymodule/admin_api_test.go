package caddymodule

import (
	"crypto/tls"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestAdminAPIOnlyForLocalClients: on Caddy's admin endpoint the admin API
// answers loopback, Unix-socket and remote-admin (TLS) clients; a plaintext
// client from another address is refused before any store is touched.
func TestAdminAPIOnlyForLocalClients(t *testing.T) {
	route := adminAPI{}.Routes()[0]
	for _, tt := range []struct {
		name       string
		remoteAddr string
		tls        bool
		refused    bool
	}{
		{"loopback v4", "127.0.0.1:50000", false, false},
		{"loopback v6", "[::1]:50000", false, false},
		{"unix socket", "@", false, false},
		{"remote admin over mutual TLS", "203.0.113.7:443", true, false},
		{"network, plaintext", "203.0.113.7:50000", false, true},
		{"private network, plaintext", "10.1.2.3:50000", false, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/access-auth/keys", nil)
			r.RemoteAddr = tt.remoteAddr
			if tt.tls {
				r.TLS = &tls.ConnectionState{}
			}
			w := httptest.NewRecorder()
			if err := route.Handler.ServeHTTP(w, r); err != nil {
				t.Fatal(err)
			}
			var body struct{ Error, Code string }
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatalf("%d %q: %v", w.Code, w.Body, err)
			}
			// A request let through reaches the running app's store, or
			// finds none (503): either way not the refusal.
			if refused := w.Code == http.StatusForbidden && body.Code == "forbidden"; refused != tt.refused {
				t.Errorf("%d %+v, want refused %v", w.Code, body, tt.refused)
			}
		})
	}
}
