package caddymodule

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/accessauth/caddy-access-auth/enforcement"
	"github.com/accessauth/caddy-access-auth/signature"
)

// These tests run the plugin inside a real Caddy (caddytest starts it in
// this process, admin on localhost:2999) over the embedded store, and talk
// to it only over HTTP: the admin API to set up keys and bindings, and
// signed requests through the sites. Caddy is a process singleton: no
// t.Parallel.

const (
	adminURL = "http://localhost:2999"
	siteURL  = "http://localhost:9080"
)

func TestMain(m *testing.M) {
	// Keep Caddy's data and config (and so any default store) out of $HOME.
	dir, err := os.MkdirTemp("", "caddymodule-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("XDG_DATA_HOME", filepath.Join(dir, "data"))
	os.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	os.Setenv("CADDYMODULE_TEST_MASTER_KEY", testMasterKey)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// globalOptions are the options every test config starts with.
const globalOptions = `
	admin localhost:2999
	http_port 9080
	https_port 9443
	skip_install_trust
	grace_period 1ns
`

// startCaddy loads a Caddyfile whose global options are globalOptions plus
// extra, and whose sites are sites. A test that caddytest skips fails under
// CI, where nothing may be skipped.
func startCaddy(t *testing.T, extra, sites string) *caddytest.Tester {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Cleanup(func() {
			if t.Skipped() {
				t.Error("caddytest skipped the test; CI=true requires it to run")
			}
		})
	}
	tester := caddytest.NewTester(t)
	initServer(t, tester, extra, sites)
	return tester
}

// initServer loads the Caddyfile of startCaddy into tester's Caddy. The
// servers of the config it replaces close their idle connections as they
// stop, so the client drops its own: a request sent on one of them at
// that moment would read EOF (as TestReloadRedisState once did in CI).
func initServer(t *testing.T, tester *caddytest.Tester, extra, sites string) {
	t.Helper()
	tester.InitServer("{"+globalOptions+extra+"\n}\n"+sites, "caddyfile")
	client.CloseIdleConnections()
	if t.Failed() {
		t.FailNow()
	}
}

// client talks to Caddy; it never follows redirects so answers are seen as sent.
var client = &http.Client{
	Timeout:       10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// adminDo sends a JSON request to the admin API and decodes the answer
// into out (when not nil), failing the test on an unexpected status
// (wantStatus 0: any 2xx).
func adminDo(t *testing.T, method, path string, body any, wantStatus int, out any) {
	t.Helper()
	var reader io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		reader = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, adminURL+path, reader)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != wantStatus && (wantStatus != 0 || resp.StatusCode/100 != 2) {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, wantStatus, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: decoding %s: %v", method, path, raw, err)
		}
	}
}

// accessKey is what the admin API answers on create and reset.
type accessKey struct {
	ID        string `json:"id"`
	APIKey    string `json:"api_key"`
	APISecret string `json:"api_secret"`
}

type authorization struct {
	ID string `json:"id"`
}

// newAuthorizedKey creates a key and an authorization with the given
// bindings (group → environment) and allowed IPs.
func newAuthorizedKey(t *testing.T, name string, allowedIPs []string, bindings ...[2]string) (accessKey, authorization) {
	t.Helper()
	var key accessKey
	adminDo(t, "POST", "/access-auth/keys", map[string]any{"name": name}, http.StatusCreated, &key)
	if key.APIKey == "" || key.APISecret == "" {
		t.Fatalf("created key lacks api_key or api_secret: %+v", key)
	}
	binds := []map[string]string{}
	for _, b := range bindings {
		binds = append(binds, map[string]string{"group": b[0], "environment": b[1]})
	}
	var auth authorization
	adminDo(t, "POST", "/access-auth/authorizations", map[string]any{
		"access_key_id": key.ID, "bindings": binds, "allowed_ips": allowedIPs,
	}, http.StatusCreated, &auth)
	return key, auth
}

