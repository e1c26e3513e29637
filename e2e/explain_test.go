package e2e

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/accessauth/caddy-access-auth/internal/gatewaytest"
	"github.com/accessauth/caddy-access-auth/internal/redistest"
)

// captureServer answers 200 to every request and keeps the last one as it
// arrived on the wire (request line, headers, body).
func captureServer(t *testing.T) (url string, last func() []byte) {
	t.Helper()
	var mu sync.Mutex
	var raw []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dump, err := httputil.DumpRequest(r, true)
		if err != nil {
			t.Error(err)
		}
		mu.Lock()
		raw = dump
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	return srv.URL, func() []byte {
		mu.Lock()
		defer mu.Unlock()
		return raw
	}
}

// explainedDiff matches the explanation's account of one differing line of
// the canonical request.
var explainedDiff = regexp.MustCompile(`line \d+ of the canonical request differs:\n  gateway: "([^"]*)"\n  yours:   "([^"]*)"`)

// TestExplainShowsTheDifferingLine is the test: for each scheme,
// caddy access-auth curl --verbose signs a request for /v1/orders (its
// canonical request goes to a file) and a server captures it raw; the
// capture sent to /v1/order instead is explained with --canonical, and the
// output puts both canonical requests side by side and names the one line
// that differs: the path. The capture as signed explains as allowed.
func TestExplainShowsTheDifferingLine(t *testing.T) {
	n := gatewaytest.Start(t, "explain", "", ordersSite)
	n.WaitGroup("orders")
	key := n.AuthorizedKey("alice", "orders")
	secretFile := writeFile(t, "secret", key.APISecret)
	capture, captured := captureServer(t)

	for _, scheme := range []string{"jdcloud2", "sigv4", "aliyun"} {
		t.Run(scheme, func(t *testing.T) {
			curl := gatewaytest.Command(t, "access-auth", "curl", "--verbose", "--scheme", scheme,
				"--key", key.APIKey, "--secret-file", secretFile, capture+"/v1/orders?page=1&size=10")
			var stderr bytes.Buffer
			curl.Stderr = &stderr
			if out, err := curl.Output(); err != nil {
				t.Fatalf("curl: %v\n%s%s", err, out, stderr.String())
			}
			signed := writeFile(t, "signed.txt", stderr.String())
			raw := captured()
			moved := bytes.Replace(raw, []byte("GET /v1/orders?"), []byte("GET /v1/order?"), 1)
			if bytes.Equal(moved, raw) {
				t.Fatalf("the capture has no request line for /v1/orders:\n%s", raw)
			}

			out, ok := cli(t, n, "explain", "--raw", writeFile(t, "moved.http", string(moved)), "--canonical", signed, "--group", "orders")
			if ok {
				t.Errorf("explain of a refused request exited zero:\n%s", out)
			}
			for _, want := range []string{"decision: signature_mismatch", "FAIL  signature", "canonical request, side by side:"} {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
			lines := explainedDiff.FindAllStringSubmatch(out, -1)
			if len(lines) != 1 {
				t.Fatalf("%d differing lines of the canonical request, want the path's alone:\n%s", len(lines), out)
			}
			gateway, yours := lines[0][1], lines[0][2]
			if !strings.Contains(gateway, "/v1/order") || strings.Contains(gateway, "/v1/orders") || !strings.Contains(yours, "/v1/orders") {
				t.Errorf("the differing line is gateway %q, yours %q; want the paths /v1/order and /v1/orders", gateway, yours)
			}
			if !regexp.MustCompile(`(?m)^! +\d+  .*/v1/order\b.* \| .*/v1/orders`).MatchString(out) {
				t.Errorf("no side-by-side line marked ! with both paths:\n%s", out)
			}
			if strings.Contains(out, key.APISecret) {
				t.Errorf("the output shows the secret:\n%s", out)
			}

			out, ok = cli(t, n, "explain", "--raw", writeFile(t, "signed.http", string(raw)), "--canonical", signed, "--group", "orders")
			if !ok || !strings.Contains(out, "decision: allowed") || explainedDiff.MatchString(out) {
				t.Errorf("the request as signed: exited zero = %v, want allowed with no differing line:\n%s", ok, out)
			}
		})
	}
}

// TestExplainCLI runs the explain subcommand's ways in and its errors.
func TestExplainCLI(t *testing.T) {
	n := gatewaytest.Start(t, "explain-cli", "", ordersSite)
	n.WaitGroup("orders")
	key := n.AuthorizedKey("alice", "orders")
	signed := func(path string) []string {
		req := n.SignedRequest(path, key)
		args := []string{"explain", n.Site + path}
		for name, values := range req.Header {
			for _, v := range values {
				args = append(args, "-H", name+": "+v)
			}
		}
		return args
	}
	garbage := writeFile(t, "garbage.http", "not a request\n\n")
	runCLICases(t, n, []cliCase{
		{"flags like curl", append(signed("/x"), "--group", "orders", "--client-ip", "192.0.2.1"), true,
			[]string{"decision: allowed", "ok    client_ip", "access key " + key.ID, `the route of group "orders"`}, []string{key.APISecret}},
		{"no group", signed("/x"), true, []string{"decision: allowed", "not checked: name the API group with --group"}, []string{"ok    binding"}},
		{"another group", append(signed("/x"), "--group", "billing"), false,
			[]string{"decision: not_authorized", `no route of this config serves group "billing"`, "would refuse this request: not_authorized"}, nil},
		{"json", append(signed("/x"), "--json"), true, []string{`"decision":"allowed"`, `"forms_tried":[{"form":"documented"`}, nil},
		{"unsigned", []string{"explain", n.Site + "/x"}, false,
			[]string{"decision: missing_credentials", "would refuse this request: missing_credentials"}, []string{"side by side"}},
		{"mismatch without --canonical", append(signed("/x"), "-X", "POST"), false,
			[]string{"decision: signature_mismatch", "canonical request the gateway computed (documented form):\nPOST\n/x", "--canonical FILE"}, nil},
		{"no URL", []string{"explain"}, false, []string{"give the request's URL"}, nil},
		{"--raw and a URL", []string{"explain", "--raw", garbage, n.Site}, false, []string{"--raw gives the whole request"}, nil},
		{"--raw missing", []string{"explain", "--raw", garbage + ".missing"}, false, []string{"--raw:", "no such file"}, nil},
		{"--raw not HTTP", []string{"explain", "--raw", garbage}, false, []string{"not an HTTP/1.1 request"}, nil},
		{"bad group name", append(signed("/x"), "--group", "No Such"), false, []string{`invalid_argument: group: invalid name "No Such"`}, []string{"{"}},
		{"unknown flag", []string{"explain", "--bogus", n.Site}, false, []string{"unknown flag: --bogus"}, nil},
	})

	t.Run("--raw - reads stdin", func(t *testing.T) {
		req := n.SignedRequest("/x", key)
		raw, err := httputil.DumpRequestOut(req, false)
		if err != nil {
			t.Fatal(err)
		}
		cmd := gatewaytest.Command(t, "access-auth", "explain", "--raw", "-", "--group", "orders", "--address", strings.TrimPrefix(n.Admin, "http://"))
		cmd.Stdin = bytes.NewReader(raw)
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "decision: allowed") {
			t.Fatalf("%v:\n%s", err, out)
		}
		// Explained, then sent: explain recorded no nonce.
		if a := n.Send(req); a.Status != http.StatusOK {
			t.Fatalf("the explained request, sent: %s", a)
		}
	})
}

