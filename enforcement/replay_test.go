package enforcement

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/accessauth/caddy-access-auth/signature"
)

// TestReencodedReplaysAreRefused: a request accepted once and re-sent
// with its nonce, date or signature written another way on the wire is
// refused: as a replay where the signature still covers it, as malformed
// credentials where a header the check reads once comes on two lines.
func TestReencodedReplaysAreRefused(t *testing.T) {
	// split sends a header on two lines, cut at its comma (which the
	// canonical headers of JD Cloud's schemes put back) or in the middle.
	split := func(name string) func(h http.Header) {
		return func(h http.Header) {
			v := h.Get(name)
			if first, second, ok := strings.Cut(v, ","); ok {
				h[name] = []string{first, second}
			} else {
				h[name] = []string{v[:len(v)/2], v[len(v)/2:]}
			}
		}
	}
	set := func(name, value string) func(h http.Header) {
		return func(h http.Header) { h.Set(name, value) }
	}
	tests := []struct {
		name   string
		scheme signature.Scheme
		nonce  string
		replay func(h http.Header)
		want   Reason
	}{
		{"jdcloud2 nonce with inner spaces doubled", signature.JDCloud2, "abc def", set("X-Jdcloud-Nonce", "abc  def"), ReplayedNonce},
		{"jdcloud2 nonce padded", signature.JDCloud2, "abc def", set("X-Jdcloud-Nonce", " abc def\t"), ReplayedNonce},
		{"jdcloud3 nonce with inner spaces doubled", signature.JDCloud3, "abc def", set("X-Jdcloud-Nonce", "abc  def"), SignatureMismatch},
		{"jdcloud2 nonce split over two lines", signature.JDCloud2, "A,B", split("X-Jdcloud-Nonce"), MalformedCredentials},
		{"jdcloud3 nonce split over two lines", signature.JDCloud3, "A,B", split("X-Jdcloud-Nonce"), MalformedCredentials},
		{"jdcloud2 date repeated", signature.JDCloud2, "n", func(h http.Header) { h.Add("X-Jdcloud-Date", h.Get("X-Jdcloud-Date")) }, MalformedCredentials},
		{"jdcloud2 Authorization repeated", signature.JDCloud2, "n", func(h http.Header) { h.Add("Authorization", h.Get("Authorization")) }, MalformedCredentials},
		{"sigv4 signature in upper case", signature.SigV4, "", func(h http.Header) {
			auth := h.Get("Authorization")
			i := strings.Index(auth, "Signature=") + len("Signature=")
			h.Set("Authorization", auth[:i]+strings.ToUpper(auth[i:]))
		}, MalformedCredentials},
		{"sigv4 date split over two lines", signature.SigV4, "", split("X-Amz-Date"), MalformedCredentials},
		{"aliyun nonce with inner spaces doubled", signature.Aliyun, "abc def", set("X-Ca-Nonce", "abc  def"), SignatureMismatch},
		{"aliyun nonce split over two lines", signature.Aliyun, "A,B", split("X-Ca-Nonce"), MalformedCredentials},
		{"aliyun nonce repeated", signature.Aliyun, "n", func(h http.Header) { h.Add("X-Ca-Nonce", "other") }, MalformedCredentials},
		{"aliyun timestamp repeated", signature.Aliyun, "n", func(h http.Header) { h.Add("X-Ca-Timestamp", h.Get("X-Ca-Timestamp")) }, MalformedCredentials},
	}
	keys := testKeys()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nonces := NewLocalNonces(WithNonceClock(func() time.Time { return testNow }))
			c := newTestChecker(t, keys, func(c *Config) { c.Nonces = nonces })
			var opts []signature.Option
			if tt.nonce != "" {
				opts = append(opts, signature.WithNonce(tt.nonce))
			}
			r := signedRequest(t, http.MethodGet, "http://api.example.com/v1/orders/1", "", "GOOD", secretOf("GOOD"), tt.scheme, opts...)
			if d := check(c, r, "203.0.113.5"); d.Reason != Allowed {
				t.Fatalf("as signed: %s", d.Reason)
			}
			tt.replay(r.Header)
			if d := check(c, r, "203.0.113.5"); d.Reason != tt.want {
				t.Fatalf("replayed with %q: %s, want %s", r.Header, d.Reason, tt.want)
			}
		})
	}
}
