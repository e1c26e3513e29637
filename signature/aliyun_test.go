package signature

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// aliyunSigned is a request carrying X-Ca-* headers whose signature is
// computed here from stringToSign with crypto/hmac, independently of the
// verifier's canonicaliser.
func aliyunSigned(method, path, query string, header map[string]string, form, stringToSign, secret string) *Request {
	h := http.Header{}
	for k, v := range header {
		h[k] = []string{v} // as given: lower-case names are what a hand-built map holds
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(stringToSign))
	h.Set("X-Ca-Signature", base64.StdEncoding.EncodeToString(m.Sum(nil)))
	r := &Request{Method: method, Host: "api.example.com", Path: path, RawQuery: query, Header: http.Header{}}
	for k, v := range h {
		r.Header[http.CanonicalHeaderKey(k)] = v
	}
	if form != "" {
		r.Form = []byte(form)
	}
	return r
}

func TestAliyunStringsToSign(t *testing.T) {
	caHeaders := map[string]string{
		"X-Ca-Key": "app-key", "X-Ca-Nonce": "c9f15cbf-f4ac-4a6c-b54d-f51abf4b5b44", "X-Ca-Timestamp": "1700000000000",
		"X-Ca-Signature-Method": "HmacSHA256", "X-Ca-Signature-Headers": "X-Ca-Key,X-Ca-Nonce,X-Ca-Signature-Method,X-Ca-Timestamp",
	}
	goHeaders := "X-Ca-Key:app-key\nX-Ca-Nonce:c9f15cbf-f4ac-4a6c-b54d-f51abf4b5b44\nX-Ca-Signature-Method:HmacSHA256\nX-Ca-Timestamp:1700000000000\n"
	with := func(extra map[string]string) map[string]string {
		h := map[string]string{}
		for k, v := range caHeaders {
			h[k] = v
		}
		for k, v := range extra {
			h[k] = v
		}
		return h
	}
	tests := []struct {
		name, method, path, query string
		header                    map[string]string
		form                      string
		stringToSign              string
	}{
		{"get with sorted, first-value and empty parameters", "GET", "/v1/items", "b=2&a=1&a=0&c&d=x+y&e=%E4%B8%AD",
			with(map[string]string{"Accept": "application/json"}), "",
			"GET\napplication/json\n\n\n\n" + goHeaders + "/v1/items?a=1&b=2&c&d=x y&e=中"},
		{"post json with Content-MD5 and Date", "POST", "/v1/items", "",
			with(map[string]string{"Accept": "*/*", "Content-Md5": "kAFQmDzST7DWlj99KOF/cg==", "Content-Type": "application/json",
				"Date": "Tue, 14 Nov 2023 22:13:20 GMT"}), "",
			"POST\n*/*\nkAFQmDzST7DWlj99KOF/cg==\napplication/json\nTue, 14 Nov 2023 22:13:20 GMT\n" + goHeaders + "/v1/items"},
		{"form parameters before query ones", "POST", "/v1/form", "b=query&z",
			with(map[string]string{"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"}), "name=%E4%B8%AD+%E6%96%87&b=form&empty=",
			"POST\n\n\napplication/x-www-form-urlencoded; charset=UTF-8\n\n" + goHeaders + "/v1/form?b=form&empty&name=中 文&z"},
		{"decoded path", "GET", "/v1/%E4%B8%AD/a%20b", "", with(nil), "",
			"GET\n\n\n\n\n" + goHeaders + "/v1/中/a b"},
		{"path as sent (Node.js client)", "GET", "/v1/%E4%B8%AD", "", with(nil), "",
			"GET\n\n\n\n\n" + goHeaders + "/v1/%E4%B8%AD"},
		{"lower-case signed header names (Node.js client)", "GET", "/", "",
			map[string]string{"accept": "application/json", "x-ca-key": "k", "x-ca-nonce": "n", "x-ca-stage": "RELEASE",
				"x-ca-timestamp": "1700000000000", "x-ca-signature-headers": "x-ca-key,x-ca-nonce,x-ca-stage,x-ca-timestamp"}, "",
			"GET\napplication/json\n\n\n\nx-ca-key:k\nx-ca-nonce:n\nx-ca-stage:RELEASE\nx-ca-timestamp:1700000000000\n/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := aliyunSigned(tt.method, tt.path, tt.query, tt.header, tt.form, tt.stringToSign, "app-secret")
			var c Credentials
			if err := Parse(r.Header, AllSchemes, &c); err != nil {
				t.Fatal(err)
			}
			if c.Scheme != Aliyun || c.APIKey == "" || c.Nonce == "" || !c.Date.Equal(time.UnixMilli(1700000000000)) {
				t.Fatalf("credentials %+v", c)
			}
			if c.SignsForm != (tt.form != "") {
				t.Fatalf("SignsForm = %v", c.SignsForm)
			}
			if !Verify(r, &c, NewSecret("app-secret"), "") {
				sc := getScratch()
				got, _ := appendAliyunStringToSign(nil, r, c.signedHeaders, c.SignsForm, false, sc)
				putScratch(sc)
				t.Fatalf("not verified; the verifier's string to sign is\n%q\nwant\n%q", got, tt.stringToSign)
			}
			if Verify(r, &c, NewSecret("app-secreT"), "") {
				t.Fatal("verified with a wrong secret")
			}
			if tt.form != "" {
				r.Form = []byte(tt.form + "&x=1")
				if Verify(r, &c, NewSecret("app-secret"), "") {
					t.Fatal("verified with another form body")
				}
			}
		})
	}
}