// TestExplainAsksTheReplayStore: with the embedded store (the node's nonce
// table) and with Redis (SISMEMBER on the shared nonces), a request explained
// before it is sent is not recorded, so it passes; explained after, it
// shows replayed_nonce.
func TestExplainAsksTheReplayStore(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	for _, tc := range []struct{ name, options, wantRoute string }{
		{"local", "", "replay protection local"},
		{"redis", gatewaytest.RedisOptions(gatewaytest.NewMasterKey(t), "redis://"+srv.Addr), "replay protection store"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := gatewaytest.Start(t, "explain-replay-"+tc.name, tc.options, ordersSite)
			n.WaitGroup("orders")
			key := n.AuthorizedKey("alice", "orders")
			req := n.SignedRequest("/x", key)
			raw, err := httputil.DumpRequestOut(req, false)
			if err != nil {
				t.Fatal(err)
			}
			rawFile := writeFile(t, "request.http", string(raw))
			explain := func() (string, bool) { return cli(t, n, "explain", "--raw", rawFile, "--group", "orders") }

			out, ok := explain()
			if !ok || !strings.Contains(out, "the nonce is not recorded") || !strings.Contains(out, tc.wantRoute) {
				t.Fatalf("before sending: exited zero = %v, want allowed with the nonce not recorded, %q:\n%s", ok, tc.wantRoute, out)
			}
			if a := n.Send(req); a.Status != http.StatusOK {
				t.Fatalf("sent after explain: %s, want 200 (explain must record no nonce)", a)
			}
			out, ok = explain()
			if ok || !strings.Contains(out, "decision: replayed_nonce") || !strings.Contains(out, "FAIL  replay") {
				t.Fatalf("after sending: exited zero = %v, want replayed_nonce:\n%s", ok, out)
			}
		})
	}
}
