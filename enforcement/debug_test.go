package enforcement

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/accessauth/caddy-access-auth/signature"
)

// TestDebugSignature checks that a route with DebugSignature adds the
// canonical request and string to sign it computed to a signature_mismatch
// answer, and to no other answer nor without the option.
func TestDebugSignature(t *testing.T) {
	const apiKey = "GOOD"
	tests := []struct {
		name       string
		debug      bool
		secret     string
		mutate     func(*http.Request)
		wantReason Reason
		wantDebug  bool
	}{
		{name: "mismatch with debug", debug: true, mutate: func(r *http.Request) { r.URL.Path = "/v1/moved" },
			wantReason: SignatureMismatch, wantDebug: true},
		{name: "wrong secret with debug", debug: true, secret: "guess", wantReason: SignatureMismatch, wantDebug: true},
		{name: "mismatch without debug", mutate: func(r *http.Request) { r.URL.Path = "/v1/moved" },
			wantReason: SignatureMismatch},
		{name: "other reason with debug", debug: true, mutate: func(r *http.Request) { r.Header.Del("Authorization") },
			wantReason: MissingCredentials},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestChecker(t, testKeys(), func(cfg *Config) { cfg.DebugSignature = tc.debug })
			secret := tc.secret
			if secret == "" {
				secret = secretOf(apiKey)
			}
			var signed signature.Form
			r := signedRequest(t, http.MethodGet, "http://api.example.com/v1/orders?page=1", "", apiKey, secret,
				signature.JDCloud2, signature.WithSignedForm(&signed))
			if tc.mutate != nil {
				tc.mutate(r)
			}
			d := check(c, r, "192.0.2.1")
			defer d.Cleanup()
			if d.Reason != tc.wantReason {
				t.Fatalf("reason %s, want %s", d.Reason, tc.wantReason)
			}
			w := httptest.NewRecorder()
			WriteDenial(w, d, "req-1")
			var body DenialBody
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatalf("answer %q: %v", w.Body, err)
			}
			got := body.Error
			if !tc.wantDebug {
				if got.CanonicalRequest != "" || got.StringToSign != "" {
					t.Fatalf("answer has the debug fields: %s", w.Body)
				}
				return
			}
			if got.Reason != "signature_mismatch" || got.CanonicalRequest == "" || got.StringToSign == "" {
				t.Fatalf("answer lacks the debug fields: %s", w.Body)
			}
			if strings.Contains(w.Body.String(), secret) || strings.Contains(w.Body.String(), signedSignature(r)) {
				t.Fatalf("answer shows a secret or signature: %s", w.Body)
			}
			wantPath := r.URL.EscapedPath()
			if line := strings.Split(got.CanonicalRequest, "\n")[1]; line != wantPath {
				t.Fatalf("path line %q, want the server's %q", line, wantPath)
			}
			if r.URL.Path == "/v1/orders" && got.CanonicalRequest != signed.CanonicalRequest {
				t.Fatalf("canonical request\n%s\nwant what was signed\n%s", got.CanonicalRequest, signed.CanonicalRequest)
			}
		})
	}
}

// signedSignature is the hex signature of r's Authorization header.
func signedSignature(r *http.Request) string {
	_, sig, _ := strings.Cut(r.Header.Get("Authorization"), "Signature=")
	return sig
}