func TestAliyunSignRoundTrip(t *testing.T) {
	tests := []struct {
		name, method, path, query, contentType, body string
		md5                                          bool
	}{
		{"get", "GET", "/v1/items", "b=2&a=1&a=0&c", "", "", false},
		{"post json", "POST", "/v1/items", "x=1", "application/json", `{"a":1}`, true},
		{"post form", "POST", "/v1/form", "q=1", "application/x-www-form-urlencoded", "a=1&b=%E4%B8%AD&b=2", false},
		{"non-ASCII path", "PUT", "/v1/中文/a b", "", "text/plain", "text", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body []byte
			if tt.body != "" {
				body = []byte(tt.body)
			}
			req := newRequest(t, tt.method, tt.path, tt.query, body)
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			if err := Sign(req, Aliyun, "app-key", "app-secret", WithTime(testTime), WithNonce("nonce-1")); err != nil {
				t.Fatal(err)
			}
			if got := req.Header.Get("Content-MD5"); (got != "") != tt.md5 {
				t.Fatalf("Content-MD5 %q", got)
			} else if got != "" {
				sum := md5.Sum(body)
				if got != base64.StdEncoding.EncodeToString(sum[:]) {
					t.Fatalf("Content-MD5 %q is not the body's", got)
				}
			}
			r, _ := received(t, req)
			var c Credentials
			if err := Parse(r.Header, AllSchemes, &c); err != nil {
				t.Fatal(err)
			}
			if c.SignsForm {
				r.Form = body
			}
			if c.APIKey != "app-key" || c.Nonce != "nonce-1" || !c.Date.Equal(testTime) || c.ContentMD5 != req.Header.Get("Content-MD5") {
				t.Fatalf("credentials %+v", c)
			}
			if !Verify(r, &c, NewSecret("app-secret"), "") {
				t.Fatal("not verified")
			}
			if Verify(r, &c, NewSecret("app-secreT"), "") {
				t.Fatal("verified with a wrong secret")
			}
		})
	}
}

