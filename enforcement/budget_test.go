package enforcement

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/accessauth/caddy-access-auth/signature"
)

// TestBodyBudget: a body read before its signature is checked holds its
// share of the node's budget until Cleanup; one that does not fit is
// refused as overloaded, before or while it is read; bodies whose hash is
// signed in a header take nothing.
func TestBodyBudget(t *testing.T) {
	const held = 3 << 20 // a spooled body already in the budget
	tests := []struct {
		name          string
		maxBytes      int64
		size          int
		unknownLength bool
		signedHash    bool
		want          Reason
		refused       uint64
	}{
		{name: "small body that fits", maxBytes: held + 1000, size: 1000, want: Allowed},
		{name: "declared length beyond the bytes left", maxBytes: held + 1000, size: 1001, want: Overloaded, refused: 1},
		{name: "unknown length that fits", maxBytes: held + leaseStep, size: leaseStep, unknownLength: true, want: Allowed},
		{name: "unknown length that outgrows the bytes left", maxBytes: held + leaseStep, size: leaseStep + 1, unknownLength: true, want: Overloaded, refused: 1},
		{name: "signed content hash: not read before the signature", maxBytes: held, size: 2 << 20, signedHash: true, want: Allowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			budget := NewBodyBudget(tt.maxBytes, 2)
			c := newTestChecker(t, testKeys(), func(c *Config) { c.Bodies = budget })
			first := checkAllowed(t, c, signedPost(t, strings.Repeat("f", held)))
			if bytes, bodies := budget.InUse(); bytes != held || bodies != 1 {
				t.Fatalf("after a %d-byte body: %d bytes and %d bodies in use", held, bytes, bodies)
			}

			body := strings.Repeat("b", tt.size)
			var opts []signature.Option
			if tt.signedHash {
				opts = append(opts, signature.WithContentSHA256())
			}
			r := signedPost(t, body, opts...)
			if tt.unknownLength {
				r.ContentLength = -1
			}
			d := check(c, r, "203.0.113.5")
			if d.Reason != tt.want || budget.Refused() != tt.refused {
				t.Fatalf("reason %s, %d refused; want %s, %d", d.Reason, budget.Refused(), tt.want, tt.refused)
			}
			if d.Reason == Allowed && readBody(t, r) != body {
				t.Fatal("the body passed on differs")
			}
			d.Cleanup()
			first.Cleanup()
			first.Cleanup()
			if bytes, bodies := budget.InUse(); bytes != 0 || bodies != 0 {
				t.Fatalf("after Cleanup: %d bytes and %d bodies in use", bytes, bodies)
			}
			if n := dirEntries(t, c.cfg.TempDir); n != 0 {
				t.Fatalf("%d files left behind", n)
			}
		})
	}
}

// TestBodyBudgetCountsBodies: beyond its count of bodies the budget refuses
// a body of any size unread, and an Alibaba form (read before its
// signature) counts as one.
func TestBodyBudgetCountsBodies(t *testing.T) {
	budget := NewBodyBudget(DefaultBodyBufferBytes, 2)
	c := newTestChecker(t, testKeys(), func(c *Config) { c.Bodies = budget })
	form := checkAllowed(t, c, signedAliyun(t, "application/x-www-form-urlencoded", "a=1"))
	defer form.Cleanup()
	small := checkAllowed(t, c, signedPost(t, "x"))
	defer small.Cleanup()

	r := signedPost(t, "y")
	r.Body = io.NopCloser(iotest.ErrReader(errors.New("a body beyond the budget must not be read")))
	if d := check(c, r, "203.0.113.5"); d.Reason != Overloaded {
		t.Fatalf("a third body: reason = %s, want overloaded", d.Reason)
	}
	if _, bodies := budget.InUse(); bodies != 2 {
		t.Fatalf("%d bodies in use, want 2", bodies)
	}
	budget.SetLimits(DefaultBodyBufferBytes, 3)
	d := checkAllowed(t, c, signedPost(t, "y"))
	d.Cleanup()
}
