package enforcement

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/accessauth/caddy-access-auth/signature"
)

const bodyURL = "http://api.example.com/v1/orders"

func signedPost(t *testing.T, body string, opts ...signature.Option) *http.Request {
	t.Helper()
	return signedRequest(t, http.MethodPost, bodyURL, body, "GOOD", secretOf("GOOD"), signature.JDCloud2, opts...)
}

// checkAllowed runs the check and fails unless it allows the request.
func checkAllowed(t *testing.T, c *Checker, r *http.Request) Decision {
	t.Helper()
	d := check(c, r, "203.0.113.5")
	if d.Reason != Allowed {
		d.Cleanup()
		t.Fatalf("reason = %s, want allowed", d.Reason)
	}
	return d
}

func readBody(t *testing.T, r *http.Request) string {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatalf("reading the checked body: %v", err)
	}
	return string(b)
}

func dirEntries(t *testing.T, dir string) int {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

func TestSmallBodyIsHashedInMemory(t *testing.T) {
	c := newTestChecker(t, testKeys(), nil)
	body := `{"order":42}`
	r := signedPost(t, body)
	r.ContentLength = -1 // as if chunked: the check learns the length
	r.TransferEncoding = []string{"chunked"}
	d := checkAllowed(t, c, r)
	defer d.Cleanup()
	if d.spool != nil {
		t.Fatal("a small body was spooled to disk")
	}
	if r.ContentLength != int64(len(body)) || r.TransferEncoding != nil {
		t.Fatalf("ContentLength %d, TransferEncoding %q: want the buffered length", r.ContentLength, r.TransferEncoding)
	}
	if got := readBody(t, r); got != body {
		t.Fatalf("upstream would read %q, want %q", got, body)
	}
}

func TestLargeBodyIsSpooledAndRemoved(t *testing.T) {
	c := newTestChecker(t, testKeys(), nil)
	body := strings.Repeat("0123456789abcdef", 3<<20/16) // 3 MiB
	r := signedPost(t, body)
	d := checkAllowed(t, c, r)
	if d.spool == nil {
		t.Fatal("a 3 MiB body was not spooled")
	}
	if r.ContentLength != int64(len(body)) {
		t.Fatalf("ContentLength = %d, want %d", r.ContentLength, len(body))
	}
	if got := readBody(t, r); got != body {
		t.Fatalf("upstream would read %d bytes that differ from the %d sent", len(got), len(body))
	}
	r.Body.Close() // as the proxy does; the file stays until Cleanup
	f := d.spool
	if _, err := f.Stat(); err != nil {
		t.Fatalf("the spool file was closed before Cleanup: %v", err)
	}
	d.Cleanup()
	d.Cleanup()
	if n := dirEntries(t, c.cfg.TempDir); n != 0 {
		t.Fatalf("%d files left in the temporary directory after Cleanup", n)
	}
	if _, err := f.Stat(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("the spool file is still open after Cleanup (%v)", err)
	}
}

func TestSpoolFailureOfTheClientIsNotAServerError(t *testing.T) {
	c := newTestChecker(t, testKeys(), nil)
	r := signedPost(t, strings.Repeat("x", 2<<20))
	r.Body = io.NopCloser(io.MultiReader(io.LimitReader(r.Body, 1<<20+100), iotest.ErrReader(io.ErrUnexpectedEOF)))
	d := check(c, r, "203.0.113.5")
	defer d.Cleanup()
	if d.Reason != SignatureMismatch {
		t.Fatalf("reason = %s, want signature_mismatch for a body cut short", d.Reason)
	}
}

func TestBodyLargerThanMaxBody(t *testing.T) {
	tests := []struct {
		name    string
		maxBody int64
		body    string
	}{
		{"in memory", 100, strings.Repeat("x", 101)},
		{"spooled", 2 << 20, strings.Repeat("x", 3<<20)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestChecker(t, testKeys(), func(c *Config) { c.MaxBody = tt.maxBody })
			r := signedPost(t, tt.body)
			r.ContentLength = -1 // unknown length: found out while reading
			d := check(c, r, "203.0.113.5")
			d.Cleanup()
			if d.Reason != BodyTooLarge {
				t.Fatalf("reason = %s, want body_too_large", d.Reason)
			}
			if n := dirEntries(t, c.cfg.TempDir); n != 0 {
				t.Fatalf("%d files left behind", n)
			}
		})
	}
}