func TestAliyunParseErrors(t *testing.T) {
	sig := base64.StdEncoding.EncodeToString(make([]byte, 32))
	valid := map[string]string{"X-Ca-Key": "k", "X-Ca-Signature": sig, "X-Ca-Timestamp": "1700000000000", "X-Ca-Nonce": "n",
		"X-Ca-Signature-Headers": "x-ca-timestamp, X-Ca-Nonce"}
	with := func(name, value string) map[string]string {
		h := map[string]string{}
		for k, v := range valid {
			h[k] = v
		}
		if value == "" {
			delete(h, name)
		} else {
			h[name] = value
		}
		return h
	}
	tests := []struct {
		name    string
		headers map[string]string
		want    error
	}{
		{"none", map[string]string{"X-Ca-Stage": "RELEASE"}, ErrMissingCredentials},
		{"no key", with("X-Ca-Key", ""), ErrMalformedCredentials},
		{"no signature", with("X-Ca-Signature", ""), ErrMalformedCredentials},
		{"signature not base64", with("X-Ca-Signature", strings.Repeat("*", 44)), ErrMalformedCredentials},
		{"signature of SHA-1 size", with("X-Ca-Signature", base64.StdEncoding.EncodeToString(make([]byte, 20))), ErrMalformedCredentials},
		{"HmacSHA1", with("X-Ca-Signature-Method", "HmacSHA1"), ErrMalformedCredentials},
		{"no timestamp", with("X-Ca-Timestamp", ""), ErrMissingDate},
		{"timestamp in seconds with a dot", with("X-Ca-Timestamp", "1700000000.5"), ErrMissingDate},
		{"timestamp too long", with("X-Ca-Timestamp", strings.Repeat("9", 30)), ErrMissingDate},
		{"no nonce", with("X-Ca-Nonce", ""), ErrMissingNonce},
		{"no signed headers", with("X-Ca-Signature-Headers", ""), ErrMissingSignedHeaders},
		{"timestamp not signed", with("X-Ca-Signature-Headers", "x-ca-nonce,x-ca-key"), ErrMissingSignedHeaders},
		{"nonce not signed", with("X-Ca-Signature-Headers", "x-ca-timestamp,x-ca-nonces"), ErrMissingSignedHeaders},
		{"timestamp named with a Unicode fold (long s)", with("X-Ca-Signature-Headers", "x-ca-time\u017ftamp,x-ca-nonce"), ErrMissingSignedHeaders},
		{"nonce named with a Unicode fold (Kelvin sign)", with("X-Ca-Signature-Headers", "x-ca-timestamp,x-ca-nonce,x-ca-\u212aey"), nil},
		{"well formed", with("X-Ca-Signature-Method", "HmacSHA256"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Credentials
			if err := Parse(headerOf(tt.headers), AllSchemes, &c); err != tt.want {
				t.Fatalf("Parse = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestAliyunFormContentTypes(t *testing.T) {
	for ct, want := range map[string]bool{
		"application/x-www-form-urlencoded":                true,
		"Application/X-WWW-Form-Urlencoded;charset=UTF-8":  true,
		" application/x-www-form-urlencoded ; charset=gbk": true,
		"application/x-www-form-urlencodedx":               false,
		"multipart/form-data; boundary=x":                  false,
		"":                                                 false,
	} {
		if got := isFormContentType(ct); got != want {
			t.Errorf("isFormContentType(%q) = %v", ct, got)
		}
	}
}

func TestAliyunNoAllocations(t *testing.T) {
	req := newRequest(t, "POST", "/v1/items/a b", "pageSize=20&pageNumber=1", []byte(`{"a":1}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if err := Sign(req, Aliyun, "ak", "sk"); err != nil {
		t.Fatal(err)
	}
	r, _ := received(t, req)
	assertNoAllocations(t, r, "", "sk")
}

func TestAliyunSignKeepsBody(t *testing.T) {
	req := newRequest(t, "POST", "/", "", []byte("a=1"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if err := Sign(req, Aliyun, "ak", "sk"); err != nil {
		t.Fatal(err)
	}
	if got, _ := io.ReadAll(req.Body); string(got) != "a=1" || req.Header.Get("Content-MD5") != "" {
		t.Fatalf("body %q, Content-MD5 %q", got, req.Header.Get("Content-MD5"))
	}
}

// BenchmarkVerifyAliyun is the request of BenchmarkVerifyJDCloud2 signed
// with Alibaba's scheme.
func BenchmarkVerifyAliyun(b *testing.B) {
	req := newRequest(b, http.MethodGet, "/v1/regions/cn-north-1/instances/i-8f3ab2:describe", "pageNumber=1&pageSize=20&filters.1.name=status&filters.1.values.1=running", nil)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if err := Sign(req, Aliyun, "203753981", "app-secret-0123456789abcdef"); err != nil {
		b.Fatal(err)
	}
	r, _ := received(b, req)
	benchmarkVerify(b, r, "app-secret-0123456789abcdef", "")
}
