package signature

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

var testTime = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

// received is req as a server receives it: written to the wire by
// net/http and read back, with the body's hash.
func received(t testing.TB, req *http.Request) (*Request, string) {
	t.Helper()
	var wire bytes.Buffer
	if err := req.Write(&wire); err != nil {
		t.Fatal(err)
	}
	got, err := http.ReadRequest(bufio.NewReader(&wire))
	if err != nil {
		t.Fatalf("reading back %q: %v", wire.String(), err)
	}
	body, err := io.ReadAll(got.Body)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	return &Request{Method: got.Method, Host: got.Host, Path: got.URL.EscapedPath(), RawQuery: got.URL.RawQuery, Header: got.Header},
		hex.EncodeToString(sum[:])
}

// verifyReceived parses and verifies r with secret, as the gateway does.
func verifyReceived(t testing.TB, r *Request, bodyHash, secret string) (Credentials, bool) {
	t.Helper()
	var c Credentials
	if err := Parse(r.Header, AllSchemes, &c); err != nil {
		t.Fatalf("Parse: %v (Authorization %q)", err, r.Header.Get("Authorization"))
	}
	if c.PayloadHash != "" {
		bodyHash = c.PayloadHash
	}
	return c, Verify(r, &c, NewSecret(secret), bodyHash)
}

func newRequest(t testing.TB, method, path, rawQuery string, body []byte) *http.Request {
	t.Helper()
	u := &url.URL{Scheme: "http", Host: "api.example.com:8080", Path: path, RawQuery: rawQuery}
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, u.String(), r)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestSignVerifyRoundTrip(t *testing.T) {
	tests := []struct {
		name, method, path, query string
		body                      []byte
		header                    map[string]string
	}{
		{name: "root", method: "GET", path: "/"},
		{name: "empty path", method: "GET", path: ""},
		{name: "colon and at", method: "POST", path: "/v1/regions/cn-north-1/instances/i-1:start@now", body: []byte(`{"a":1}`),
			header: map[string]string{"Content-Type": "application/json"}},
		{name: "spaces", method: "PUT", path: "/files/my file.txt", query: "name=a%20b&x=a+b", body: []byte("hello world")},
		{name: "non-ASCII", method: "GET", path: "/v1/中文/路径", query: "中文参数=中文参数值"},
		{name: "plus in path", method: "GET", path: "/a+b/c"},
		{name: "double slashes", method: "DELETE", path: "/a//b///c/"},
		{name: "reserved characters", method: "GET", path: "/!$&'()*,;=:@[]", query: "q=" + url.QueryEscape("!*'();:@&=+$,/?#[]")},
		{name: "repeated unsorted query", method: "GET", path: "/list", query: "b=2&a=3&a=1&a=2&c&b=1&b=1"},
		{name: "empty value and name", method: "GET", path: "/list", query: "a=&=x&b"},
		{name: "invalid percent in query", method: "GET", path: "/q", query: "o=%&p=%zz&r=%2"},
		{name: "empty body", method: "POST", path: "/empty", body: []byte{}},
		{name: "binary body", method: "PATCH", path: "/bin", body: []byte{0, 1, 2, 0xff, 0xfe, '\n', '\r', 0x80}},
		{name: "lower-case method", method: "options", path: "/x"},
		{name: "extra headers", method: "GET", path: "/h", header: map[string]string{
			"X-Jdcloud-Algorithm": "JDCLOUD2-HMAC-SHA256", "X-Jdcloud-Custom": "  padded   value  ", "X-Jdcloud-Request-Id": "unsigned"}},
	}
	for _, scheme := range []Scheme{JDCloud2, JDCloud3} {
		for _, tt := range tests {
			t.Run(scheme.String()+"/"+tt.name, func(t *testing.T) {
				req := newRequest(t, tt.method, tt.path, tt.query, tt.body)
				for k, v := range tt.header {
					req.Header.Set(k, v)
				}
				if err := Sign(req, scheme, "AK/with/slashes", "secret", WithTime(testTime), WithRegion("cn-east-2"), WithService("vm")); err != nil {
					t.Fatal(err)
				}
				if tt.body != nil {
					got, _ := io.ReadAll(req.Body)
					if !bytes.Equal(got, tt.body) {
						t.Fatalf("Sign lost the body: %q", got)
					}
					req.Body = io.NopCloser(bytes.NewReader(tt.body))
				}
				r, bodyHash := received(t, req)
				c, ok := verifyReceived(t, r, bodyHash, "secret")
				if !ok {
					t.Fatalf("round trip not verified: %s %s?%s headers %v", r.Method, r.Path, r.RawQuery, r.Header)
				}
				if c.Scheme != scheme || c.APIKey != "AK/with/slashes" || c.Region != "cn-east-2" || c.Service != "vm" || !c.Date.Equal(testTime) {
					t.Fatalf("credentials %+v", c)
				}
				if !documentedFormMatches(r, &c, "secret", bodyHash) {
					t.Error("Sign does not write the documented canonical form")
				}
				if _, ok := verifyReceived(t, r, bodyHash, "secreT"); ok {
					t.Error("verified with a wrong secret")
				}
			})
		}
	}
}

