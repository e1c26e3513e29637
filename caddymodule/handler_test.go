package caddymodule

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/accessauth/caddy-access-auth/cache"
	"github.com/accessauth/caddy-access-auth/signature"
	"github.com/accessauth/caddy-access-auth/store"
)

func TestHideCredentials(t *testing.T) {
	h := http.Header{
		"Authorization":            {"JDCLOUD2-HMAC-SHA256 Credential=…"},
		"X-Jdcloud-Date":           {"20260101T000000Z"},
		"X-Jdcloud-Nonce":          {"n"},
		"X-Amz-Content-Sha256":     {"UNSIGNED-PAYLOAD"},
		"X-Ca-Signature":           {"sig"},
		"x-ca-key":                 {"non-canonical"},
		"Content-Type":             {"application/json"},
		"X-Access-Key-Id":          {"kept for forward_identity to replace"},
		"X-Jdcloudish-Not-A-Match": {"kept"},
	}
	hideCredentials(h)
	want := http.Header{
		"Content-Type":             {"application/json"},
		"X-Access-Key-Id":          {"kept for forward_identity to replace"},
		"X-Jdcloudish-Not-A-Match": {"kept"},
	}
	if !reflect.DeepEqual(h, want) {
		t.Errorf("after hideCredentials: %v, want %v", h, want)
	}
}

func TestOriginalRequestAndClientIP(t *testing.T) {
	r := httptest.NewRequest("POST", "http://api.example.com/a%3Ab/c?z=1&a=2", nil)
	r.RemoteAddr = "[::ffff:192.0.2.7]:5555"
	w := httptest.NewRecorder()
	r = caddyhttp.PrepareRequest(r, caddy.NewReplacer(), w, nil)

	// A rewrite after the server took its copy of the original request.
	r.URL.Path, r.URL.RawPath, r.URL.RawQuery = "/rewritten", "", "x=9"
	r.Method = "GET"
	orig := originalRequest(r)
	if orig.Method != "POST" || orig.Host != "api.example.com" || orig.Path != "/a%3Ab/c" || orig.RawQuery != "z=1&a=2" {
		t.Errorf("original request %+v", orig)
	}

	if got := clientIP(r); got != netip.MustParseAddr("192.0.2.7") {
		t.Errorf("client IP from the peer address: %v", got)
	}
	// Caddy's client IP (trusted_proxies applied) wins over the peer.
	caddyhttp.SetVar(r.Context(), caddyhttp.ClientIPVarKey, "198.51.100.1")
	if got := clientIP(r); got != netip.MustParseAddr("198.51.100.1") {
		t.Errorf("client IP from Caddy's variable: %v", got)
	}
}

// TestValidateDoesNoIO: `caddy validate` provisions every module; it must
// neither create the store's files nor connect to Redis.
func TestValidateDoesNoIO(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "not-yet")
	for name, app := range map[string]string{
		"file":  `{"store":{"type":"file","path":"` + filepath.Join(dir, "store.db") + `"}}`,
		"redis": `{"store":{"type":"redis","urls":["redis://192.0.2.1:6379"]},"master_key":["` + testMasterKey + `"]}`,
	} {
		t.Run(name, func(t *testing.T) {
			cfg := `{"apps":{"access_auth":` + app + `,"http":{"servers":{"s":{"listen":["127.0.0.1:0"],"routes":[{"handle":[` +
				`{"handler":"access_auth","group":"orders"},{"handler":"access_auth_admin","tokens":["` + testAdminToken + `"]}]}]}}}}}`
			var c caddy.Config
			if err := json.Unmarshal([]byte(cfg), &c); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			if err := caddy.Validate(&c); err != nil {
				t.Fatalf("validate: %v", err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("validate took %v: did it dial?", d)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("validate touched the store directory: %v", err)
			}
		})
	}
}

func TestAppDefaultsAndStateKey(t *testing.T) {
	provision := func(raw string) *App { return provisionApp(t, raw) }
	t.Setenv("CADDYMODULE_TEST_KEY", testMasterKey)
	a := provision(`{}`)
	if a.Store.Type != StoreFile || a.Store.Path != filepath.Join(caddy.AppDataDir(), "access_auth", "store.db") {
		t.Errorf("default store %+v", a.Store)
	}
	if a.Cache.MaxEntries != cache.DefaultMaxEntries || time.Duration(a.Cache.TTL) != cache.DefaultTTL ||
		time.Duration(a.Cache.NegativeTTL) != cache.DefaultNegativeTTL || time.Duration(a.MaxStale) != cache.DefaultMaxStale {
		t.Errorf("default cache %+v, max_stale %v", a.Cache, a.MaxStale)
	}
	b := provision(`{"cache":{"max_entries":1000000}}`)
	if a.stateKey != b.stateKey || a.backendKey() != b.backendKey() {
		t.Error("the same configuration written two ways must share its state")
	}
	c := provision(`{"cache":{"ttl":"1m"}}`)
	if a.stateKey == c.stateKey || a.backendKey() != c.backendKey() {
		t.Error("another cache config must get its own state over the same backend")
	}
	r := provision(`{"store":{"type":"redis","urls":["redis://h:1"]},"master_key":["{env.CADDYMODULE_TEST_KEY}"]}`)
	if r.MasterKeys[0] != testMasterKey || len(r.masterKeys) != 1 || !r.isRedis() {
		t.Errorf("master_key placeholder not resolved: %q", r.MasterKeys)
	}
}

