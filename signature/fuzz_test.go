package signature

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
)

func FuzzParseAuthorization(f *testing.F) {
	f.Add("JDCLOUD2-HMAC-SHA256 Credential=ak/20190214/cn-north-1/test/jdcloud2_request, SignedHeaders=x-jdcloud-date;x-jdcloud-nonce, Signature="+emptySHA256, "20190214T104514Z", "nonce", "")
	f.Add("JDCLOUD3-HMAC-SHA256 Credential=a/b/20190917/r/s/jdcloud3_request,SignedHeaders=x-jdcloud-content-sha256;x-jdcloud-date;x-jdcloud-nonce,Signature="+emptySHA256, "20190917T064708Z", " n ", "UNSIGNED-PAYLOAD")
	f.Add("JDCLOUD2-HMAC-SHA256 Credential=/////, SignedHeaders=;, Signature=", "00000000T000000Z", "", "x")
	f.Add("JDCLOUD2-HMAC-SHA256 ,,,==,Credential==/", "99991399T256161Z", "n", "")
	f.Add("JDCLOUD2-HMAC-SHA256 Credential=ak/20190214/cn-north-1/test/jdcloud2_request, SignedHeaders=x-jdcloud-date;x-jdcloud-nonce, Signature="+emptySHA256, "20190214T104514Z", " a  b \nc", "")
	f.Add("JDCLOUD3-HMAC-SHA256 Credential=ak/20190214/r/s/jdcloud3_request, SignedHeaders=x-jdcloud-date;x-jdcloud-nonce, Signature="+emptySHA256+"\nBearer x", "20190214T104514Z\n", "n", "UNSIGNED-PAYLOAD\nx")
	f.Fuzz(func(t *testing.T, auth, date, nonce, content string) {
		h := http.Header{"Authorization": lines(auth), "X-Jdcloud-Date": lines(date), "X-Jdcloud-Nonce": lines(nonce)}
		if content != "" {
			h["X-Jdcloud-Content-Sha256"] = lines(content)
		}
		var c Credentials
		if err := Parse(h, AllSchemes, &c); err != nil {
			return
		}
		for name, values := range h {
			if len(values) > 1 {
				t.Fatalf("Parse accepted %s on %d lines", name, len(values))
			}
		}
		for _, field := range []string{c.APIKey, c.Region, c.Service, c.Signature, c.signedHeaders, c.scope} {
			if field == "" || !strings.Contains(auth, field) {
				t.Fatalf("field %q is not part of the Authorization %q", field, auth)
			}
		}
		if c.Nonce == "" || !strings.Contains(content, c.PayloadHash) || !strings.Contains(date, c.dateValue) {
			t.Fatalf("credentials %+v not taken from the headers", c)
		}
		// The nonce, the replay key, is the value the signature covers.
		signed := appendSignedHeaders(nil, &Request{Header: h}, &c, implOf(c.Scheme).(*jdcloud).collapse)
		if !bytes.Contains(signed, []byte("x-jdcloud-nonce:"+c.Nonce+"\n")) {
			t.Fatalf("nonce %q is not the one signed in\n%s", c.Nonce, signed)
		}
		if got := c.Date.UTC().Format(compactTimeFormat); got != c.dateValue {
			t.Fatalf("Date %s from %q", got, c.dateValue)
		}
		// Verify never panics on what Parse accepts.
		Verify(&Request{Method: "GET", Path: "/", Header: h}, &c, NewSecret("s"), emptySHA256)
	})
}

// lines is a fuzzed header value as the lines of a header: a '\n' in it,
// which no value read from the wire holds, starts another line.
func lines(value string) []string { return strings.Split(value, "\n") }

func FuzzCanonical(f *testing.F) {
	f.Add("GET", "/v1/resource:action", "p1=p1&p0=p0&o=%&u=u", " blank  value ", []byte("body data"))
	f.Add("POST", "/中文/ +/%2B%20%2F%2F//", "?=a&a=a&中文=值&%2=x&+= 1", "a\tb", []byte{})
	f.Add("PUT", "", "&&=&a", "", []byte{0, 0xff})
	f.Add("DELETE", "/%zz/%", "%zz=%&a=%41", "x\r\ny", []byte(nil))
	f.Fuzz(func(t *testing.T, method, path, query, value string, body []byte) {
		// The canonicalisers take anything.
		sc := getScratch()
		b := appendCanonicalPath(sc.buf[:0], path)
		b = appendCanonicalQuery(b, query, sc)
		b = appendHeaderValue(b, []string{value, path}, true)
		sc.buf = b
		putScratch(sc)

		for _, scheme := range []Scheme{JDCloud2, JDCloud3} {
			req, err := http.NewRequest(method, "http://api.example.com/", bytes.NewReader(body))
			if err != nil {
				return // not a method token
			}
			req.URL.Path, req.URL.RawQuery = path, query
			req.Header.Set("X-Jdcloud-Fuzz", value)
			if err := Sign(req, scheme, "ak", "sk", WithTime(testTime)); err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(body)
			bodyHash := hex.EncodeToString(sum[:])
			// In-process, with the values exactly as signed.
			r := &Request{Method: req.Method, Host: req.Host, Path: req.URL.EscapedPath(), RawQuery: req.URL.RawQuery, Header: req.Header}
			var c Credentials
			if err := Parse(r.Header, AllSchemes, &c); err != nil {
				t.Fatalf("%s: Parse of a signed request: %v", scheme, err)
			}
			if !Verify(r, &c, NewSecret("sk"), bodyHash) {
				t.Fatalf("%s: round trip failed for %q %q %q %q", scheme, method, path, query, value)
			}
			// Through the wire, when net/http can carry the request at all.
			r, ok := throughWire(req, value)
			if !ok {
				continue
			}
			if err := Parse(r.Header, AllSchemes, &c); err != nil {
				t.Fatalf("%s: Parse after the wire: %v", scheme, err)
			}
			if !Verify(r, &c, NewSecret("sk"), bodyHash) {
				t.Fatalf("%s: round trip through the wire failed for %q %q %q %q (received %q %q)", scheme, method, path, query, value, r.Path, r.RawQuery)
			}
		}
	})
}
