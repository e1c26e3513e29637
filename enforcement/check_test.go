package enforcement

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/accessauth/caddy-access-auth/cache"
	"github.com/accessauth/caddy-access-auth/replay"
	"github.com/accessauth/caddy-access-auth/signature"
	"github.com/accessauth/caddy-access-auth/store"
)

var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fakeKeys is a key source over compiled entries; err, when set, is what
// every lookup fails with.
type fakeKeys struct {
	entries map[string]*cache.Entry
	err     error
}

func (k *fakeKeys) Get(_ context.Context, apiKey string) (*cache.Entry, error) {
	if k.err != nil {
		return nil, k.err
	}
	if e, ok := k.entries[apiKey]; ok {
		return e, nil
	}
	return nil, cache.ErrUnknownKey
}

func secretOf(apiKey string) string { return "secret-" + apiKey }

// testCredentials holds one key per situation of the check.
func testCredentials() credentialLoader {
	hour := time.Hour
	auth := func(mod func(*store.CredentialAuthorization)) *store.CredentialAuthorization {
		a := &store.CredentialAuthorization{
			ID: "auth-1", Enabled: true,
			Bindings: []store.Binding{{Group: "orders", Environment: "online"}},
		}
		if mod != nil {
			mod(a)
		}
		return a
	}
	creds := []*store.Credential{
		{APIKey: "GOOD", Enabled: true, Authorization: auth(nil)},
		{APIKey: "DISABLED", Enabled: false, Authorization: auth(nil)},
		{APIKey: "EXPIRED", Enabled: true, ExpiresAt: testNow.Add(-hour), Authorization: auth(nil)},
		{APIKey: "NOAUTH", Enabled: true},
		{APIKey: "AUTHOFF", Enabled: true, Authorization: auth(func(a *store.CredentialAuthorization) { a.Enabled = false })},
		{APIKey: "EARLY", Enabled: true, Authorization: auth(func(a *store.CredentialAuthorization) { a.ValidFrom = testNow.Add(hour) })},
		{APIKey: "LATE", Enabled: true, Authorization: auth(func(a *store.CredentialAuthorization) { a.ValidUntil = testNow.Add(-hour) })},
		{APIKey: "OTHERGROUP", Enabled: true, Authorization: auth(func(a *store.CredentialAuthorization) {
			a.Bindings = []store.Binding{{Group: "billing", Environment: "*"}}
		})},
		{APIKey: "TESTENV", Enabled: true, Authorization: auth(func(a *store.CredentialAuthorization) {
			a.Bindings = []store.Binding{{Group: "orders", Environment: "test"}}
		})},
		{APIKey: "ANYENV", Enabled: true, Authorization: auth(func(a *store.CredentialAuthorization) {
			a.Bindings = []store.Binding{{Group: "orders", Environment: "*"}}
		})},
		{APIKey: "IPS", Enabled: true, Authorization: auth(func(a *store.CredentialAuthorization) { a.AllowedIPs = []string{"10.0.0.0/8"} })},
		{APIKey: "ROTATED", Enabled: true, PreviousSecret: "old-secret", PreviousSecretExpiresAt: testNow.Add(hour), Authorization: auth(nil)},
		{APIKey: "ROTATEDLONGAGO", Enabled: true, PreviousSecret: "old-secret", PreviousSecretExpiresAt: testNow.Add(-hour), Authorization: auth(nil)},
	}
	byKey := make(credentialLoader)
	for _, c := range creds {
		c.AccessKeyID = "ak-" + strings.ToLower(c.APIKey)
		c.Secret = secretOf(c.APIKey)
		byKey[c.APIKey] = c
	}
	return byKey
}

// credentialLoader is an in-memory store for a real cache.
type credentialLoader map[string]*store.Credential

func (l credentialLoader) LoadCredential(_ context.Context, apiKey string) (*store.Credential, error) {
	if c, ok := l[apiKey]; ok {
		return c, nil
	}
	return nil, store.ErrNotFound
}

func testKeys() *fakeKeys {
	k := &fakeKeys{entries: make(map[string]*cache.Entry)}
	for apiKey, c := range testCredentials() {
		k.entries[apiKey] = cache.Compile(c)
	}
	return k
}