func TestDeclaredLengthBeyondMaxBodyIsRefusedUnread(t *testing.T) {
	c := newTestChecker(t, testKeys(), func(c *Config) { c.MaxBody = 1 << 20 })
	r := signedPost(t, "small")
	r.ContentLength = 200 << 20
	r.Body = io.NopCloser(iotest.ErrReader(errors.New("the body must not be read")))
	if d := check(c, r, "203.0.113.5"); d.Reason != BodyTooLarge {
		t.Fatalf("reason = %s, want body_too_large", d.Reason)
	}
}

func TestContentLengthLies(t *testing.T) {
	t.Run("shorter than the body", func(t *testing.T) {
		c := newTestChecker(t, testKeys(), nil)
		body := strings.Repeat("y", 5000)
		r := signedPost(t, body)
		r.ContentLength = 10
		d := checkAllowed(t, c, r)
		defer d.Cleanup()
		if r.ContentLength != int64(len(body)) {
			t.Fatalf("ContentLength = %d, want the %d bytes hashed", r.ContentLength, len(body))
		}
		if readBody(t, r) != body {
			t.Fatal("the body passed on differs from the one hashed")
		}
	})
	t.Run("longer than the body", func(t *testing.T) {
		// net/http reports a body cut short of its Content-Length as
		// io.ErrUnexpectedEOF.
		c := newTestChecker(t, testKeys(), nil)
		r := signedPost(t, "short")
		r.ContentLength = 1000
		r.Body = io.NopCloser(io.MultiReader(strings.NewReader("short"), iotest.ErrReader(io.ErrUnexpectedEOF)))
		if d := check(c, r, "203.0.113.5"); d.Reason != SignatureMismatch {
			t.Fatalf("reason = %s, want signature_mismatch", d.Reason)
		}
	})
}

func TestSignedContentHashStreams(t *testing.T) {
	body := strings.Repeat("streamed ", memoryBodyLimit/9+1) // more than is verified before it goes on
	t.Run("matching body", func(t *testing.T) {
		c := newTestChecker(t, testKeys(), nil)
		r := signedPost(t, body, signature.WithContentSHA256())
		d := checkAllowed(t, c, r)
		defer d.Cleanup()
		if _, ok := r.Body.(*checkedBody); !ok {
			t.Fatalf("the body was not left to stream (%T)", r.Body)
		}
		if readBody(t, r) != body {
			t.Fatal("streamed body differs")
		}
		if f := BodyFailure(r); f != Allowed {
			t.Fatalf("BodyFailure of an intact body = %s", f)
		}
	})
	t.Run("mismatching body", func(t *testing.T) {
		c := newTestChecker(t, testKeys(), nil)
		r := signedPost(t, body, signature.WithContentSHA256())
		r.Body = io.NopCloser(strings.NewReader(strings.ToUpper(body)))
		d := checkAllowed(t, c, r) // the header is signed: the swap shows only at the end
		defer d.Cleanup()
		_, err := io.ReadAll(r.Body)
		if !errors.Is(err, ErrBodyMismatch) {
			t.Fatalf("reading a body that does not match its signed hash: %v, want ErrBodyMismatch", err)
		}
		if reason, ok := ReasonOf(err); !ok || reason != SignatureMismatch {
			t.Fatalf("ReasonOf = %s, %v", reason, ok)
		}
		if _, err := r.Body.Read(make([]byte, 1)); !errors.Is(err, ErrBodyMismatch) {
			t.Fatalf("a second read returned %v", err)
		}
		if f := BodyFailure(r); f != SignatureMismatch {
			t.Fatalf("BodyFailure = %s, want signature_mismatch", f)
		}
	})
	t.Run("upper-case hex", func(t *testing.T) {
		c := newTestChecker(t, testKeys(), nil)
		sum := sha256.Sum256([]byte(body))
		upper := strings.ToUpper(hex.EncodeToString(sum[:]))
		r := signedPost(t, body)
		var d Decision
		cr := signature.Credentials{Scheme: signature.JDCloud2, PayloadHash: upper}
		if hash, reason := c.prepareBody(r, &cr, &signature.Request{}, &d); hash != upper || reason != Allowed {
			t.Fatalf("prepareBody = %q, %s", hash, reason)
		}
		if readBody(t, r) != body {
			t.Fatal("streamed body differs")
		}
	})
	t.Run("longer than max_body", func(t *testing.T) {
		c := newTestChecker(t, testKeys(), func(c *Config) { c.MaxBody = 100 })
		r := signedPost(t, body, signature.WithContentSHA256())
		r.ContentLength = -1
		d := checkAllowed(t, c, r)
		defer d.Cleanup()
		_, err := io.ReadAll(r.Body)
		if reason, _ := ReasonOf(err); reason != BodyTooLarge {
			t.Fatalf("reading past max_body: %v, want ErrBodyTooLarge", err)
		}
	})
}

