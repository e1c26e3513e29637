package signature

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestSigV4AWSExamples verifies the signatures of AWS's own documentation:
// get-vanilla of the SigV4 test suite (service "service", path encoded
// twice) and the S3 GetObject example (path encoded once).
func TestSigV4AWSExamples(t *testing.T) {
	tests := []struct {
		name, host, path, secret string
		header                   map[string]string
	}{
		{"get-vanilla", "example.amazonaws.com", "/", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", map[string]string{
			"X-Amz-Date":    "20150830T123600Z",
			"Authorization": "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
		}},
		{"s3 get object", "examplebucket.s3.amazonaws.com", "/test.txt", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", map[string]string{
			"X-Amz-Date":           "20130524T000000Z",
			"Range":                "bytes=0-9",
			"X-Amz-Content-Sha256": emptySHA256,
			"Authorization":        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.header {
				h.Set(k, v)
			}
			r := &Request{Method: "GET", Host: tt.host, Path: tt.path, Header: h}
			c, ok := verifyReceived(t, r, emptySHA256, tt.secret)
			if !ok {
				t.Fatal("AWS's example does not verify")
			}
			if c.Scheme != SigV4 || c.Nonce != "" || c.Region != "us-east-1" {
				t.Errorf("credentials %+v", c)
			}
			if _, ok := verifyReceived(t, r, emptySHA256, tt.secret+"x"); ok {
				t.Error("verified with a wrong secret")
			}
		})
	}
}

func TestSigV4RoundTrip(t *testing.T) {
	tests := []struct {
		name, method, path, query string
		body                      []byte
	}{
		{"root", "GET", "/", "", nil},
		{"escaped path", "GET", "/documents and settings/a%2Fb", "", nil},
		{"non-ASCII", "PUT", "/v1/中文/数据.bin", "中文=值", []byte("data")},
		{"reserved characters", "GET", "/!$&'()*,;=:@", "q=" + url.QueryEscape("!*'();:@&=+$,/?#[]"), nil},
		{"repeated unsorted query", "GET", "/list", "b=2&a=3&a=1&c&b=1", nil},
		{"plus and space in query", "GET", "/q", "a=x+y&b=x%20y&c=x%2By", nil},
		{"post body", "POST", "/v1/items", "", []byte(`{"a":1}`)},
	}
	for _, service := range []string{"execute-api", "s3"} {
		for _, tt := range tests {
			t.Run(service+"/"+tt.name, func(t *testing.T) {
				req := newRequest(t, tt.method, tt.path, tt.query, tt.body)
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-Amz-Meta-Note", "  a   b ")
				if err := Sign(req, SigV4, "AKIDEXAMPLE", "secret", WithTime(testTime), WithRegion("us-west-2"), WithService(service)); err != nil {
					t.Fatal(err)
				}
				r, bodyHash := received(t, req)
				c, ok := verifyReceived(t, r, bodyHash, "secret")
				if !ok {
					t.Fatalf("not verified: %s %s?%s %v", r.Method, r.Path, r.RawQuery, r.Header)
				}
				if c.Scheme != SigV4 || c.APIKey != "AKIDEXAMPLE" || c.Region != "us-west-2" || c.Service != service || !c.Date.Equal(testTime) {
					t.Fatalf("credentials %+v", c)
				}
				if ok, _, _ := implOf(SigV4).(*sigv4).auth.matches(r, &c, NewSecret("secret").chainedKey(SigV4, "AWS4", c.scope[:8], c.Region, c.Service, "aws4_request"), bodyHash, documentedForm(service), true, newScratch()); !ok {
					t.Error("Sign does not write the documented canonical form")
				}
				if _, ok := verifyReceived(t, r, bodyHash, "secreT"); ok {
					t.Error("verified with a wrong secret")
				}
			})
		}
	}
}