func TestSignDefaults(t *testing.T) {
	req := newRequest(t, "GET", "/", "", nil)
	if err := Sign(req, JDCloud2, "ak", "sk"); err != nil {
		t.Fatal(err)
	}
	var c Credentials
	if err := Parse(req.Header, AllSchemes, &c); err != nil {
		t.Fatal(err)
	}
	if c.Region != DefaultRegion || c.Service != DefaultService || time.Since(c.Date) > time.Minute || len(c.Nonce) != 36 {
		t.Fatalf("defaults: %+v", c)
	}
	if !strings.Contains(req.Header.Get("Authorization"), "SignedHeaders=host;x-jdcloud-date;x-jdcloud-nonce,") {
		t.Errorf("Authorization %q", req.Header.Get("Authorization"))
	}
	other := newRequest(t, "GET", "/", "", nil)
	Sign(other, JDCloud2, "ak", "sk")
	if other.Header.Get("X-Jdcloud-Nonce") == req.Header.Get("X-Jdcloud-Nonce") {
		t.Error("nonce repeated")
	}
	if err := Sign(newRequest(t, "GET", "/", "", nil), SigV4, "ak", "sk"); !errors.Is(err, ErrUnsupportedScheme) && implOf(SigV4) == nil {
		t.Errorf("Sign of an unregistered scheme: %v", err)
	}
}

func TestSignContentHash(t *testing.T) {
	body := []byte(`{"name":"value"}`)
	sum := sha256.Sum256(body)
	for _, tt := range []struct {
		name   string
		opt    Option
		header string
	}{
		{"content sha256", WithContentSHA256(), hex.EncodeToString(sum[:])},
		{"unsigned payload", WithUnsignedPayload(), UnsignedPayload},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := newRequest(t, "POST", "/upload", "", body)
			if err := Sign(req, JDCloud3, "ak", "sk", WithTime(testTime), WithNonce("n-1"), tt.opt); err != nil {
				t.Fatal(err)
			}
			r, _ := received(t, req)
			var c Credentials
			if err := Parse(r.Header, AllSchemes, &c); err != nil {
				t.Fatal(err)
			}
			if c.PayloadHash != tt.header || c.Nonce != "n-1" {
				t.Fatalf("payload hash %q nonce %q", c.PayloadHash, c.Nonce)
			}
			if !strings.Contains(r.Header.Get("Authorization"), "x-jdcloud-content-sha256") {
				t.Fatal("content hash not signed")
			}
			if !Verify(r, &c, NewSecret("sk"), c.PayloadHash) {
				t.Fatal("not verified with the content hash header")
			}
			if Verify(r, &c, NewSecret("sk"), strings.Repeat("0", 64)) {
				t.Fatal("verified with another payload hash")
			}
		})
	}
}

// TestSignGetBody checks that a body with GetBody is hashed through it and
// left unread.
func TestSignGetBody(t *testing.T) {
	req, _ := http.NewRequest("POST", "http://h/", strings.NewReader("abc"))
	if err := Sign(req, JDCloud2, "ak", "sk"); err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(req.Body); string(b) != "abc" {
		t.Fatalf("body %q", b)
	}
}

