package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/accessauth/caddy-access-auth/enforcement"
	"github.com/accessauth/caddy-access-auth/internal/gatewaytest"
	"github.com/accessauth/caddy-access-auth/signature"
)

// debugSite serves group orders with debug_signature under /debug/ and
// without it elsewhere.
const debugSite = `	handle /debug/* {
		access_auth orders {
			debug_signature
		}
		respond "ok"
	}
	handle {
		access_auth orders
		respond "ok"
	}`

// TestDebugSignatureShowsWhatTheGatewayComputed: a request signed for one
// path and sent to another is refused with signature_mismatch; on a route
// with debug_signature the answer carries the canonical request and string
// to sign the gateway computed, whose path line is the server's and the
// only line that differs from what the client signed; elsewhere it does
// not. Each scheme; the WARN of Provision is logged.
func TestDebugSignatureShowsWhatTheGatewayComputed(t *testing.T) {
	n := gatewaytest.Start(t, "debug", "", debugSite)
	n.WaitGroup("orders")
	key := n.AuthorizedKey("alice", "orders")
	if logs := n.Logs(); !hasWarn(logs, "debug_signature is on") {
		t.Errorf("no WARN about debug_signature in the log:\n%s", gatewaytest.Tail(logs, 3000))
	}
	for _, scheme := range []signature.Scheme{signature.JDCloud2, signature.JDCloud3, signature.SigV4, signature.Aliyun} {
		for _, prefix := range []string{"/debug", "/plain"} {
			t.Run(scheme.String()+prefix, func(t *testing.T) {
				req, err := http.NewRequest(http.MethodGet, n.Site+prefix+"/signed", nil)
				if err != nil {
					t.Fatal(err)
				}
				var signed signature.Form
				if err := signature.Sign(req, scheme, key.APIKey, key.APISecret, signature.WithSignedForm(&signed)); err != nil {
					t.Fatal(err)
				}
				req.URL.Path = prefix + "/sent"
				a := n.Send(req)
				gatewaytest.WantAnswer(t, "sent to another path", a, http.StatusUnauthorized, "signature_mismatch")
				var body enforcement.DenialBody
				if err := gatewaytest.DecodeJSON([]byte(a.Body), &body); err != nil {
					t.Fatal(err)
				}
				got := body.Error
				if strings.Contains(a.Body, key.APISecret) || strings.Contains(a.Body, sentSignature(req)) {
					t.Fatalf("the answer shows the secret or a signature: %s", a.Body)
				}
				if prefix == "/plain" {
					if got.CanonicalRequest != "" || got.StringToSign != "" || strings.Contains(a.Body, "canonicalRequest") {
						t.Fatalf("a route without debug_signature answers with the canonical request: %s", a.Body)
					}
					return
				}
				clientLine, serverLine := differingLine(t, signed.CanonicalRequest, got.CanonicalRequest)
				t.Logf("client signed %q, gateway computed %q", clientLine, serverLine)
				if clientLine != "/debug/signed" || serverLine != "/debug/sent" {
					t.Fatalf("the differing line is %q (client) vs %q (gateway), want the path", clientLine, serverLine)
				}
				wantToSign := got.CanonicalRequest // Alibaba signs its canonical request itself
				if scheme != signature.Aliyun {
					sum := sha256.Sum256([]byte(got.CanonicalRequest))
					lines := strings.Split(signed.StringToSign, "\n")
					lines[len(lines)-1] = hex.EncodeToString(sum[:])
					wantToSign = strings.Join(lines, "\n")
				}
				if got.StringToSign != wantToSign {
					t.Fatalf("string to sign\n%s\nwant\n%s", got.StringToSign, wantToSign)
				}
			})
		}
	}
}