func newTestChecker(t testing.TB, keys Keys, mod func(*Config)) *Checker {
	t.Helper()
	cfg := Config{Group: "orders", Now: func() time.Time { return testNow }, TempDir: t.TempDir()}
	if mod != nil {
		mod(&cfg)
	}
	c, err := NewChecker(cfg, keys)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// signedRequest makes a request signed with scheme for apiKey at testNow.
func signedRequest(t testing.TB, method, url, body, apiKey, secret string, scheme signature.Scheme, opts ...signature.Option) *http.Request {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, url, r)
	opts = append([]signature.Option{signature.WithTime(testNow)}, opts...)
	if err := signature.Sign(req, scheme, apiKey, secret, opts...); err != nil {
		t.Fatal(err)
	}
	return req
}

func originalOf(r *http.Request) signature.Request {
	return signature.Request{Method: r.Method, Host: r.Host, Path: r.URL.EscapedPath(), RawQuery: r.URL.RawQuery, Header: r.Header}
}

func check(c *Checker, r *http.Request, remote string) Decision {
	return c.Check(context.Background(), r, originalOf(r), netip.MustParseAddr(remote))
}

// reasonCase is a request and the check's reason for it.
type reasonCase struct {
	name    string
	apiKey  string           // default GOOD
	scheme  signature.Scheme // default JDCloud2
	secret  string           // default the key's
	opts    []signature.Option
	mutate  func(r *http.Request)
	config  func(*Config)
	nonces  bool // replay protection on, the request sent once before
	remote  string
	want    Reason
	wantAKI string // the access key ID the decision names
}