// TestSigV4OtherForms: the forms of older or S3-style signers verify.
func TestSigV4OtherForms(t *testing.T) {
	v := implOf(SigV4).(*sigv4)
	for _, tt := range []struct {
		name    string
		form    canonicalForm
		service string
	}{
		{"curl 7: path and query as sent", asSentForm, "execute-api"},
		{"curl 7 for S3", asSentForm, "s3"},
		{"S3 form for another service", s3Form, "es"},
		{"double encoding for S3", serviceForm, "s3"}, // not accepted: asserted below
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := newRequest(t, "GET", "/a b/c%2Fd", "z=1&a=2", nil)
			o := signOptions{now: testTime, region: "r", service: tt.service}
			if err := v.auth.sign(req, SigV4, "ak", "sk", &o, tt.form, true, signsAmzHeader); err != nil {
				t.Fatal(err)
			}
			r, bodyHash := received(t, req)
			_, ok := verifyReceived(t, r, bodyHash, "sk")
			if want := tt.name != "double encoding for S3"; ok != want {
				t.Fatalf("verified = %v, want %v", ok, want)
			}
		})
	}
}

func TestSigV4ContentHash(t *testing.T) {
	body := []byte("streamed body")
	for _, opt := range []Option{WithContentSHA256(), WithUnsignedPayload()} {
		req := newRequest(t, "PUT", "/upload", "", body)
		if err := Sign(req, SigV4, "ak", "sk", opt, WithService("s3")); err != nil {
			t.Fatal(err)
		}
		h := req.Header.Get("X-Amz-Content-Sha256")
		if !strings.Contains(req.Header.Get("Authorization"), "x-amz-content-sha256") || h == "" {
			t.Fatalf("content hash header %q not signed: %s", h, req.Header.Get("Authorization"))
		}
		r, _ := received(t, req)
		c, ok := verifyReceived(t, r, "ignored: the header is taken", "sk")
		if !ok || c.PayloadHash != h {
			t.Fatalf("verified %v with payload hash %q, header %q", ok, c.PayloadHash, h)
		}
	}
}

func TestSigV4Tampered(t *testing.T) {
	req := newRequest(t, "POST", "/v1/items", "a=1", []byte("body"))
	req.Header.Set("X-Amz-Target", "Service.Op")
	if err := Sign(req, SigV4, "ak", "sk", WithTime(testTime)); err != nil {
		t.Fatal(err)
	}
	r, bodyHash := received(t, req)
	for name, tamper := range map[string]func(r *Request) (string, func()){
		"path": func(r *Request) (string, func()) { p := r.Path; r.Path += "x"; return bodyHash, func() { r.Path = p } },
		"query": func(r *Request) (string, func()) {
			q := r.RawQuery
			r.RawQuery = "a=2"
			return bodyHash, func() { r.RawQuery = q }
		},
		"method": func(r *Request) (string, func()) { r.Method = "PUT"; return bodyHash, func() { r.Method = "POST" } },
		"host": func(r *Request) (string, func()) {
			h := r.Host
			r.Host = "evil.example"
			return bodyHash, func() { r.Host = h }
		},
		"body": func(r *Request) (string, func()) { return emptySHA256, func() {} },
		"signed header": func(r *Request) (string, func()) {
			r.Header.Set("X-Amz-Target", "Service.Other")
			return bodyHash, func() { r.Header.Set("X-Amz-Target", "Service.Op") }
		},
	} {
		hash, undo := tamper(r)
		if _, ok := verifyReceived(t, r, hash, "sk"); ok {
			t.Errorf("%s tampered: verified", name)
		}
		undo()
	}
	if _, ok := verifyReceived(t, r, bodyHash, "sk"); !ok {
		t.Fatal("untampered request does not verify")
	}
}

func TestSigV4ParseErrors(t *testing.T) {
	const (
		auth = "AWS4-HMAC-SHA256 Credential=ak/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=" + emptySHA256
		date = "20150830T123600Z"
	)
	tests := []struct {
		name    string
		headers map[string]string
		want    error
	}{
		{"wrong terminator", map[string]string{"Authorization": strings.Replace(auth, "aws4_request", "jdcloud2_request", 1), "X-Amz-Date": date}, ErrMalformedCredentials},
		{"no signed headers", map[string]string{"Authorization": strings.Replace(auth, "SignedHeaders=host;x-amz-date", "", 1), "X-Amz-Date": date}, ErrMissingSignedHeaders},
		{"no date", map[string]string{"Authorization": auth}, ErrMissingDate},
		{"Date header only", map[string]string{"Authorization": auth, "Date": "Sun, 30 Aug 2015 12:36:00 GMT"}, ErrMissingDate},
		{"date of another day", map[string]string{"Authorization": auth, "X-Amz-Date": "20150831T000000Z"}, ErrMalformedCredentials},
		{"host not signed", map[string]string{"Authorization": strings.Replace(auth, "host;", "", 1), "X-Amz-Date": date}, ErrMissingSignedHeaders},
		{"date not signed", map[string]string{"Authorization": strings.Replace(auth, ";x-amz-date", "", 1), "X-Amz-Date": date}, ErrMissingSignedHeaders},
		{"content hash not signed", map[string]string{"Authorization": auth, "X-Amz-Date": date, "X-Amz-Content-Sha256": emptySHA256}, ErrMissingSignedHeaders},
		{"upper-case signature", map[string]string{"Authorization": auth[:len(auth)-1] + "A", "X-Amz-Date": date}, ErrMalformedCredentials},
		{"well formed", map[string]string{"Authorization": auth, "X-Amz-Date": date, "X-Amz-Security-Token": "ignored"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := headerOf(tt.headers)
			var c Credentials
			if err := Parse(h, AllSchemes, &c); err != tt.want {
				t.Fatalf("Parse = %v, want %v", err, tt.want)
			}
			if err := Parse(h, AllSchemes&^Schemes(0).With(SigV4), &c); err != ErrMissingCredentials {
				t.Fatalf("with sigv4 not allowed: Parse = %v", err)
			}
		})
	}
}

