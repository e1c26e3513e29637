package enforcement

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/accessauth/caddy-access-auth/signature"
)

func TestOtherSchemes(t *testing.T) {
	for _, scheme := range []signature.Scheme{signature.JDCloud3, signature.SigV4, signature.Aliyun} {
		t.Run(scheme.String(), func(t *testing.T) {
			c := newTestChecker(t, testKeys(), nil)
			r := signedRequest(t, http.MethodGet, "http://api.example.com/v1/orders?b=2&a=1", "", "GOOD", secretOf("GOOD"), scheme)
			if d := check(c, r, "203.0.113.5"); d.Reason != Allowed || d.Identity.Scheme != scheme {
				t.Fatalf("reason %s, scheme %s", d.Reason, d.Identity.Scheme)
			}
			r = signedRequest(t, http.MethodPost, bodyURL, `{"a":1}`, "GOOD", secretOf("GOOD"), scheme)
			d := checkAllowed(t, c, r)
			defer d.Cleanup()
			if readBody(t, r) != `{"a":1}` {
				t.Fatal("body altered")
			}
		})
	}
}

// TestMissingDateNamesTheSchemesHeader goes from a request through Check
// and WriteDenial: the answer speaks of the header the client's scheme uses.
func TestMissingDateNamesTheSchemesHeader(t *testing.T) {
	tests := []struct {
		scheme    signature.Scheme
		header    string
		message   string
		caMessage bool
	}{
		{signature.JDCloud2, "X-Jdcloud-Date", "lack of header x-jdcloud-date", false},
		{signature.SigV4, "X-Amz-Date", "lack of header x-amz-date", false},
		{signature.Aliyun, "X-Ca-Timestamp", "lack of header x-ca-timestamp", true},
	}
	for _, tt := range tests {
		t.Run(tt.scheme.String(), func(t *testing.T) {
			c := newTestChecker(t, testKeys(), nil)
			r := signedRequest(t, http.MethodGet, bodyURL, "", "GOOD", secretOf("GOOD"), tt.scheme)
			r.Header.Del(tt.header)
			d := check(c, r, "203.0.113.5")
			if d.Reason != MissingDate {
				t.Fatalf("reason = %s", d.Reason)
			}
			w, body := writeDenial(t, d, "id")
			if body.Error.Message != tt.message || w.Header().Get("WWW-Authenticate") != tt.scheme.Challenge() {
				t.Fatalf("message %q, challenge %q", body.Error.Message, w.Header().Get("WWW-Authenticate"))
			}
			if got := w.Header().Get("X-Ca-Error-Message"); (got == tt.message) != tt.caMessage {
				t.Fatalf("X-Ca-Error-Message = %q", got)
			}
		})
	}
}