// reasonCases has one row per reason of docs/request-check.md
// (store_unavailable has its own test) and the situations that lead to it.
func reasonCases() []reasonCase {
	return []reasonCase{
		{name: "allowed", want: Allowed, wantAKI: "ak-good"},
		{name: "allowed in any environment", apiKey: "ANYENV", want: Allowed, wantAKI: "ak-anyenv"},
		{name: "allowed from an allowed IP", apiKey: "IPS", remote: "10.1.2.3", want: Allowed},
		{name: "allowed with the previous secret in its grace", apiKey: "ROTATED", secret: "old-secret", want: Allowed},
		{name: "allowed with the new secret", apiKey: "ROTATED", want: Allowed},
		{name: "allowed, JDCLOUD3", scheme: signature.JDCloud3, want: Allowed},
		{name: "allowed with the signed hash of the empty body", opts: []signature.Option{signature.WithContentSHA256()}, want: Allowed},
		{name: "allowed in the pinned region and service", config: func(c *Config) { c.Region, c.Service = "cn-east-2", "orders" },
			opts: []signature.Option{signature.WithRegion("cn-east-2"), signature.WithService("orders")}, want: Allowed},
		{name: "allowed at the edge of the skew", config: func(c *Config) { c.Now = func() time.Time { return testNow.Add(DefaultMaxSkew) } }, want: Allowed},

		{name: "no credentials", mutate: func(r *http.Request) { r.Header.Del("Authorization") }, want: MissingCredentials},
		{name: "credentials of a scheme not allowed", config: func(c *Config) { c.Schemes = 0 | 1<<signature.SigV4 }, want: MissingCredentials},
		{name: "malformed credential", mutate: func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "Credential=GOOD/", "Credential=GOOD:", 1))
		}, want: MalformedCredentials},
		{name: "no date", mutate: func(r *http.Request) { r.Header.Del("X-Jdcloud-Date") }, want: MissingDate},
		{name: "no signed headers", mutate: func(r *http.Request) {
			auth := r.Header.Get("Authorization")
			start := strings.Index(auth, "SignedHeaders=")
			end := start + strings.Index(auth[start:], ",") + 1
			r.Header.Set("Authorization", auth[:start]+auth[end:])
		}, want: MissingSignedHeaders},
		{name: "no nonce", mutate: func(r *http.Request) { r.Header.Del("X-Jdcloud-Nonce") }, want: MissingNonce},
		{name: "unknown key", apiKey: "UNKNOWN", want: InvalidKey},
		{name: "disabled key", apiKey: "DISABLED", want: InvalidKey, wantAKI: "ak-disabled"},
		{name: "expired key", apiKey: "EXPIRED", want: InvalidKey},
		{name: "wrong secret", secret: "guess", want: SignatureMismatch},
		{name: "previous secret after its grace", apiKey: "ROTATEDLONGAGO", secret: "old-secret", want: SignatureMismatch},
		{name: "tampered path", mutate: func(r *http.Request) { r.URL.Path = "/v1/orders/2" }, want: SignatureMismatch},
		{name: "tampered signed header", mutate: func(r *http.Request) { r.Header.Set("X-Jdcloud-Nonce", "another") }, want: SignatureMismatch},
		{name: "signed for another region", config: func(c *Config) { c.Region = "cn-east-2" }, want: SignatureMismatch},
		{name: "signed for another service", config: func(c *Config) { c.Service = "billing" }, want: SignatureMismatch},
		{name: "unsigned payload not allowed", opts: []signature.Option{signature.WithUnsignedPayload()}, want: SignatureMismatch},
		{name: "a content hash that is not one", opts: []signature.Option{signature.WithContentSHA256()},
			mutate: func(r *http.Request) { r.Header.Set("X-Jdcloud-Content-Sha256", "STREAMING") }, want: SignatureMismatch},
		{name: "a content hash of another body than the empty one", opts: []signature.Option{signature.WithContentSHA256()},
			mutate: func(r *http.Request) { r.Header.Set("X-Jdcloud-Content-Sha256", strings.Repeat("ab", 32)) }, want: SignatureMismatch},
		{name: "date too old", config: func(c *Config) { c.Now = func() time.Time { return testNow.Add(DefaultMaxSkew + time.Second) } }, want: DateOutOfRange},
		{name: "date too far ahead", config: func(c *Config) { c.Now = func() time.Time { return testNow.Add(-DefaultMaxSkew - time.Second) } }, want: DateOutOfRange},
		{name: "date checked before the signature", secret: "guess", config: func(c *Config) { c.MaxSkew = time.Second; c.Now = func() time.Time { return testNow.Add(time.Minute) } }, want: DateOutOfRange},
		{name: "replayed", nonces: true, want: ReplayedNonce},
		{name: "no authorization", apiKey: "NOAUTH", want: NotAuthorized},
		{name: "authorization disabled", apiKey: "AUTHOFF", want: NotAuthorized},
		{name: "authorization not yet valid", apiKey: "EARLY", want: NotAuthorized},
		{name: "authorization ended", apiKey: "LATE", want: NotAuthorized},
		{name: "bound to another group only", apiKey: "OTHERGROUP", want: NotAuthorized},
		{name: "bound to another environment only", apiKey: "TESTENV", want: NotAuthorized},
		{name: "IP not allowed", apiKey: "IPS", remote: "192.0.2.1", want: IPNotAllowed},
		{name: "body too large", config: func(c *Config) { c.MaxBody = 10 }, mutate: func(r *http.Request) { r.ContentLength = 11 }, want: BodyTooLarge},
	}
}

// setUp makes the case's check and request, with the key, scheme, secret
// and client address of the case (or their defaults).
func (tt reasonCase) setUp(t *testing.T, keys Keys) (c *Checker, r *http.Request, apiKey, remote string) {
	t.Helper()
	apiKey, secret, remote := tt.apiKey, tt.secret, tt.remote
	if apiKey == "" {
		apiKey = "GOOD"
	}
	if secret == "" {
		secret = secretOf(apiKey)
	}
	if remote == "" {
		remote = "203.0.113.5"
	}
	config := tt.config
	if tt.nonces {
		nonces := replay.NewLocalNonces(replay.WithNonceClock(func() time.Time { return testNow }))
		config = func(c *Config) { c.Nonces = nonces }
	}
	c = newTestChecker(t, keys, config)
	r = signedRequest(t, http.MethodGet, "http://api.example.com/v1/orders/1?b=2&a=1", "", apiKey, secret, tt.schemeOrDefault(), tt.opts...)
	if tt.mutate != nil {
		tt.mutate(r)
	}
	return c, r, apiKey, remote
}

