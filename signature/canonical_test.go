package signature

import (
	"net/textproto"
	"strings"
	"testing"
)

// The fast paths of the canonicalisers must write exactly what the general
// code (or the standard library) writes.

func TestCanonicalKey(t *testing.T) {
	for _, name := range []string{
		"", "host", "x-jdcloud-date", "X-JDCLOUD-NONCE", "content-type", "-x", "x--y", "x-", "a_b", "a.b~c",
		"with space", "tab\there", "ünï", "x\x00y", "a:b", strings.Repeat("ab-", maxKeyOnStack/3),
	} {
		checkCanonicalKey(t, name)
	}
}

func FuzzCanonicalKey(f *testing.F) {
	f.Add("x-jdcloud-date")
	f.Add("X-Amz-Content-SHA256")
	f.Add("a b")
	f.Fuzz(func(t *testing.T, name string) {
		if len(name) <= maxKeyOnStack {
			checkCanonicalKey(t, name)
		}
	})
}

func checkCanonicalKey(t *testing.T, name string) {
	t.Helper()
	var buf [maxKeyOnStack]byte
	if got, want := string(canonicalKey(&buf, name)), textproto.CanonicalMIMEHeaderKey(name); got != want {
		t.Errorf("canonicalKey(%q) = %q, textproto says %q", name, got, want)
	}
	want := []byte(name)
	for i, c := range want {
		if 'A' <= c && c <= 'Z' {
			want[i] = c + 'a' - 'A'
		}
	}
	if got := appendLower([]byte("x"), name); string(got) != "x"+string(want) {
		t.Errorf("appendLower(%q) = %q, want %q", name, got[1:], want)
	}
}