// waitGroupConfigured waits until the routes registered group with the
// store (asynchronously, after start) and the admin API calls it configured.
func waitGroupConfigured(t *testing.T, group string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := client.Get(adminURL + "/access-auth/groups/" + group)
		if err == nil {
			var g struct {
				Configured   bool     `json:"configured"`
				Environments []string `json:"environments"`
			}
			ok := resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&g) == nil && g.Configured
			resp.Body.Close()
			if ok {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s was not registered as configured within 5s", group)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// signed builds a request signed with key's secret.
func signed(t *testing.T, method, url, body string, scheme signature.Scheme, apiKey, secret string, opts ...signature.Option) *http.Request {
	t.Helper()
	var reader io.Reader
	if body != "" {
		reader = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, reader)
	if err != nil {
		t.Fatal(err)
	}
	if err := signature.Sign(req, scheme, apiKey, secret, opts...); err != nil {
		t.Fatalf("signing: %v", err)
	}
	return req
}

type answer struct {
	status int
	header http.Header
	body   string
}

func send(t *testing.T, req *http.Request) answer {
	t.Helper()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header, string(raw)}
}

// wantDenial checks a refusal against its row in docs/request-check.md.
func wantDenial(t *testing.T, a answer, status int, statusName, reason, message, challenge string) {
	t.Helper()
	if a.status != status {
		t.Fatalf("status %d, want %d (%s): %s", a.status, status, reason, a.body)
	}
	if ct := a.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var d enforcement.DenialBody
	if err := json.Unmarshal([]byte(a.body), &d); err != nil {
		t.Fatalf("denial body %q: %v", a.body, err)
	}
	if d.Error.Code != status || d.Error.Status != statusName || d.Error.Reason != reason || d.Error.Message != message {
		t.Errorf("denial %+v, want code %d status %s reason %s message %q", d.Error, status, statusName, reason, message)
	}
	if d.RequestID == "" {
		t.Error("denial has no requestId")
	}
	if got := a.header.Get("WWW-Authenticate"); got != challenge {
		t.Errorf("WWW-Authenticate %q, want %q", got, challenge)
	}
}

// upstream echoes what reached it: the URI and the request headers.
func upstream(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"uri": r.RequestURI, "header": r.Header})
	}))
	t.Cleanup(srv.Close)
	return srv
}

type echoed struct {
	URI    string      `json:"uri"`
	Header http.Header `json:"header"`
}

// enforcementSites has one route per behaviour under test. respond is
// written before access_auth on purpose: the directive orders itself first.
const enforcementSites = `
http://localhost:9080 {
	log {
		output file {ACCESS_LOG}
		format json
	}
	log_append reason {access_auth.reason}
	log_append scheme {access_auth.scheme}
	handle /api/* {
		respond "ok {http.auth.user.id} key={access_auth.access_key_id} api={access_auth.api_key} auth={access_auth.authorization_id} group={access_auth.group} env={access_auth.environment} scheme={access_auth.scheme}"
		access_auth orders
	}
	handle /test/* {
		access_auth orders {
			environment test
		}
		respond "ok test"
	}
	handle /billing/* {
		access_auth billing
		respond "ok billing"
	}
	handle /small/* {
		access_auth orders {
			max_body 1KiB
		}
		respond "ok small"
	}
	handle /aliyun/* {
		access_auth orders {
			schemes aliyun
		}
		respond "ok aliyun"
	}
	handle /old/* {
		rewrite * /new{uri}
		access_auth orders
		respond "ok {uri}"
	}
	handle_path /strip/* {
		access_auth orders
		respond "ok {uri}"
	}
	handle /proxy/* {
		access_auth orders {
			hide_credentials
		}
		reverse_proxy {UPSTREAM}
	}
	handle /plain/* {
		access_auth orders {
			forward_identity off
		}
		reverse_proxy {UPSTREAM}
	}
}
`