func (tt reasonCase) schemeOrDefault() signature.Scheme {
	if tt.scheme == 0 {
		return signature.JDCloud2
	}
	return tt.scheme
}

func TestCheckReasons(t *testing.T) {
	keys := testKeys()
	for _, tt := range reasonCases() {
		t.Run(tt.name, func(t *testing.T) {
			c, r, apiKey, remote := tt.setUp(t, keys)
			scheme := tt.schemeOrDefault()
			if tt.nonces {
				if d := check(c, r, remote); d.Reason != Allowed {
					t.Fatalf("first request: %s, want allowed", d.Reason)
				}
			}
			d := check(c, r, remote)
			defer d.Cleanup()
			if d.Reason != tt.want {
				t.Fatalf("reason = %s, want %s", d.Reason, tt.want)
			}
			if tt.wantAKI != "" && d.Identity.AccessKeyID != tt.wantAKI {
				t.Fatalf("access key ID = %q, want %q", d.Identity.AccessKeyID, tt.wantAKI)
			}
			if d.Reason == Allowed {
				want := Identity{AccessKeyID: "ak-" + strings.ToLower(apiKey), APIKey: apiKey, AuthorizationID: "auth-1",
					Group: "orders", Environment: "online", Scheme: scheme}
				if d.Identity != want {
					t.Fatalf("identity = %+v, want %+v", d.Identity, want)
				}
			}
		})
	}
}

func TestCheckStoreUnavailable(t *testing.T) {
	t.Run("key lookup fails", func(t *testing.T) {
		c := newTestChecker(t, &fakeKeys{err: cache.ErrUnavailable}, nil)
		r := signedRequest(t, http.MethodGet, "http://api.example.com/v1/orders", "", "GOOD", secretOf("GOOD"), signature.JDCloud2)
		if d := check(c, r, "203.0.113.5"); d.Reason != StoreUnavailable || d.Identity.APIKey != "GOOD" {
			t.Fatalf("decision = %+v, want store_unavailable naming the API key", d)
		}
	})
	t.Run("nonce store fails", func(t *testing.T) {
		c := newTestChecker(t, testKeys(), func(c *Config) { c.Nonces = failingNonces{} })
		r := signedRequest(t, http.MethodGet, "http://api.example.com/v1/orders", "", "GOOD", secretOf("GOOD"), signature.JDCloud2)
		if d := check(c, r, "203.0.113.5"); d.Reason != StoreUnavailable {
			t.Fatalf("reason = %s, want store_unavailable", d.Reason)
		}
	})
	t.Run("through a real cache whose store is down", func(t *testing.T) {
		keys, err := cache.New(cache.Config{MaxEntries: 100}, downLoader{})
		if err != nil {
			t.Fatal(err)
		}
		defer keys.Close()
		c := newTestChecker(t, keys, nil)
		r := signedRequest(t, http.MethodGet, "http://api.example.com/v1/orders", "", "GOOD", secretOf("GOOD"), signature.JDCloud2)
		if d := check(c, r, "203.0.113.5"); d.Reason != StoreUnavailable {
			t.Fatalf("reason = %s, want store_unavailable", d.Reason)
		}
	})
}

// failingNonces is a nonce store that cannot be reached.
type failingNonces struct{}

func (failingNonces) Prepare(apiKey, nonce string) replay.Ticket {
	return replay.Ticket{APIKey: apiKey, Nonce: nonce}
}

func (failingNonces) Record(context.Context, replay.Ticket, time.Time, time.Time, time.Duration) replay.Verdict {
	return replay.Unavailable
}

func (failingNonces) Peek(context.Context, replay.Ticket, time.Time, time.Time, time.Duration) replay.Verdict {
	return replay.Unavailable
}

type downLoader struct{}

func (downLoader) LoadCredential(context.Context, string) (*store.Credential, error) {
	return nil, store.ErrUnavailable
}