func TestUnsignedPayload(t *testing.T) {
	body := "not signed"
	c := newTestChecker(t, testKeys(), func(c *Config) { c.AllowUnsignedPayload = true; c.MaxBody = 5 })
	r := signedPost(t, body, signature.WithUnsignedPayload())
	r.ContentLength = -1
	d := checkAllowed(t, c, r)
	defer d.Cleanup()
	_, err := io.ReadAll(r.Body)
	if !errors.Is(err, ErrBodyTooLarge) {
		t.Fatalf("an unsigned body past max_body read with %v", err)
	}

	c = newTestChecker(t, testKeys(), func(c *Config) { c.AllowUnsignedPayload = true })
	r = signedPost(t, body, signature.WithUnsignedPayload())
	d = checkAllowed(t, c, r)
	defer d.Cleanup()
	if readBody(t, r) != body {
		t.Fatal("unsigned body altered")
	}
}

func TestReasonOf(t *testing.T) {
	tests := []struct {
		err  error
		want Reason
		ok   bool
	}{
		{ErrBodyMismatch, SignatureMismatch, true},
		{ErrBodyTooLarge, BodyTooLarge, true},
		{&http.MaxBytesError{Limit: 10}, BodyTooLarge, true},
		{io.ErrUnexpectedEOF, Allowed, false},
		{nil, Allowed, false},
	}
	for _, tt := range tests {
		if got, ok := ReasonOf(tt.err); got != tt.want || ok != tt.ok {
			t.Errorf("ReasonOf(%v) = %s, %v; want %s, %v", tt.err, got, ok, tt.want, tt.ok)
		}
	}
}

func TestReadUpTo(t *testing.T) {
	data := bytes.Repeat([]byte("z"), 3000)
	for _, limit := range []int{1, 512, 2999, 3000, 3001, 10000} {
		got, err := readUpTo(iotest.OneByteReader(bytes.NewReader(data)), nil, limit)
		if err != nil || len(got) != min(limit, len(data)) {
			t.Fatalf("limit %d: %d bytes, %v", limit, len(got), err)
		}
	}
}

// TestSmallBodyWithSignedHashIsVerifiedFirst: a body of at most 1 MiB whose
// hash is signed in a header is read and verified before the request goes
// on, and passed on as the verified copy; a larger one streams.
func TestSmallBodyWithSignedHashIsVerifiedFirst(t *testing.T) {
	tests := []struct {
		name     string
		size     int
		tamper   bool
		want     Reason
		streamed bool
	}{
		{"intact", memoryBodyLimit, false, Allowed, false},
		{"tampered", memoryBodyLimit, true, SignatureMismatch, false},
		{"larger than 1 MiB, tampered", memoryBodyLimit + 1, true, Allowed, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestChecker(t, testKeys(), nil)
			body := strings.Repeat("v", tt.size)
			r := signedPost(t, body, signature.WithContentSHA256())
			if tt.tamper {
				body = strings.Repeat("w", tt.size)
				r.Body = io.NopCloser(strings.NewReader(body))
			}
			d := check(c, r, "203.0.113.5")
			defer d.Cleanup()
			if d.Reason != tt.want {
				t.Fatalf("reason = %s, want %s", d.Reason, tt.want)
			}
			if d.Reason != Allowed {
				return
			}
			if _, streamed := r.Body.(*checkedBody); streamed != tt.streamed {
				t.Fatalf("body passed on as %T", r.Body)
			}
			if !tt.streamed && readBody(t, r) != body {
				t.Fatal("the body passed on differs")
			}
		})
	}
}
