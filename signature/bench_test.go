package signature

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// benchRequest is a realistic signed GET as a server receives it: five
// signed headers (host, content-type, x-jdcloud-date, -nonce, -algorithm)
// and a query of four parameters, no body.
func benchRequest(b *testing.B) (*Request, string) {
	const secret = "3A7F5E1C9B2D4F6A8C0E1B3D5F7A9C2E4B6D8F0A1C3E5B7D"
	req := httptest.NewRequest(http.MethodGet, "http://api.example.com/v1/regions/cn-north-1/instances/i-8f3ab2:describe?pageNumber=1&pageSize=20&filters.1.name=status&filters.1.values.1=running", nil)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Jdcloud-Algorithm", "JDCLOUD2-HMAC-SHA256")
	req.Header.Set("User-Agent", "JdcloudSdkGo/1.64.0 vm/0.7.0")
	if err := Sign(req, JDCloud2, "6F2A0B4C8E1D3F5A7B9C0D2E4F6A8B1C", secret, WithTime(time.Now())); err != nil {
		b.Fatal(err)
	}
	return &Request{Method: req.Method, Host: req.Host, Path: req.URL.EscapedPath(), RawQuery: req.URL.RawQuery, Header: req.Header}, secret
}

// BenchmarkVerifyJDCloud2 is the figure of the README's Performance
// section: Parse and Verify of a cached key, no body.
func BenchmarkVerifyJDCloud2(b *testing.B) {
	r, secret := benchRequest(b)
	s := NewSecret(secret)
	var c Credentials
	if err := Parse(r.Header, AllSchemes, &c); err != nil || !Verify(r, &c, s, emptySHA256) {
		b.Fatal("benchmark request does not verify", err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := Parse(r.Header, AllSchemes, &c); err != nil {
			b.Fatal(err)
		}
		if !Verify(r, &c, s, emptySHA256) {
			b.Fatal("not verified")
		}
	}
}

// BenchmarkVerifyJDCloud2Mismatch is the cost of a refused signature: both
// canonical forms are tried.
func BenchmarkVerifyJDCloud2Mismatch(b *testing.B) {
	r, _ := benchRequest(b)
	s := NewSecret("another secret")
	var c Credentials
	if err := Parse(r.Header, AllSchemes, &c); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if Verify(r, &c, s, emptySHA256) {
			b.Fatal("verified")
		}
	}
}

// BenchmarkVerifyJDCloud2Naive is the straightforward implementation for
// comparison: key derived per request with hmac.New, strings built with
// concatenation.
func BenchmarkVerifyJDCloud2Naive(b *testing.B) {
	r, secret := benchRequest(b)
	var c Credentials
	if err := Parse(r.Header, AllSchemes, &c); err != nil {
		b.Fatal(err)
	}
	j := implOf(JDCloud2).(*jdcloud)
	b.ReportAllocs()
	for b.Loop() {
		var c Credentials
		if err := Parse(r.Header, AllSchemes, &c); err != nil {
			b.Fatal(err)
		}
		sc := &scratch{}
		canonical, _ := j.appendCanonicalRequest(nil, r, &c, emptySHA256, false, sc)
		sum := sha256.Sum256(canonical)
		key := hmacSHA256([]byte(j.auth.keyPrefix()+secret), c.scope[:8])
		key = hmacSHA256(key, c.Region)
		key = hmacSHA256(key, c.Service)
		key = hmacSHA256(key, j.auth.terminator)
		sig := hmacSHA256(key, j.auth.algorithm+"\n"+c.dateValue+"\n"+c.scope+"\n"+hex.EncodeToString(sum[:]))
		want, _ := hex.DecodeString(c.Signature)
		if !hmac.Equal(sig, want) {
			b.Fatal("not verified")
		}
	}
}

func BenchmarkParseJDCloud2(b *testing.B) {
	r, _ := benchRequest(b)
	var c Credentials
	b.ReportAllocs()
	for b.Loop() {
		if err := Parse(r.Header, AllSchemes, &c); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCanonicalRequestJDCloud2 is the canonical request alone, the
// part of BenchmarkVerifyJDCloud2 that is neither parsing nor hashing.
func BenchmarkCanonicalRequestJDCloud2(b *testing.B) {
	r, _ := benchRequest(b)
	var c Credentials
	if err := Parse(r.Header, AllSchemes, &c); err != nil {
		b.Fatal(err)
	}
	j := implOf(JDCloud2).(*jdcloud)
	sc := getScratch()
	defer putScratch(sc)
	b.ReportAllocs()
	for b.Loop() {
		sc.buf, _ = j.appendCanonicalRequest(sc.buf[:0], r, &c, emptySHA256, false, sc)
	}
}