func TestTamperedRequestsFail(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(r *Request, bodyHash *string)
	}{
		{"changed header", func(r *Request, _ *string) { r.Header.Set("X-Jdcloud-Custom", "other") }},
		{"changed content type", func(r *Request, _ *string) { r.Header.Set("Content-Type", "text/plain") }},
		{"changed nonce", func(r *Request, _ *string) { r.Header.Set("X-Jdcloud-Nonce", "replayed") }},
		{"changed time of day", func(r *Request, _ *string) { r.Header.Set("X-Jdcloud-Date", "20260314T150927Z") }},
		{"changed host", func(r *Request, _ *string) { r.Host = "evil.example.com" }},
		{"changed method", func(r *Request, _ *string) { r.Method = "DELETE" }},
		{"changed path", func(r *Request, _ *string) { r.Path = "/v1/admin" }},
		{"changed query value", func(r *Request, _ *string) { r.RawQuery = "a=1&b=3" }},
		{"added query parameter", func(r *Request, _ *string) { r.RawQuery += "&c=1" }},
		{"dropped query parameter", func(r *Request, _ *string) { r.RawQuery = "a=1" }},
		{"changed body hash", func(_ *Request, h *string) { *h = strings.Repeat("ab", 32) }},
	}
	for _, scheme := range []Scheme{JDCloud2, JDCloud3} {
		for _, tt := range tests {
			t.Run(scheme.String()+"/"+tt.name, func(t *testing.T) {
				req := newRequest(t, "POST", "/v1/items", "b=2&a=1", []byte("payload"))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-Jdcloud-Custom", "value")
				if err := Sign(req, scheme, "ak", "sk", WithTime(testTime)); err != nil {
					t.Fatal(err)
				}
				r, bodyHash := received(t, req)
				if _, ok := verifyReceived(t, r, bodyHash, "sk"); !ok {
					t.Fatal("untampered request not verified")
				}
				tt.tamper(r, &bodyHash)
				if _, ok := verifyReceived(t, r, bodyHash, "sk"); ok {
					t.Fatal("tampered request verified")
				}
			})
		}
	}
}

// TestHeaderSpaces: JDCLOUD2 collapses inner spaces of header values,
// JDCLOUD3 does not (docs/signature-schemes.md).
func TestHeaderSpaces(t *testing.T) {
	for _, tt := range []struct {
		scheme   Scheme
		respaced bool // still verifies after inner spaces changed
	}{{JDCloud2, true}, {JDCloud3, false}} {
		req := newRequest(t, "GET", "/", "", nil)
		req.Header.Set("X-Jdcloud-Custom", "a   b")
		if err := Sign(req, tt.scheme, "ak", "sk"); err != nil {
			t.Fatal(err)
		}
		r, bodyHash := received(t, req)
		r.Header.Set("X-Jdcloud-Custom", "  a b ")
		if _, ok := verifyReceived(t, r, bodyHash, "sk"); ok != tt.respaced {
			t.Errorf("%s: verified %v after respacing, want %v", tt.scheme, ok, tt.respaced)
		}
	}
}