func TestReplayUsesTheSignatureWhenTheSchemeHasNoNonce(t *testing.T) {
	var got []string
	nonces := recordingNonces(func(apiKey, nonce string, ttl time.Duration) {
		got = append(got, apiKey, nonce, ttl.String())
	})
	c := newTestChecker(t, testKeys(), func(c *Config) { c.Nonces = nonces; c.MaxSkew = 5 * time.Minute })
	r := signedRequest(t, http.MethodGet, "http://api.example.com/v1/orders", "", "GOOD", secretOf("GOOD"), signature.JDCloud2, signature.WithNonce("n-1"))
	if d := check(c, r, "203.0.113.5"); d.Reason != Allowed {
		t.Fatal(d.Reason)
	}
	if want := []string{"GOOD", "n-1", "10m0s"}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("Record(%q), want %q (nonce kept two skew windows)", got, want)
	}
}

type recordingNonces func(apiKey, nonce string, ttl time.Duration)

func (f recordingNonces) Prepare(apiKey, nonce string) replay.Ticket {
	return replay.Ticket{APIKey: apiKey, Nonce: nonce}
}

func (f recordingNonces) Record(_ context.Context, t replay.Ticket, _, _ time.Time, ttl time.Duration) replay.Verdict {
	f(t.APIKey, t.Nonce, ttl)
	return replay.Fresh
}

func TestNewCheckerValidates(t *testing.T) {
	keys := testKeys()
	tests := []struct {
		name string
		cfg  Config
		keys Keys
	}{
		{"no group", Config{}, keys},
		{"no keys", Config{Group: "orders"}, nil},
		{"unknown scheme", Config{Group: "orders", Schemes: 1 << 7}, keys},
		{"negative skew", Config{Group: "orders", MaxSkew: -time.Second}, keys},
		{"negative max body", Config{Group: "orders", MaxBody: -1}, keys},
	}
	for _, tt := range tests {
		if _, err := NewChecker(tt.cfg, tt.keys); err == nil {
			t.Errorf("%s: NewChecker accepted %+v", tt.name, tt.cfg)
		}
	}
	c, err := NewChecker(Config{Group: "orders"}, keys)
	if err != nil {
		t.Fatal(err)
	}
	if c.cfg.Environment != "online" || c.cfg.MaxSkew != 15*time.Minute || c.cfg.MaxBody != 100<<20 ||
		c.cfg.Schemes != signature.AllSchemes || c.fallbackScheme != signature.JDCloud2 {
		t.Fatalf("defaults not applied: %+v", c.cfg)
	}
}

// benchCheckRequest is the signed GET of BenchmarkCheckCachedJDCloud2 and
// BenchmarkCryptoFloorJDCloud2, so that both work on the same sizes.
func benchCheckRequest(b *testing.B) *http.Request {
	r := signedRequest(b, http.MethodGet, "http://api.example.com/v1/orders/1?b=2&a=1", "", "GOOD", secretOf("GOOD"), signature.JDCloud2,
		signature.WithTime(time.Now()))
	r.Header.Set("User-Agent", "JdcloudSdkGo/1.64.0 orders/1.0")
	r.Header.Set("Accept", "application/json")
	return r
}

// BenchmarkCheckCachedJDCloud2 is the first figure of docs/operations.md: the whole check
// of a cached key, jdcloud2, no body, replay protection off.
func BenchmarkCheckCachedJDCloud2(b *testing.B) {
	benchmarkCachedCheck(b, testCredentials(), "GOOD", nil)
}

// benchmarkCachedCheck times the whole check of apiKey, cached in a real
// cache over creds, on a route that mod configures.
func benchmarkCachedCheck(b *testing.B, creds credentialLoader, apiKey string, mod func(*Config)) {
	keys, err := cache.New(cache.Config{MaxEntries: 1000}, creds)
	if err != nil {
		b.Fatal(err)
	}
	defer keys.Close()
	// The wall clock, as in production: the check and the cache share one
	// reading per request.
	c := newTestChecker(b, keys, func(c *Config) {
		c.Now = nil
		if mod != nil {
			mod(c)
		}
	})
	r := benchCheckRequest(b)
	orig := originalOf(r)
	remote := netip.MustParseAddr("203.0.113.5")
	ctx := context.Background()
	for keys.Stats().Hits == 0 { // ristretto stores asynchronously
		keys.Get(ctx, apiKey)
		time.Sleep(time.Millisecond)
	}
	b.ReportAllocs()
	defer reportThreadCPU(b)()
	for b.Loop() {
		if d := c.Check(ctx, r, orig, remote); d.Reason != Allowed {
			b.Fatal(d.Reason)
		}
	}
}

