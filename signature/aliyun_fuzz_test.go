package signature

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"
)

func FuzzAliyunParse(f *testing.F) {
	f.Add("app-key", "8lNwXmFzUAmUx4CJ+Jr2W7V8tTB+HzrS5r3ijnH3zP8=", "HmacSHA256", "1700000000000", "nonce", "X-Ca-Key,X-Ca-Nonce,X-Ca-Timestamp", "application/x-www-form-urlencoded; charset=UTF-8")
	f.Add("", "====", "", "", "", ",,", "")
	f.Add("k", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "hmacsha256", "999999999999999", " ", " x-ca-timestamp , x-ca-nonce ", "Application/X-Www-Form-Urlencoded")
	f.Add("k\nk", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB=", "", "1700000000000", "A\nB", "x-ca-timestamp,x-ca-nonce\n", "")
	f.Fuzz(func(t *testing.T, key, signature, method, timestamp, nonce, signedHeaders, contentType string) {
		h := http.Header{"X-Ca-Key": lines(key), "X-Ca-Signature": lines(signature), "X-Ca-Signature-Method": lines(method),
			"X-Ca-Timestamp": lines(timestamp), "X-Ca-Nonce": lines(nonce), "X-Ca-Signature-Headers": lines(signedHeaders), "Content-Type": {contentType}}
		var c Credentials
		if err := Parse(h, Schemes(0).With(Aliyun), &c); err != nil {
			return
		}
		for name, values := range h {
			if len(values) > 1 {
				t.Fatalf("Parse accepted %s on %d lines", name, len(values))
			}
		}
		// The nonce is the value signed; the signature has one spelling.
		if c.Scheme != Aliyun || c.APIKey == "" || !strings.Contains(key, c.APIKey) || c.Nonce == "" || c.Nonce != trimSpace(nonce) ||
			!commaListHas(c.signedHeaders, caTimestampHeader) || c.Date.Before(time.Unix(0, 0)) ||
			base64.StdEncoding.EncodeToString(c.signature[:]) != c.Signature {
			t.Fatalf("credentials %+v from %q", c, h)
		}
		Verify(&Request{Method: method, Path: timestamp, RawQuery: signedHeaders, Header: h, Form: []byte(nonce)}, &c, NewSecret("s"), "")
	})
}

// FuzzAliyunRoundTrip signs anything net/http can build with Alibaba's
// scheme, forms included, and verifies it in-process and after the wire.
func FuzzAliyunRoundTrip(f *testing.F) {
	f.Add("GET", "/v1/中文/a b", "b=2&a=1&a=0&c&d=x+y", "application/json", []byte(nil))
	f.Add("POST", "/form", "b=q&z", "application/x-www-form-urlencoded", []byte("name=%E4%B8%AD+%E6%96%87&b=form&empty=&&="))
	f.Add("PUT", "", "%zz=%&a=%41", "text/plain", []byte{0, 0xff})
	f.Fuzz(func(t *testing.T, method, path, query, contentType string, body []byte) {
		sc := getScratch() // the canonicalisers take anything
		sc.buf = appendAliyunParams(appendDecoded(sc.buf[:0], path, false), body, query, sc)
		putScratch(sc)

		req, err := http.NewRequest(method, "http://api.example.com/", bytes.NewReader(body))
		if err != nil {
			return
		}
		req.URL.Path, req.URL.RawQuery = path, query
		req.Header.Set("Content-Type", contentType)
		if err := Sign(req, Aliyun, "ak", "sk", WithTime(testTime)); err != nil {
			t.Fatal(err)
		}
		form := func(r *Request) *Request {
			if isFormContentType(contentType) {
				r.Form = body
			}
			return r
		}
		r := form(&Request{Method: req.Method, Path: req.URL.EscapedPath(), RawQuery: req.URL.RawQuery, Header: req.Header})
		if !parseAndVerify(r, "sk", "") {
			t.Fatalf("round trip failed for %q %q %q %q", method, path, query, body)
		}
		if r, ok := throughWire(req, contentType); ok {
			if !parseAndVerify(form(r), "sk", "") {
				t.Fatalf("round trip through the wire failed for %q %q %q (received %q %q)", method, path, query, r.Path, r.RawQuery)
			}
		}
	})
}