// differingLine is the one line in which the gateway's canonical request
// differs from the client's, failing the test unless there is exactly one.
func differingLine(t *testing.T, client, gateway string) (clientLine, gatewayLine string) {
	t.Helper()
	c, g := strings.Split(client, "\n"), strings.Split(gateway, "\n")
	if len(c) != len(g) {
		t.Fatalf("the canonical requests have %d and %d lines:\n%s\n---\n%s", len(c), len(g), client, gateway)
	}
	differ := -1
	for i := range c {
		if c[i] != g[i] {
			if differ >= 0 {
				t.Fatalf("lines %d and %d differ:\n%s\n---\n%s", differ, i, client, gateway)
			}
			differ = i
		}
	}
	if differ < 0 {
		t.Fatalf("the gateway computed what the client signed:\n%s", client)
	}
	return c[differ], g[differ]
}

// sentSignature is the signature the request carries (Authorization's
// Signature=, or X-Ca-Signature).
func sentSignature(req *http.Request) string {
	if sig := req.Header.Get("X-Ca-Signature"); sig != "" {
		return sig
	}
	_, sig, _ := strings.Cut(req.Header.Get("Authorization"), "Signature=")
	return sig
}

// hasWarn reports whether a line of logs at WARN holds text.
func hasWarn(logs, text string) bool {
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, text) && strings.Contains(strings.ToLower(line), "warn") {
			return true
		}
	}
	return false
}

// TestCurlVerbosePrintsWhatItSigned: `caddy access-auth curl --verbose`
// prints to stderr the canonical request and string to sign it signed;
// with a wrong secret on a debug_signature route they are the very texts
// of the answer (the secret is what differs), for each scheme.
func TestCurlVerbosePrintsWhatItSigned(t *testing.T) {
	n := gatewaytest.Start(t, "curl-verbose", "", debugSite)
	n.WaitGroup("orders")
	key := n.AuthorizedKey("alice", "orders")
	for _, scheme := range []signature.Scheme{signature.JDCloud2, signature.JDCloud3, signature.SigV4, signature.Aliyun} {
		t.Run(scheme.String(), func(t *testing.T) {
			cmd := gatewaytest.Command(t, "access-auth", "curl", "--verbose", "--scheme", scheme.String(),
				"--key", key.APIKey, "--secret", "not-the-secret", n.Site+"/debug/orders?page=2")
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			_ = cmd.Run() // a 401 may fail the command; the answer is what counts
			var body enforcement.DenialBody
			if err := gatewaytest.DecodeJSON([]byte(stdout.String()), &body); err != nil {
				t.Fatalf("%v; stderr:\n%s", err, stderr.String())
			}
			if body.Error.Reason != "signature_mismatch" || body.Error.CanonicalRequest == "" {
				t.Fatalf("answer %s, want signature_mismatch with the canonical request", stdout.String())
			}
			want := "* canonical request (" + scheme.String() + "):\n" + body.Error.CanonicalRequest +
				"\n* string to sign:\n" + body.Error.StringToSign + "\n"
			if !strings.Contains(stderr.String(), want) {
				t.Fatalf("stderr:\n%s\nwant it to hold:\n%s", stderr.String(), want)
			}
		})
	}
}

// TestAdaptNamesTheLineOfABadScheme: `caddy adapt` of a Caddyfile with an
// unknown scheme names the line of the schemes subdirective, not the end
// of the block.
func TestAdaptNamesTheLineOfABadScheme(t *testing.T) {
	const caddyfile = `{
	admin off
}
:8080 {
	access_auth orders {
		max_skew 5m
		schemes jdcloud2 hmac
		hide_credentials
	}
	respond ok
}
`
	const schemesLine = 7
	config := filepath.Join(t.TempDir(), "Caddyfile")
	if err := os.WriteFile(config, []byte(caddyfile), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := gatewaytest.Command(t, "adapt", "--config", config, "--adapter", "caddyfile").CombinedOutput()
	if err == nil {
		t.Fatalf("caddy adapt accepted an unknown scheme:\n%s", out)
	}
	want := fmt.Sprintf("%s:%d", config, schemesLine)
	if !strings.Contains(string(out), `schemes: unknown scheme \"hmac\"`) || !strings.Contains(string(out), want) {
		t.Fatalf("caddy adapt says:\n%s\nwant the unknown scheme at %s", out, want)
	}
}