func TestEnforcement(t *testing.T) {
	dir := t.TempDir()
	accessLog := filepath.Join(dir, "access.log")
	up := upstream(t)
	sites := strings.NewReplacer("{ACCESS_LOG}", accessLog, "{UPSTREAM}", up.URL).Replace(enforcementSites)
	startCaddy(t, "access_auth {\nstore file "+filepath.Join(dir, "store.db")+"\n}", sites)

	// Every route registered its group, asynchronously after start.
	waitGroupConfigured(t, "orders")
	waitGroupConfigured(t, "billing")
	if _, err := os.Stat(filepath.Join(dir, "master.key")); err != nil {
		t.Errorf("the file store made no master.key beside its database: %v", err)
	}

	alice, aliceAuth := newAuthorizedKey(t, "alice", nil, [2]string{"orders", "online"})
	walled, _ := newAuthorizedKey(t, "walled", []string{"10.0.0.0/8"}, [2]string{"orders", "*"})
	jd2 := signature.JDCloud2

	t.Run("allowed, every scheme, placeholders", func(t *testing.T) {
		for _, scheme := range []signature.Scheme{signature.JDCloud2, signature.JDCloud3, signature.SigV4, signature.Aliyun} {
			a := send(t, signed(t, "GET", siteURL+"/api/items?b=2&a=1", "", scheme, alice.APIKey, alice.APISecret))
			want := fmt.Sprintf("ok %s key=%s api=%s auth=%s group=orders env=online scheme=%s",
				alice.ID, alice.ID, alice.APIKey, aliceAuth.ID, scheme)
			if a.status != http.StatusOK || a.body != want {
				t.Errorf("%s: %d %q, want 200 %q", scheme, a.status, a.body, want)
			}
		}
	})

	t.Run("POST body signed", func(t *testing.T) {
		a := send(t, signed(t, "POST", siteURL+"/api/items", `{"n":1}`, jd2, alice.APIKey, alice.APISecret))
		if a.status != http.StatusOK {
			t.Errorf("status %d: %s", a.status, a.body)
		}
	})

	challenge := jd2.Challenge()
	// tampered is alice's signed request to /api/x, changed by edit.
	tampered := func(edit func(h http.Header)) func() *http.Request {
		return func() *http.Request {
			r := signed(t, "GET", siteURL+"/api/x", "", jd2, alice.APIKey, alice.APISecret)
			edit(r.Header)
			return r
		}
	}
	rows := []struct {
		name               string
		req                func() *http.Request
		status             int
		statusName, reason string
		message, challenge string
	}{
		{
			name:   "missing_credentials",
			req:    func() *http.Request { r, _ := http.NewRequest("GET", siteURL+"/api/x", nil); return r },
			status: 401, statusName: "ACCESS_ERROR", reason: "missing_credentials",
			message: "lack of header authorization", challenge: challenge,
		},
		{
			name:   "malformed_credentials",
			req:    tampered(func(h http.Header) { h.Set("Authorization", "JDCLOUD2-HMAC-SHA256 garbage") }),
			status: 401, statusName: "ACCESS_ERROR", reason: "malformed_credentials",
			message: "lack of credential in the header authorization", challenge: challenge,
		},
		{
			name:   "missing_date",
			req:    tampered(func(h http.Header) { h.Del("X-Jdcloud-Date") }),
			status: 401, statusName: "ACCESS_ERROR", reason: "missing_date",
			message: "lack of header x-jdcloud-date", challenge: challenge,
		},
		{
			name: "missing_signed_headers",
			req: tampered(func(h http.Header) {
				auth := h.Get("Authorization")
				h.Set("Authorization", auth[:strings.Index(auth, "SignedHeaders=")]+auth[strings.Index(auth, "Signature="):])
			}),
			status: 401, statusName: "ACCESS_ERROR", reason: "missing_signed_headers",
			message: "lack of header signedHeaders", challenge: challenge,
		},
		{
			name:   "missing_nonce",
			req:    tampered(func(h http.Header) { h.Del("X-Jdcloud-Nonce") }),
			status: 401, statusName: "ACCESS_ERROR", reason: "missing_nonce",
			message: "lack of header x-jdcloud-nonce", challenge: challenge,
		},
		{
			name: "invalid_key",
			req: func() *http.Request {
				return signed(t, "GET", siteURL+"/api/x", "", jd2, "0123456789ABCDEF0123456789ABCDEF", "secret")
			},
			status: 401, statusName: "ACCESS_ERROR", reason: "invalid_key",
			message: "Invalid accessKey", challenge: challenge,
		},
		{
			name: "signature_mismatch",
			req: func() *http.Request {
				return signed(t, "GET", siteURL+"/api/x", "", jd2, alice.APIKey, "not the secret")
			},
			status: 401, statusName: "ACCESS_ERROR", reason: "signature_mismatch",
			message: "sign result is not same", challenge: challenge,
		},
		{
			name: "date_out_of_range",
			req: func() *http.Request {
				return signed(t, "GET", siteURL+"/api/x", "", jd2, alice.APIKey, alice.APISecret, signature.WithTime(time.Now().Add(-time.Hour)))
			},
			status: 401, statusName: "ACCESS_ERROR", reason: "date_out_of_range",
			message: "request date is out of the allowed range", challenge: challenge,
		},
		{
			name: "replayed_nonce",
			req: func() *http.Request {
				r := signed(t, "GET", siteURL+"/api/x", "", jd2, alice.APIKey, alice.APISecret)
				if a := send(t, r); a.status != http.StatusOK {
					t.Fatalf("first request: %d %s", a.status, a.body)
				}
				return r
			},
			status: 401, statusName: "ACCESS_ERROR", reason: "replayed_nonce",
			message: "nonce has been used", challenge: challenge,
		},
		{
			name: "not_authorized: no binding to the group",
			req: func() *http.Request {
				return signed(t, "GET", siteURL+"/billing/x", "", jd2, alice.APIKey, alice.APISecret)
			},
			status: 403, statusName: "HTTP_FORBIDDEN", reason: "not_authorized",
			message: "access key is not authorized for this API group",
		},
		{
			name: "not_authorized: bound to another environment",
			req: func() *http.Request {
				return signed(t, "GET", siteURL+"/test/x", "", jd2, alice.APIKey, alice.APISecret)
			},
			status: 403, statusName: "HTTP_FORBIDDEN", reason: "not_authorized",
			message: "access key is not authorized for this API group",
		},
		{
			name: "ip_not_allowed",
			req: func() *http.Request {
				return signed(t, "GET", siteURL+"/api/x", "", jd2, walled.APIKey, walled.APISecret)
			},
			status: 403, statusName: "HTTP_FORBIDDEN", reason: "ip_not_allowed",
			message: "Your IP address is not allowed",
		},
		{
			name: "body_too_large",
			req: func() *http.Request {
				return signed(t, "POST", siteURL+"/small/x", strings.Repeat("x", 2048), jd2, alice.APIKey, alice.APISecret)
			},
			status: 413, statusName: "HTTP_REQUEST_ENTITY_TOO_LARGE", reason: "body_too_large",
			message: "Payload too large",
		},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			wantDenial(t, send(t, row.req()), row.status, row.statusName, row.reason, row.message, row.challenge)
		})
	}

	t.Run("aliyun denial carries X-Ca-Error-Message", func(t *testing.T) {
		r := signed(t, "GET", siteURL+"/aliyun/x", "", signature.Aliyun, alice.APIKey, "not the secret")
		a := send(t, r)
		wantDenial(t, a, 401, "ACCESS_ERROR", "signature_mismatch", "sign result is not same", signature.Aliyun.Challenge())
		if got := a.header.Get("X-Ca-Error-Message"); got != "sign result is not same" {
			t.Errorf("X-Ca-Error-Message %q", got)
		}
		plain, _ := http.NewRequest("GET", siteURL+"/aliyun/x", nil)
		wantDenial(t, send(t, plain), 401, "ACCESS_ERROR", "missing_credentials", "lack of header authorization", signature.Aliyun.Challenge())
	})

	t.Run("signature checked against the URI before rewrite", func(t *testing.T) {
		a := send(t, signed(t, "GET", siteURL+"/old/thing?q=1", "", jd2, alice.APIKey, alice.APISecret))
		if a.status != http.StatusOK || a.body != "ok /new/old/thing?q=1" {
			t.Errorf("rewrite: %d %q", a.status, a.body)
		}
		a = send(t, signed(t, "GET", siteURL+"/strip/thing", "", jd2, alice.APIKey, alice.APISecret))
		if a.status != http.StatusOK || a.body != "ok /thing" {
			t.Errorf("handle_path: %d %q", a.status, a.body)
		}
	})

	t.Run("forwarded identity, hidden credentials", func(t *testing.T) {
		r := signed(t, "GET", siteURL+"/proxy/x", "", jd2, alice.APIKey, alice.APISecret)
		// Client-sent copies must not reach the upstream (not signed, so
		// they do not disturb the signature).
		r.Header.Set("X-Access-Key-Id", "ak-forged")
		r.Header.Add("X-Api-Group", "admin")
		a := send(t, r)
		if a.status != http.StatusOK {
			t.Fatalf("status %d: %s", a.status, a.body)
		}
		var e echoed
		if err := json.Unmarshal([]byte(a.body), &e); err != nil {
			t.Fatal(err)
		}
		for name, want := range map[string]string{
			"X-Access-Key-Id": alice.ID, "X-Access-Authorization-Id": aliceAuth.ID,
			"X-Api-Group": "orders", "X-Api-Environment": "online",
		} {
			if got := e.Header[name]; len(got) != 1 || got[0] != want {
				t.Errorf("upstream got %s %q, want exactly %q", name, got, want)
			}
		}
		for name := range e.Header {
			if name == "Authorization" || strings.HasPrefix(name, "X-Jdcloud-") {
				t.Errorf("hide_credentials let %s through", name)
			}
		}
	})

	t.Run("forward_identity off, credentials kept", func(t *testing.T) {
		req := signed(t, "GET", siteURL+"/plain/x", "", jd2, alice.APIKey, alice.APISecret)
		req.Header.Set("X-Access-Key-Id", "ak-forged")
		a := send(t, req)
		var e echoed
		if err := json.Unmarshal([]byte(a.body), &e); err != nil {
			t.Fatalf("%d %s: %v", a.status, a.body, err)
		}
		if _, ok := e.Header["X-Access-Key-Id"]; ok {
			t.Errorf("forward_identity off let X-Access-Key-Id through: %q", e.Header["X-Access-Key-Id"])
		}
		if e.Header.Get("Authorization") == "" || e.Header.Get("X-Jdcloud-Nonce") == "" {
			t.Error("without hide_credentials the signature headers must go upstream")
		}
	})

	t.Run("access log carries user_id and reason", func(t *testing.T) {
		bad := signed(t, "GET", siteURL+"/api/logged", "", jd2, alice.APIKey, "wrong")
		send(t, bad)
		send(t, signed(t, "GET", siteURL+"/api/logged", "", jd2, alice.APIKey, alice.APISecret))
		deadline := time.Now().Add(3 * time.Second)
		for {
			var allowed, denied bool
			raw, _ := os.ReadFile(accessLog)
			for _, line := range strings.Split(string(raw), "\n") {
				var entry struct {
					Status  int    `json:"status"`
					UserID  string `json:"user_id"`
					Reason  string `json:"reason"`
					Scheme  string `json:"scheme"`
					Request struct {
						URI string `json:"uri"`
					} `json:"request"`
				}
				if json.Unmarshal([]byte(line), &entry) != nil || entry.Request.URI != "/api/logged" {
					continue
				}
				if entry.Status == 200 && entry.UserID == alice.ID && entry.Scheme == "jdcloud2" && entry.Reason == "" {
					allowed = true
				}
				if entry.Status == 401 && entry.Reason == "signature_mismatch" && entry.UserID == "" {
					denied = true
				}
				if strings.Contains(line, alice.APISecret) {
					t.Fatal("the access log holds the API secret")
				}
			}
			if allowed && denied {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("access log lacks the entries (allowed %v, denied %v):\n%s", allowed, denied, raw)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})

	t.Run("disabled key refused at once", func(t *testing.T) {
		bob, _ := newAuthorizedKey(t, "bob", nil, [2]string{"orders", "*"})
		if a := send(t, signed(t, "GET", siteURL+"/api/x", "", jd2, bob.APIKey, bob.APISecret)); a.status != http.StatusOK {
			t.Fatalf("before disabling: %d %s", a.status, a.body)
		}
		adminDo(t, "PATCH", "/access-auth/keys/"+bob.ID, map[string]any{"enabled": false}, http.StatusOK, nil)
		// The write dropped the cached credential before it answered: the
		// very next request is refused.
		a := send(t, signed(t, "GET", siteURL+"/api/x", "", jd2, bob.APIKey, bob.APISecret))
		wantDenial(t, a, 401, "ACCESS_ERROR", "invalid_key", "Invalid accessKey", challenge)

		adminDo(t, "PATCH", "/access-auth/keys/"+bob.ID, map[string]any{"enabled": true}, http.StatusOK, nil)
		if a := send(t, signed(t, "GET", siteURL+"/api/x", "", jd2, bob.APIKey, bob.APISecret)); a.status != http.StatusOK {
			t.Fatalf("enabled again: %d %s", a.status, a.body)
		}
	})

	t.Run("unbinding refuses at once", func(t *testing.T) {
		carol, carolAuth := newAuthorizedKey(t, "carol", nil, [2]string{"orders", "online"})
		if a := send(t, signed(t, "GET", siteURL+"/api/x", "", jd2, carol.APIKey, carol.APISecret)); a.status != http.StatusOK {
			t.Fatalf("bound: %d %s", a.status, a.body)
		}
		adminDo(t, "DELETE", "/access-auth/authorizations/"+carolAuth.ID+"/bindings/orders?environment=online", nil, 0, nil)
		a := send(t, signed(t, "GET", siteURL+"/api/x", "", jd2, carol.APIKey, carol.APISecret))
		wantDenial(t, a, 403, "HTTP_FORBIDDEN", "not_authorized", "access key is not authorized for this API group", "")
	})

	t.Run("key reset with grace", func(t *testing.T) {
		dave, _ := newAuthorizedKey(t, "dave", nil, [2]string{"orders", "*"})
		const grace = time.Second
		var reset accessKey
		adminDo(t, "POST", "/access-auth/keys/"+dave.ID+"/reset", map[string]any{"grace": grace.String()}, http.StatusOK, &reset)
		if reset.APISecret == "" || reset.APISecret == dave.APISecret {
			t.Fatalf("reset answered no new secret: %+v", reset)
		}
		resetAt := time.Now()
		for _, secret := range []string{reset.APISecret, dave.APISecret} {
			a := send(t, signed(t, "GET", siteURL+"/api/x", "", jd2, dave.APIKey, secret))
			if a.status != http.StatusOK {
				t.Fatalf("within the grace: %d %s", a.status, a.body)
			}
		}
		time.Sleep(time.Until(resetAt.Add(grace + 100*time.Millisecond)))
		a := send(t, signed(t, "GET", siteURL+"/api/x", "", jd2, dave.APIKey, dave.APISecret))
		wantDenial(t, a, 401, "ACCESS_ERROR", "signature_mismatch", "sign result is not same", challenge)
		if a := send(t, signed(t, "GET", siteURL+"/api/x", "", jd2, dave.APIKey, reset.APISecret)); a.status != http.StatusOK {
			t.Errorf("new secret after the grace: %d %s", a.status, a.body)
		}
	})

	t.Run("metrics on the admin endpoint", func(t *testing.T) {
		resp, err := client.Get(adminURL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		metrics := string(raw)
		for _, want := range []string{
			`caddy_access_auth_requests_total{group="orders",reason="allowed",result="allowed"}`,
			`caddy_access_auth_requests_total{group="orders",reason="signature_mismatch",result="denied"}`,
			`caddy_access_auth_requests_total{group="billing",reason="not_authorized",result="denied"}`,
			`caddy_access_auth_decision_duration_seconds_bucket{le="1e-06"}`,
			`caddy_access_auth_cache_lookups_total{result="hit"}`,
			`caddy_access_auth_invalidations_total`,
			`caddy_access_auth_store_up 1`,
		} {
			if !strings.Contains(metrics, want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
		for _, secret := range []string{alice.ID, alice.APIKey, alice.APISecret} {
			if strings.Contains(metrics, secret) {
				t.Errorf("/metrics names %s", secret)
			}
		}
	})

	t.Run("audit names the admin endpoint", func(t *testing.T) {
		var audit struct {
			Items []struct {
				Actor string `json:"actor"`
			} `json:"items"`
		}
		adminDo(t, "GET", "/access-auth/audit?limit=1", nil, http.StatusOK, &audit)
		if len(audit.Items) != 1 || audit.Items[0].Actor != actorAdminEndpoint {
			t.Errorf("audit %+v, want actor %s", audit.Items, actorAdminEndpoint)
		}
	})
}

func TestReloadKeepsWorking(t *testing.T) {
	dir := t.TempDir()
	storeOpt := "access_auth {\nstore file " + filepath.Join(dir, "store.db") + "\n}"
	site := func(body string) string {
		return "http://localhost:9080 {\naccess_auth orders\nrespond \"" + body + " {http.auth.user.id}\"\n}"
	}
	startCaddy(t, storeOpt, site("first"))
	waitGroupConfigured(t, "orders")
	key, _ := newAuthorizedKey(t, "reload", nil, [2]string{"orders", "online"})
	get := func() answer {
		return send(t, signed(t, "GET", siteURL+"/x", "", signature.JDCloud2, key.APIKey, key.APISecret))
	}
	if a := get(); a.status != http.StatusOK || a.body != "first "+key.ID {
		t.Fatalf("first config: %d %q", a.status, a.body)
	}

	// Same store and cache: the state (and its open bbolt file) carries over.
	startCaddy(t, storeOpt, site("second"))
	if a := get(); a.status != http.StatusOK || a.body != "second "+key.ID {
		t.Fatalf("after reload: %d %q", a.status, a.body)
	}

	// Other cache settings, same file: a new state over the same backend
	// (a second bbolt open of the file would wait on its lock).
	startCaddy(t, "access_auth {\nstore file "+filepath.Join(dir, "store.db")+"\ncache {\nmax_entries 1000\n}\n}", site("third"))
	if a := get(); a.status != http.StatusOK || a.body != "third "+key.ID {
		t.Fatalf("after changing the cache: %d %q", a.status, a.body)
	}
	// The admin API follows the running config.
	adminDo(t, "PATCH", "/access-auth/keys/"+key.ID, map[string]any{"enabled": false}, http.StatusOK, nil)
	a := get()
	if a.status != http.StatusUnauthorized {
		t.Fatalf("disabled after reload: %d %q", a.status, a.body)
	}

	// A config without the app: the admin API says so.
	startCaddy(t, "", "http://localhost:9080 {\nrespond ok\n}")
	var e struct{ Error, Code string }
	adminDo(t, "GET", "/access-auth/keys", nil, http.StatusServiceUnavailable, &e)
	if e.Code != "store_unavailable" || e.Error != "access_auth app is not running" {
		t.Errorf("admin API without the app: %+v", e)
	}
}

func TestRemoteAdmin(t *testing.T) {
	dir := t.TempDir()
	envToken := strings.Repeat("e", minTokenLength)
	t.Setenv("TEST_ADMIN_TOKEN", envToken)
	startCaddy(t, "access_auth {\nstore file "+filepath.Join(dir, "store.db")+"\n}", `
http://localhost:9080 {
	access_auth_admin {
		token `+testAdminToken+` {env.TEST_ADMIN_TOKEN}
	}
	respond "site"
}`)
	list := func(token string) answer {
		req, _ := http.NewRequest("GET", siteURL+"/access-auth/groups", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		return send(t, req)
	}
	if a := list(""); a.status != http.StatusUnauthorized || !strings.Contains(a.body, `"code":"unauthenticated"`) {
		t.Errorf("without a token: %d %s", a.status, a.body)
	}
	if a := list("wrong"); a.status != http.StatusUnauthorized {
		t.Errorf("wrong token: %d %s", a.status, a.body)
	}
	for _, token := range []string{testAdminToken, envToken} {
		if a := list(token); a.status != http.StatusOK || !strings.Contains(a.body, `"items"`) {
			t.Errorf("token %s: %d %s", token, a.status, a.body)
		}
	}
	// Writes through the site are audited as the remote admin.
	req, _ := http.NewRequest("POST", siteURL+"/access-auth/groups", strings.NewReader(`{"name":"remote"}`))
	req.Header.Set("Authorization", "Bearer "+testAdminToken)
	if a := send(t, req); a.status != http.StatusCreated {
		t.Fatalf("create group: %d %s", a.status, a.body)
	}
	var audit struct {
		Items []struct{ Actor, Target string } `json:"items"`
	}
	adminDo(t, "GET", "/access-auth/audit?limit=1", nil, http.StatusOK, &audit)
	if len(audit.Items) != 1 || audit.Items[0].Actor != actorRemoteAdmin {
		t.Errorf("audit %+v, want actor %s", audit.Items, actorRemoteAdmin)
	}
	// Other paths go on to the next handler.
	other, _ := http.NewRequest("GET", siteURL+"/elsewhere", nil)
	if a := send(t, other); a.status != http.StatusOK || a.body != "site" {
		t.Errorf("other path: %d %q", a.status, a.body)
	}
}

func TestLoadErrorsNameTheDirective(t *testing.T) {
	// Start from a running config so that /load answers the errors.
	startCaddy(t, "access_auth {\nstore file "+filepath.Join(t.TempDir(), "store.db")+"\n}", "http://localhost:9080 {\nrespond ok\n}")
	site := func(handler string) string {
		return "{" + globalOptions + "}\nhttp://localhost:9080 {\n" + handler + "\n}"
	}
	caddytest.AssertLoadError(t, site("access_auth {\nmax_skew x\n}"), "caddyfile", "access_auth: max_skew: invalid duration")
	caddytest.AssertLoadError(t, site("access_auth {\nenvironment test\n}"), "caddyfile", "access_auth: group: required")
	caddytest.AssertLoadError(t, site("access_auth_admin {\nconsole off\n}"), "caddyfile", "access_auth_admin: token: required")
	caddytest.AssertLoadError(t, "{"+globalOptions+"access_auth {\nstore redis redis://127.0.0.1:1\n}\n}\n:9080 {\nrespond ok\n}",
		"caddyfile", "master_key: required with store redis")

	// JSON configs are checked by Provision and Validate.
	jsonConfig := func(app, handler string) string {
		return `{"admin":{"listen":"localhost:2999"},"apps":{` + app + `"http":{"http_port":9080,"servers":{"s":{"listen":[":9080"],"routes":[{"handle":[` + handler + `]}]}}}}}`
	}
	caddytest.AssertLoadError(t, jsonConfig("", `{"handler":"access_auth"}`), "json", "access_auth: group: required")
	caddytest.AssertLoadError(t, jsonConfig("", `{"handler":"access_auth","group":"orders","schemes":["md5"]}`), "json", "access_auth: schemes: unknown scheme")
	caddytest.AssertLoadError(t, jsonConfig("", `{"handler":"access_auth","group":"orders","replay_protection":"store"}`), "json", "replay_protection store: needs store redis")
	caddytest.AssertLoadError(t, jsonConfig(`"access_auth":{"store":{"type":"redis","urls":["redis://127.0.0.1:1"]}},`, `{"handler":"access_auth","group":"orders"}`), "json", "access_auth: invalid configuration: master_key: required with store redis")
	caddytest.AssertLoadError(t, jsonConfig(`"access_auth":{"master_key":["{env.CADDYMODULE_TEST_UNSET}"]},`, `{"handler":"access_auth","group":"orders"}`), "json", "access_auth: invalid configuration: master_key: key 1: expected 32 bytes")
	caddytest.AssertLoadError(t, jsonConfig("", `{"handler":"access_auth_admin"}`), "json", "access_auth_admin: token: required")
}