// TestRawFormRetry: JD Cloud's Go SDK signs the path as escaped on the wire
// and the query as sent, unsorted. Such a signature fails the documented
// form and is accepted by the second try.
func TestRawFormRetry(t *testing.T) {
	j := implOf(JDCloud2).(*jdcloud)
	h := http.Header{}
	h.Set("X-Jdcloud-Date", "20190214T104514Z")
	h.Set("X-Jdcloud-Nonce", "nonce")
	r := &Request{Method: "GET", Host: "h", Path: "/v1/resource:action@x", RawQuery: "z=1&a=2", Header: h}
	c := Credentials{Scheme: JDCloud2, Region: "cn-north-1", Service: "test", signedHeaders: "host;x-jdcloud-date;x-jdcloud-nonce",
		scope: "20190214/cn-north-1/test/jdcloud2_request", dateValue: "20190214T104514Z"}
	key := NewSecret("sk").chainedKey(JDCloud2, "JDCLOUD2", "20190214", "cn-north-1", "test", "jdcloud2_request")
	sc := getScratch()
	sc.buf, _ = j.appendCanonicalRequest(sc.buf[:0], r, &c, emptySHA256, true, sc)
	if want := "GET\n/v1/resource:action@x\nz=1&a=2\n"; !strings.HasPrefix(string(sc.buf), want) {
		t.Fatalf("raw canonical request %q", sc.buf)
	}
	sig := j.auth.mac(key, &c, sc)
	h.Set("Authorization", "JDCLOUD2-HMAC-SHA256 Credential=ak/20190214/cn-north-1/test/jdcloud2_request, SignedHeaders=host;x-jdcloud-date;x-jdcloud-nonce, Signature="+hex.EncodeToString(sig[:]))

	var parsed Credentials
	if err := Parse(h, AllSchemes, &parsed); err != nil {
		t.Fatal(err)
	}
	if documentedFormMatches(r, &parsed, "sk", emptySHA256) {
		t.Fatal("the raw form should differ from the documented one here")
	}
	if !Verify(r, &parsed, NewSecret("sk"), emptySHA256) {
		t.Fatal("raw form not accepted by the retry")
	}
	r.RawQuery = "a=2&z=1"
	if Verify(r, &parsed, NewSecret("sk"), emptySHA256) {
		t.Fatal("retry accepted a reordered query")
	}
}