func signedAliyun(t *testing.T, contentType, body string, opts ...signature.Option) *http.Request {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, bodyURL+"?q=1", strings.NewReader(body))
	r.Header.Set("Content-Type", contentType)
	opts = append([]signature.Option{signature.WithTime(testNow)}, opts...)
	if err := signature.Sign(r, signature.Aliyun, "GOOD", secretOf("GOOD"), opts...); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestAliyunBodies(t *testing.T) {
	const form = "name=widget&count=2"
	t.Run("form signed through its parameters", func(t *testing.T) {
		c := newTestChecker(t, testKeys(), nil)
		r := signedAliyun(t, "application/x-www-form-urlencoded", form)
		d := checkAllowed(t, c, r)
		defer d.Cleanup()
		if readBody(t, r) != form || r.ContentLength != int64(len(form)) {
			t.Fatal("form body altered")
		}
	})
	t.Run("tampered form", func(t *testing.T) {
		c := newTestChecker(t, testKeys(), nil)
		r := signedAliyun(t, "application/x-www-form-urlencoded", form)
		r.Body = io.NopCloser(strings.NewReader("name=widget&count=200"))
		if d := check(c, r, "203.0.113.5"); d.Reason != SignatureMismatch {
			t.Fatalf("reason = %s", d.Reason)
		}
	})
	t.Run("form larger than fits in memory", func(t *testing.T) {
		c := newTestChecker(t, testKeys(), nil)
		r := signedAliyun(t, "application/x-www-form-urlencoded", "a="+strings.Repeat("x", memoryBodyLimit))
		if d := check(c, r, "203.0.113.5"); d.Reason != BodyTooLarge {
			t.Fatalf("reason = %s", d.Reason)
		}
	})
	t.Run("body covered by Content-MD5", func(t *testing.T) {
		c := newTestChecker(t, testKeys(), nil)
		r := signedAliyun(t, "application/json", `{"a":1}`)
		if r.Header.Get("Content-MD5") == "" {
			t.Fatal("the signer sent no Content-MD5")
		}
		d := checkAllowed(t, c, r)
		defer d.Cleanup()
		if readBody(t, r) != `{"a":1}` {
			t.Fatal("body altered")
		}
	})
	t.Run("small body not matching Content-MD5", func(t *testing.T) {
		c := newTestChecker(t, testKeys(), nil)
		r := signedAliyun(t, "application/json", `{"a":1}`)
		r.Body = io.NopCloser(strings.NewReader(`{"a":2}`))
		if d := check(c, r, "203.0.113.5"); d.Reason != SignatureMismatch {
			t.Fatalf("reason = %s, want signature_mismatch before the request goes on", d.Reason)
		}
	})
	t.Run("large body not matching Content-MD5", func(t *testing.T) {
		c := newTestChecker(t, testKeys(), nil)
		body := strings.Repeat("1", memoryBodyLimit+1)
		r := signedAliyun(t, "application/octet-stream", body)
		r.Body = io.NopCloser(strings.NewReader(strings.Repeat("2", len(body))))
		d := checkAllowed(t, c, r) // streamed: found out at the end
		defer d.Cleanup()
		if _, err := io.ReadAll(r.Body); !errors.Is(err, ErrBodyMismatch) {
			t.Fatalf("read %v, want ErrBodyMismatch", err)
		}
	})
	t.Run("form of too many parameters", func(t *testing.T) {
		c := newTestChecker(t, testKeys(), nil)
		r := signedAliyun(t, "application/x-www-form-urlencoded", strings.Repeat("a=1&", maxFormParams)+"a=1")
		if d := check(c, r, "203.0.113.5"); d.Reason != BodyTooLarge {
			t.Fatalf("a form of %d parameters: reason = %s, want body_too_large", maxFormParams+1, d.Reason)
		}
		r = signedAliyun(t, "application/x-www-form-urlencoded", strings.Repeat("a=1&", maxFormParams-1)+"a=1")
		d := checkAllowed(t, c, r)
		d.Cleanup()
	})
	t.Run("Content-MD5 that is not one", func(t *testing.T) {
		c := newTestChecker(t, testKeys(), nil)
		r := signedAliyun(t, "application/json", `{"a":1}`)
		r.Header.Set("Content-MD5", "not base64!")
		if d := check(c, r, "203.0.113.5"); d.Reason != SignatureMismatch {
			t.Fatalf("reason = %s", d.Reason)
		}
	})
	t.Run("body covered by nothing", func(t *testing.T) {
		c := newTestChecker(t, testKeys(), nil)
		r := signedAliyun(t, "application/json", `{"a":1}`, signature.WithUnsignedPayload())
		if d := check(c, r, "203.0.113.5"); d.Reason != SignatureMismatch {
			t.Fatalf("an unsigned aliyun body: reason = %s, want signature_mismatch", d.Reason)
		}
		c = newTestChecker(t, testKeys(), func(c *Config) { c.AllowUnsignedPayload = true })
		r = signedAliyun(t, "application/json", `{"a":1}`, signature.WithUnsignedPayload())
		d := checkAllowed(t, c, r)
		defer d.Cleanup()
		if readBody(t, r) != `{"a":1}` {
			t.Fatal("body altered")
		}
	})
}

// TestWrappedEmptyBody: Caddy wraps even an empty body (Content-Length 0 or
// none); Alibaba's scheme must still see no body rather than an unsigned
// payload.
func TestWrappedEmptyBody(t *testing.T) {
	c := newTestChecker(t, testKeys(), nil)
	r := signedRequest(t, http.MethodGet, bodyURL, "", "GOOD", secretOf("GOOD"), signature.Aliyun)
	r.Body, r.ContentLength = io.NopCloser(strings.NewReader("")), 0
	d := checkAllowed(t, c, r)
	defer d.Cleanup()
	if r.Body != http.NoBody {
		t.Fatalf("body %T passed on", r.Body)
	}
}
