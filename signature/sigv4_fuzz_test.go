package signature

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/http/httpguts"
)

func FuzzSigV4Parse(f *testing.F) {
	f.Add("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31", "20150830T123600Z", "")
	f.Add("AWS4-HMAC-SHA256 Credential=a/b/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;x-amz-content-sha256;x-amz-date,Signature="+emptySHA256, "20130524T000000Z", "UNSIGNED-PAYLOAD")
	f.Add("AWS4-HMAC-SHA256 Credential=////aws4_request, SignedHeaders=;;, Signature=", "00000000T000000Z", "x")
	f.Add("AWS4-HMAC-SHA256 Credential=a/20150830/r/s/aws4_request, SignedHeaders=host;x-amz-date, Signature="+emptySHA256+"\n", "20150830T123600Z\n20150830T000000Z", "")
	f.Fuzz(func(t *testing.T, auth, date, content string) {
		h := http.Header{"Authorization": lines(auth), "X-Amz-Date": lines(date)}
		if content != "" {
			h["X-Amz-Content-Sha256"] = lines(content)
		}
		var c Credentials
		if err := Parse(h, Schemes(0).With(SigV4), &c); err != nil {
			return
		}
		for name, values := range h {
			if len(values) > 1 {
				t.Fatalf("Parse accepted %s on %d lines", name, len(values))
			}
		}
		// The signature, the replay key, has one spelling.
		if got := hex.EncodeToString(c.signature[:]); got != c.Signature {
			t.Fatalf("signature %q read as %s", c.Signature, got)
		}
		for _, field := range []string{c.APIKey, c.Region, c.Service, c.Signature, c.signedHeaders, c.scope} {
			if field == "" || !strings.Contains(auth, field) {
				t.Fatalf("field %q is not part of the Authorization %q", field, auth)
			}
		}
		if c.Scheme != SigV4 || c.Nonce != "" || !strings.Contains(content, c.PayloadHash) || !slices.Contains(strings.Split(c.signedHeaders, ";"), "host") {
			t.Fatalf("credentials %+v", c)
		}
		// Verify never panics on what Parse accepts, whatever the path and query.
		Verify(&Request{Method: "GET", Path: auth, RawQuery: date, Header: h}, &c, NewSecret("s"), emptySHA256)
	})
}

// FuzzSigV4RoundTrip signs anything net/http can build with SigV4 for S3
// and another service, and verifies it in-process and after the wire.
func FuzzSigV4RoundTrip(f *testing.F) {
	f.Add("GET", "/documents and settings/", "a=b&A=c&a=B", "  padded   value ", []byte(nil), false)
	f.Add("PUT", "/中文/%2F/+/~", "?=a&a=%zz&+= 1", "a\tb", []byte("body"), true)
	f.Add("POST", "", "&&=&a", "", []byte{0, 0xff}, false)
	f.Fuzz(func(t *testing.T, method, path, query, value string, body []byte, s3 bool) {
		service := "execute-api"
		if s3 {
			service = "s3"
		}
		buf := appendEscapedPath(nil, path) // the canonicaliser takes anything
		if len(buf) < len(path) {
			t.Fatalf("escaped path %q shorter than %q", buf, path)
		}
		req, err := http.NewRequest(method, "http://api.example.com/", bytes.NewReader(body))
		if err != nil {
			return // not a method token
		}
		req.URL.Path, req.URL.RawQuery = path, query
		req.Header.Set("X-Amz-Meta-Fuzz", value)
		if err := Sign(req, SigV4, "ak", "sk", WithTime(testTime), WithService(service)); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(body)
		bodyHash := hex.EncodeToString(sum[:])
		r := &Request{Method: req.Method, Host: req.Host, Path: req.URL.EscapedPath(), RawQuery: req.URL.RawQuery, Header: req.Header}
		if !parseAndVerify(r, "sk", bodyHash) {
			t.Fatalf("round trip failed for %q %q %q %q", method, path, query, value)
		}
		if r, ok := throughWire(req, value); ok && !parseAndVerify(r, "sk", bodyHash) {
			t.Fatalf("round trip through the wire failed for %q %q %q %q (received %q %q)", method, path, query, value, r.Path, r.RawQuery)
		}
	})
}

// parseAndVerify parses and verifies r as the gateway does.
func parseAndVerify(r *Request, secret, bodyHash string) bool {
	var c Credentials
	if Parse(r.Header, AllSchemes, &c) != nil {
		return false
	}
	if c.PayloadHash != "" {
		bodyHash = c.PayloadHash
	}
	return Verify(r, &c, NewSecret(secret), bodyHash)
}

// throughWire is req as a server reads it, when net/http can carry it and
// the header value fuzzed into it.
func throughWire(req *http.Request, value string) (*Request, bool) {
	if !httpguts.ValidHeaderFieldValue(value) {
		return nil, false
	}
	// A path without its leading slash is no origin-form request target:
	// net/http writes it as something else ("./A:" for "A:"), which no
	// client signs.
	if req.URL.Path != "" && !strings.HasPrefix(req.URL.Path, "/") {
		return nil, false
	}
	if req.GetBody != nil {
		req.Body, _ = req.GetBody()
	}
	var wire bytes.Buffer
	if err := req.Write(&wire); err != nil {
		return nil, false
	}
	got, err := http.ReadRequest(bufio.NewReader(&wire))
	if err != nil {
		return nil, false
	}
	return &Request{Method: got.Method, Host: got.Host, Path: got.URL.EscapedPath(), RawQuery: got.URL.RawQuery, Header: got.Header}, true
}