func TestParseErrors(t *testing.T) {
	const (
		auth2 = "JDCLOUD2-HMAC-SHA256 Credential=ak/20190214/cn-north-1/test/jdcloud2_request, SignedHeaders=x-jdcloud-date;x-jdcloud-nonce, Signature=" + emptySHA256
		date  = "20190214T104514Z"
	)
	tests := []struct {
		name    string
		headers map[string]string
		allowed Schemes
		want    error
	}{
		{"no authorization", map[string]string{"X-Jdcloud-Date": date, "X-Jdcloud-Nonce": "n"}, AllSchemes, ErrMissingCredentials},
		{"other scheme", map[string]string{"Authorization": "Bearer abc"}, AllSchemes, ErrMissingCredentials},
		{"scheme not allowed", map[string]string{"Authorization": auth2, "X-Jdcloud-Date": date, "X-Jdcloud-Nonce": "n"}, Schemes(0).With(JDCloud3), ErrMissingCredentials},
		{"algorithm only", map[string]string{"Authorization": "JDCLOUD2-HMAC-SHA256"}, AllSchemes, ErrMissingCredentials},
		{"no credential", map[string]string{"Authorization": "JDCLOUD2-HMAC-SHA256 SignedHeaders=a, Signature=" + emptySHA256}, AllSchemes, ErrMalformedCredentials},
		{"wrong terminator", map[string]string{"Authorization": strings.Replace(auth2, "jdcloud2_request", "jdcloud3_request", 1)}, AllSchemes, ErrMalformedCredentials},
		{"short date", map[string]string{"Authorization": strings.Replace(auth2, "20190214", "2019021", 1)}, AllSchemes, ErrMalformedCredentials},
		{"empty key", map[string]string{"Authorization": strings.Replace(auth2, "=ak/", "=/", 1)}, AllSchemes, ErrMalformedCredentials},
		{"no region", map[string]string{"Authorization": strings.Replace(auth2, "cn-north-1", "", 1)}, AllSchemes, ErrMalformedCredentials},
		{"too few parts", map[string]string{"Authorization": "JDCLOUD2-HMAC-SHA256 Credential=20190214/test/jdcloud2_request, SignedHeaders=a, Signature=" + emptySHA256}, AllSchemes, ErrMalformedCredentials},
		{"no signed headers", map[string]string{"Authorization": strings.Replace(auth2, "SignedHeaders=x-jdcloud-date;x-jdcloud-nonce", "", 1), "X-Jdcloud-Date": date, "X-Jdcloud-Nonce": "n"}, AllSchemes, ErrMissingSignedHeaders},
		{"no signature", map[string]string{"Authorization": strings.Replace(auth2, "Signature="+emptySHA256, "", 1)}, AllSchemes, ErrMalformedCredentials},
		{"short signature", map[string]string{"Authorization": auth2[:len(auth2)-2]}, AllSchemes, ErrMalformedCredentials},
		{"non-hex signature", map[string]string{"Authorization": auth2[:len(auth2)-1] + "g"}, AllSchemes, ErrMalformedCredentials},
		{"no date", map[string]string{"Authorization": auth2, "X-Jdcloud-Nonce": "n"}, AllSchemes, ErrMissingDate},
		{"bad date", map[string]string{"Authorization": auth2, "X-Jdcloud-Date": "2019-02-14T10:45:14Z", "X-Jdcloud-Nonce": "n"}, AllSchemes, ErrMissingDate},
		{"impossible date", map[string]string{"Authorization": auth2, "X-Jdcloud-Date": "20190230T104514Z", "X-Jdcloud-Nonce": "n"}, AllSchemes, ErrMissingDate},
		{"date of another day", map[string]string{"Authorization": auth2, "X-Jdcloud-Date": "20190215T104514Z", "X-Jdcloud-Nonce": "n"}, AllSchemes, ErrMalformedCredentials},
		{"no nonce", map[string]string{"Authorization": auth2, "X-Jdcloud-Date": date}, AllSchemes, ErrMissingNonce},
		{"blank nonce", map[string]string{"Authorization": auth2, "X-Jdcloud-Date": date, "X-Jdcloud-Nonce": "  "}, AllSchemes, ErrMissingNonce},
		{"date not signed", map[string]string{"Authorization": strings.Replace(auth2, "x-jdcloud-date;", "", 1), "X-Jdcloud-Date": date, "X-Jdcloud-Nonce": "n"}, AllSchemes, ErrMissingSignedHeaders},
		{"nonce not signed", map[string]string{"Authorization": strings.Replace(auth2, ";x-jdcloud-nonce", ";x-jdcloud-nonces", 1), "X-Jdcloud-Date": date, "X-Jdcloud-Nonce": "n"}, AllSchemes, ErrMissingSignedHeaders},
		{"content hash not signed", map[string]string{"Authorization": auth2, "X-Jdcloud-Date": date, "X-Jdcloud-Nonce": "n", "X-Jdcloud-Content-Sha256": emptySHA256}, AllSchemes, ErrMissingSignedHeaders},
		{"well formed", map[string]string{"Authorization": auth2, "X-Jdcloud-Date": date, "X-Jdcloud-Nonce": "n"}, AllSchemes, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.headers {
				h.Set(k, v)
			}
			var c Credentials
			if err := Parse(h, tt.allowed, &c); err != tt.want {
				t.Fatalf("Parse = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestParseFields(t *testing.T) {
	h := http.Header{}
	h.Add("Authorization", " JDCLOUD3-HMAC-SHA256 Credential=my key/20190917/cn-south-1/svc/jdcloud3_request,SignedHeaders=x-jdcloud-content-sha256;x-jdcloud-date;x-jdcloud-nonce,  Signature="+strings.ToUpper(emptySHA256))
	h["x-jdcloud-date"] = []string{"20190917T064708Z"} // a map built by hand, lower-case keys
	h["x-jdcloud-nonce"] = []string{" n-1 "}
	h["x-jdcloud-content-sha256"] = []string{"UNSIGNED-PAYLOAD"}
	var c Credentials
	if err := Parse(h, AllSchemes, &c); err != nil {
		t.Fatal(err)
	}
	want := Credentials{Scheme: JDCloud3, APIKey: "my key", Date: time.Date(2019, 9, 17, 6, 47, 8, 0, time.UTC), Nonce: "n-1",
		Region: "cn-south-1", Service: "svc", Signature: strings.ToUpper(emptySHA256), PayloadHash: "UNSIGNED-PAYLOAD"}
	if c.Scheme != want.Scheme || c.APIKey != want.APIKey || !c.Date.Equal(want.Date) || c.Nonce != want.Nonce || c.Region != want.Region ||
		c.Service != want.Service || c.Signature != want.Signature || c.PayloadHash != want.PayloadHash {
		t.Fatalf("got %+v\nwant %+v", c, want)
	}
}

func TestSchemeNames(t *testing.T) {
	for s := JDCloud2; s <= Aliyun; s++ {
		got, err := ParseScheme(s.String())
		if err != nil || got != s || s.Challenge() == "" {
			t.Errorf("%d: ParseScheme(%q) = %v, %v; challenge %q", s, s.String(), got, err, s.Challenge())
		}
	}
	if _, err := ParseScheme("jdcloud4"); err == nil {
		t.Error("ParseScheme accepted jdcloud4")
	}
	if JDCloud2.Challenge() != "JDCLOUD2-HMAC-SHA256" || JDCloud3.String() != "jdcloud3" {
		t.Error("names")
	}
	if Scheme(0).Challenge() != "" || Scheme(9).String() == "" {
		t.Error("unknown schemes")
	}
}

// TestUnregisteredSchemesFindNothing: schemes whose files are not built in
// (yet) never find credentials and never verify.
func TestUnregisteredSchemesFindNothing(t *testing.T) {
	for s := JDCloud2; s <= Aliyun; s++ {
		if implOf(s) != nil {
			continue
		}
		h := http.Header{"Authorization": {s.Challenge() + " Credential=a/20190101/r/s/x, SignedHeaders=a, Signature=b"}}
		var c Credentials
		if err := Parse(h, Schemes(0).With(s), &c); err != ErrMissingCredentials {
			t.Errorf("%s: Parse = %v", s, err)
		}
		if Verify(&Request{Header: h}, &Credentials{Scheme: s}, NewSecret("x"), "") {
			t.Errorf("%s verified", s)
		}
	}
}

func TestNoAllocations(t *testing.T) {
	req := newRequest(t, "GET", "/v1/items/i-1:describe", "pageSize=20&pageNumber=1&filters.1.name=status", nil)
	req.Header.Set("Content-Type", "application/json")
	if err := Sign(req, JDCloud2, "ak", "sk"); err != nil {
		t.Fatal(err)
	}
	r, bodyHash := received(t, req)
	assertNoAllocations(t, r, bodyHash, "sk")
}

func TestSecretKeepsTwoScopes(t *testing.T) {
	s := NewSecret("sk")
	a := s.chainedKey(JDCloud2, "JDCLOUD2", "20260314", "r", "s", "jdcloud2_request")
	b := s.chainedKey(JDCloud3, "JDCLOUD3", "20260314", "r", "s", "jdcloud3_request")
	if s.chainedKey(JDCloud2, "JDCLOUD2", "20260314", "r", "s", "jdcloud2_request") != a ||
		s.chainedKey(JDCloud3, "JDCLOUD3", "20260314", "r", "s", "jdcloud3_request") != b {
		t.Fatal("a cached key was derived again")
	}
	c := s.chainedKey(JDCloud2, "JDCLOUD2", "20260315", "r", "s", "jdcloud2_request")
	if c == a || c == b || c.inner == a.inner {
		t.Fatal("a new date reused a key")
	}
	fresh := NewSecret("sk").chainedKey(JDCloud2, "JDCLOUD2", "20260314", "r", "s", "jdcloud2_request")
	if fresh.inner != a.inner || fresh.outer != a.outer {
		t.Fatal("derivation is not deterministic")
	}
}

// TestConcurrentVerify shares one Secret among goroutines verifying
// requests of several days (run with -race).
func TestConcurrentVerify(t *testing.T) {
	s := NewSecret("sk")
	type signed struct {
		r        *Request
		bodyHash string
	}
	var reqs []signed
	for day := range 3 {
		req := newRequest(t, "GET", "/x", "a=1", nil)
		if err := Sign(req, JDCloud2, "ak", "sk", WithTime(testTime.AddDate(0, 0, day))); err != nil {
			t.Fatal(err)
		}
		r, h := received(t, req)
		reqs = append(reqs, signed{r, h})
	}
	done := make(chan bool)
	for g := range 4 {
		go func() {
			ok := true
			for i := range 200 {
				x := reqs[(g+i)%len(reqs)]
				var c Credentials
				ok = ok && Parse(x.r.Header, AllSchemes, &c) == nil && Verify(x.r, &c, s, x.bodyHash)
			}
			done <- ok
		}()
	}
	for range 4 {
		if !<-done {
			t.Fatal("a verification failed under concurrency")
		}
	}
}