// servingHandler is a started file-store app with the group "orders", a
// key bound to it, and a handler of that group without replay protection
// (a re-sent request would be refused).
func servingHandler(tb testing.TB) (*Handler, *sharedState, store.AccessKey) {
	tb.Helper()
	app := new(App)
	if err := json.Unmarshal([]byte(`{"store":{"type":"file","path":"`+filepath.Join(tb.TempDir(), "store.db")+`"}}`), app); err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	tb.Cleanup(cancel)
	if err := app.Provision(ctx); err != nil {
		tb.Fatal(err)
	}
	if err := app.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { app.Stop() })
	st, _ := app.acquire()
	actor := store.Actor{Name: "bench"}
	if _, err := st.store.CreateGroup(ctx, store.Group{Name: "orders"}, actor); err != nil {
		tb.Fatal(err)
	}
	key, err := st.store.CreateKey(ctx, store.NewKey{Name: "bench"}, actor)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := st.store.CreateAuthorization(ctx, store.NewAuthorization{
		AccessKeyID: key.ID, Bindings: []store.Binding{{Group: "orders", Environment: "*"}},
	}, actor); err != nil {
		tb.Fatal(err)
	}
	h := &Handler{Group: "orders", ReplayProtection: "off", logger: zap.NewNop()}
	if err := h.provision(app); err != nil {
		tb.Fatal(err)
	}
	return h, st, key
}

// BenchmarkServeHTTP is the handler around the check: a cached key,
// jdcloud2, no body, replay protection off, identity forwarded.
func BenchmarkServeHTTP(b *testing.B) {
	h, _, key := servingHandler(b)

	r := benchRequest(b, key)
	w := httptest.NewRecorder()
	var passed int
	next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { passed++; return nil })
	// Each request gets its own replacer, as in Caddy; "baseline" is that
	// set-up alone, to subtract.
	serve := func(check bool) {
		rr := caddyhttp.PrepareRequest(r, caddy.NewReplacer(), w, nil)
		rr.Header = r.Header.Clone() // its own, as net/http gives each request
		if check {
			h.ServeHTTP(w, rr, next)
		} else {
			next(w, rr)
		}
	}
	serve(true)
	if passed != 1 {
		b.Fatalf("first request not passed on: %s", w.Body)
	}
	for _, bench := range []struct {
		name  string
		check bool
	}{{"baseline", false}, {"access_auth", true}} {
		b.Run(bench.name, func(b *testing.B) {
			passed = 0
			b.ReportAllocs()
			for b.Loop() {
				serve(bench.check)
			}
			if passed != b.N {
				b.Fatalf("%d of %d requests passed", passed, b.N)
			}
		})
	}
	// Every core checking at once, as under load: shared counters and
	// locks of the request path show here, not above.
	b.Run("access_auth_parallel", func(b *testing.B) {
		var passed atomic.Int64
		next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { passed.Add(1); return nil })
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			r := benchRequest(b, key)
			w := httptest.NewRecorder()
			for pb.Next() {
				rr := caddyhttp.PrepareRequest(r, caddy.NewReplacer(), w, nil)
				rr.Header = r.Header.Clone()
				h.ServeHTTP(w, rr, next)
			}
		})
		if passed.Load() != int64(b.N) {
			b.Fatalf("%d of %d requests passed", passed.Load(), b.N)
		}
	})
}

// benchRequest is a GET signed with key carrying the headers Go's HTTP
// client adds, as the bench's load does: the request's header map is what
// the handler adds the forwarded identity to.
func benchRequest(b *testing.B, key store.AccessKey) *http.Request {
	r := httptest.NewRequest("GET", "http://api.example.com/orders/1?x=y", nil)
	r.Header.Set("User-Agent", "Go-http-client/1.1")
	r.Header.Set("Accept-Encoding", "gzip")
	if err := signature.Sign(r, signature.JDCloud2, key.APIKey, key.APISecret); err != nil {
		b.Fatal(err)
	}
	return r
}