// BenchmarkCryptoFloorJDCloud2 is the least any verifier of the check's
// request must compute, the floor its benchmark is judged against
// (docs/operations.md): SHA-256 of the canonical request and HMAC-SHA256
// of the string to sign under an already derived, already keyed signing
// key, both of the sizes the check hashes, into reused buffers.
func BenchmarkCryptoFloorJDCloud2(b *testing.B) {
	r := benchCheckRequest(b)
	orig := originalOf(r)
	var creds signature.Credentials
	if err := signature.Parse(r.Header, signature.AllSchemes, &creds); err != nil {
		b.Fatal(err)
	}
	forms := signature.Forms(&orig, &creds, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
	if len(forms) == 0 {
		b.Fatal("no canonical form")
	}
	canonical, toSign := []byte(forms[0].CanonicalRequest), []byte(forms[0].StringToSign)
	mac := hmac.New(sha256.New, []byte("a derived signing key of 32 bytes"))
	sum := make([]byte, 0, sha256.Size)
	b.ReportAllocs()
	defer reportThreadCPU(b)()
	for b.Loop() {
		digest := sha256.Sum256(canonical)
		// The string to sign ends with the canonical request's hash.
		hex.Encode(toSign[len(toSign)-2*sha256.Size:], digest[:])
		mac.Reset()
		mac.Write(toSign)
		sum = mac.Sum(sum[:0])
	}
}

// FuzzCheck sends requests with arbitrary credentials, dates, nonces,
// content hashes and bodies through the whole check: it must decide
// without panicking, never answer a 5xx (the store never fails here, the
// body budget is never spent), allow only what the key signed, and give
// back every body's share of the budget at Cleanup.
func FuzzCheck(f *testing.F) {
	// Fixed nonces: fuzz workers rerun this setup and must sign the same.
	valid := signedRequest(f, http.MethodPost, "http://api.example.com/v1/orders?a=1", "body", "GOOD", secretOf("GOOD"), signature.JDCloud2,
		signature.WithNonce("seed-1"))
	f.Add(valid.Header.Get("Authorization"), valid.Header.Get("X-Jdcloud-Date"), valid.Header.Get("X-Jdcloud-Nonce"), "", "/v1/orders", "a=1", "body")
	hashed := signedRequest(f, http.MethodPost, "http://api.example.com/v1/orders", "body", "GOOD", secretOf("GOOD"), signature.JDCloud2,
		signature.WithContentSHA256(), signature.WithNonce("seed-2"))
	f.Add(hashed.Header.Get("Authorization"), hashed.Header.Get("X-Jdcloud-Date"), hashed.Header.Get("X-Jdcloud-Nonce"),
		hashed.Header.Get("X-Jdcloud-Content-Sha256"), "/v1/orders", "", "body")
	f.Add("JDCLOUD2-HMAC-SHA256 Credential=GOOD/20260301/cn-north-1/apigateway/jdcloud2_request, SignedHeaders=host, Signature=00",
		"20260301T120000Z", "n", "UNSIGNED-PAYLOAD", "/", "", "")
	f.Add("AWS4-HMAC-SHA256 Credential=GOOD/20260301/us-east-1/s3/aws4_request", "", "", "", "/%zz", "%", "")

	budget := NewBodyBudget(DefaultBodyBufferBytes, DefaultBodyBufferBodies)
	c := newTestChecker(f, testKeys(), func(c *Config) { c.MaxBody, c.Bodies = 1<<10, budget })
	for _, r := range []*http.Request{valid, hashed} {
		d := check(c, r, "203.0.113.5")
		d.Cleanup()
		if d.Reason != Allowed {
			f.Fatalf("seed request: %s, want allowed", d.Reason)
		}
	}
	f.Fuzz(func(t *testing.T, authorization, date, nonce, contentSHA, path, query, body string) {
		r := httptest.NewRequest(http.MethodPost, "http://api.example.com/", strings.NewReader(body))
		r.URL.RawPath, r.URL.Path, r.URL.RawQuery = "", path, query
		for name, value := range map[string]string{
			"Authorization": authorization, "X-Jdcloud-Date": date, "X-Jdcloud-Nonce": nonce, "X-Jdcloud-Content-Sha256": contentSHA,
		} {
			if value != "" {
				r.Header.Set(name, value)
			}
		}
		d := check(c, r, "203.0.113.5")
		defer func() {
			d.Cleanup()
			if bytes, bodies := budget.InUse(); bytes != 0 || bodies != 0 {
				t.Fatalf("after Cleanup %d bytes and %d bodies of the budget are held", bytes, bodies)
			}
		}()
		if status := d.Reason.HTTPStatus(); status >= 500 || int(d.Reason) >= len(reasons) {
			t.Fatalf("reason %s (%d)", d.Reason, status)
		}
		if d.Reason == Allowed {
			if authorization != valid.Header.Get("Authorization") && authorization != hashed.Header.Get("Authorization") {
				t.Fatalf("allowed a request whose Authorization %q the key never signed", authorization)
			}
			io.Copy(io.Discard, r.Body) // the body passed on must be readable (an error is fine)
		}
		WriteDenial(httptest.NewRecorder(), d, "fuzz")
	})
}

// TestSignedAgoFarDates: a date far from now must not wrap into the skew
// window (UnixNano would, beyond the years 1678–2262).
func TestSignedAgoFarDates(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, date := range []time.Time{
		time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC), time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2554, 7, 21, 23, 34, 33, 0, time.UTC), // 2^64 ns after 1970 in wrapped arithmetic
	} {
		if skew := signedAgo(now, date); skew <= MaxMaxSkew && skew >= -MaxMaxSkew {
			t.Errorf("signedAgo(%v) = %v, inside the widest window", date, skew)
		}
	}
	for _, date := range []time.Time{
		now.Add(-time.Minute), now.Add(time.Minute), now.Add(-MaxMaxSkew - 1), now.Add(MaxMaxSkew + 1), now,
		time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2099, 12, 31, 23, 59, 59, 0, time.UTC),
	} {
		for _, now := range []time.Time{now, now.Add(123456789), time.Now()} { // time.Now carries a monotonic reading
			if got, want := signedAgo(now, date), now.Sub(date); got != want {
				t.Errorf("signedAgo(%v, %v) = %v, Sub %v", now, date, got, want)
			}
		}
	}
}