func TestSigV4NoAllocations(t *testing.T) {
	req := newRequest(t, "GET", "/v1/items/a b", "pageSize=20&pageNumber=1", nil)
	if err := Sign(req, SigV4, "ak", "sk"); err != nil {
		t.Fatal(err)
	}
	r, bodyHash := received(t, req)
	assertNoAllocations(t, r, bodyHash, "sk")
}

// headerOf is a header with the given values, names canonicalised.
func headerOf(values map[string]string) http.Header {
	h := http.Header{}
	for k, v := range values {
		h.Set(k, v)
	}
	return h
}

// assertNoAllocations checks that Parse and Verify of r allocate nothing
// once the secret's key is cached.
func assertNoAllocations(t *testing.T, r *Request, bodyHash, secret string) {
	t.Helper()
	if raceEnabled {
		t.Log("allocations not counted under the race detector")
		return
	}
	s := NewSecret(secret)
	var c Credentials
	if n := testing.AllocsPerRun(100, func() {
		if err := Parse(r.Header, AllSchemes, &c); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("Parse allocates %v times", n)
	}
	if n := testing.AllocsPerRun(100, func() {
		if !Verify(r, &c, s, bodyHash) {
			t.Fatal("not verified")
		}
	}); n > 0.1 {
		t.Errorf("Verify allocates %v times", n)
	}
}

func TestSignReadsBodyOnce(t *testing.T) {
	for _, scheme := range []Scheme{SigV4, Aliyun} {
		req, _ := http.NewRequest("PUT", "http://h/x", io.NopCloser(bytes.NewReader([]byte("once"))))
		if err := Sign(req, scheme, "ak", "sk"); err != nil {
			t.Fatal(err)
		}
		if got, _ := io.ReadAll(req.Body); string(got) != "once" {
			t.Errorf("%s: body after Sign = %q", scheme, got)
		}
	}
}

// benchmarkVerify measures Parse and Verify of r with a cached key.
func benchmarkVerify(b *testing.B, r *Request, secret, payloadHash string) {
	s := NewSecret(secret)
	var c Credentials
	if err := Parse(r.Header, AllSchemes, &c); err != nil || !Verify(r, &c, s, payloadHash) {
		b.Fatal("benchmark request does not verify", err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := Parse(r.Header, AllSchemes, &c); err != nil {
			b.Fatal(err)
		}
		if !Verify(r, &c, s, payloadHash) {
			b.Fatal("not verified")
		}
	}
}

// BenchmarkVerifySigV4 is the request of BenchmarkVerifyJDCloud2 signed
// with SigV4 (host, content-type, x-amz-date signed).
func BenchmarkVerifySigV4(b *testing.B) {
	req := newRequest(b, http.MethodGet, "/v1/regions/cn-north-1/instances/i-8f3ab2:describe", "pageNumber=1&pageSize=20&filters.1.name=status&filters.1.values.1=running", nil)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "aws-sdk-go-v2/1.30.0")
	if err := Sign(req, SigV4, "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", WithRegion("us-east-1"), WithService("execute-api")); err != nil {
		b.Fatal(err)
	}
	r, bodyHash := received(b, req)
	benchmarkVerify(b, r, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", bodyHash)
}