// TestClientIPOnlyWhenNeeded: a request checked without the client's
// address has Config.ClientIP find it, and only for an authorization that
// limits the addresses.
func TestClientIPOnlyWhenNeeded(t *testing.T) {
	var calls int
	var addr netip.Addr
	c := newTestChecker(t, testKeys(), func(c *Config) {
		c.ClientIP = func(*http.Request) netip.Addr { calls++; return addr }
	})
	for _, tc := range []struct {
		apiKey, addr string
		want         Reason
		calls        int
	}{
		{"GOOD", "192.0.2.1", Allowed, 0},
		{"IPS", "10.1.2.3", Allowed, 1},
		{"IPS", "192.0.2.1", IPNotAllowed, 1},
	} {
		calls, addr = 0, netip.MustParseAddr(tc.addr)
		r := signedRequest(t, http.MethodGet, "http://api.example.com/v1/orders", "", tc.apiKey, secretOf(tc.apiKey), signature.JDCloud2)
		d := c.Check(context.Background(), r, originalOf(r), netip.Addr{})
		if d.Reason != tc.want || calls != tc.calls {
			t.Errorf("%s from %s: %s after %d calls of ClientIP, want %s after %d", tc.apiKey, tc.addr, d.Reason, calls, tc.want, tc.calls)
		}
	}
}
