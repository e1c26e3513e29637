package signature

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/textproto"
	"slices"
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

// TestLookedHeadersSignAlike: the canonical headers taken from what Parse
// looked up are those a fresh lookup in the request's headers finds.
func TestLookedHeadersSignAlike(t *testing.T) {
	const auth = "JDCLOUD2-HMAC-SHA256 Credential=ak/20190214/cn-north-1/test/jdcloud2_request, Signature=" + emptySHA256 + ", SignedHeaders="
	tests := []struct {
		name   string
		header http.Header
	}{
		{"canonical keys", http.Header{
			"Authorization": {auth + "content-type;host;x-jdcloud-date;x-jdcloud-nonce"}, "Content-Type": {"application/json"},
			"X-Jdcloud-Date": {"20190214T104514Z"}, "X-Jdcloud-Nonce": {"n"}}},
		{"lower-case keys of a map built by hand", http.Header{
			"Authorization":  {auth + "x-jdcloud-content-sha256;x-jdcloud-date;x-jdcloud-nonce"},
			"x-jdcloud-date": {" 20190214T104514Z "}, "x-jdcloud-nonce": {"n"}, "x-jdcloud-content-sha256": {emptySHA256}}},
		{"values with spaces to trim and collapse", http.Header{
			"Authorization":  {auth + "x-jdcloud-date;x-jdcloud-nonce"},
			"X-Jdcloud-Date": {" 20190214T104514Z"}, "X-Jdcloud-Nonce": {" n2  n3 "}}},
		{"names signed in upper case as well", http.Header{
			"Authorization":  {auth + " X-Jdcloud-Nonce;x-jdcloud-content-sha256;x-jdcloud-date;x-jdcloud-nonce;X-JDCLOUD-DATE"},
			"X-Jdcloud-Date": {"20190214T104514Z"}, "X-Jdcloud-Nonce": {"n"}, "X-Jdcloud-Content-Sha256": {"UNSIGNED-PAYLOAD"}}},
		{"content hash signed but not sent", http.Header{
			"Authorization":  {auth + "x-jdcloud-content-sha256;x-jdcloud-date;x-jdcloud-nonce"},
			"X-Jdcloud-Date": {"20190214T104514Z"}, "X-Jdcloud-Nonce": {"n"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Credentials
			if err := Parse(tt.header, AllSchemes, &c); err != nil {
				t.Fatal(err)
			}
			r := &Request{Method: "GET", Host: "api.example.com", Path: "/", Header: tt.header}
			j := implOf(JDCloud2).(*jdcloud)
			sc := &scratch{}
			looked, _ := j.appendCanonicalRequest(nil, r, &c, emptySHA256, false, sc)
			c.looked = [len(c.looked)]lookedHeader{}
			fresh, _ := j.appendCanonicalRequest(nil, r, &c, emptySHA256, false, sc)
			if string(looked) != string(fresh) {
				t.Errorf("canonical request from the looked-up headers\n%s\nwant\n%s", looked, fresh)
			}
		})
	}
}

var canonicalQueries = []string{
	"", "a=1", "b=2&a=1", "pageNumber=1&pageSize=20&filters.1.name=status&filters.1.values.1=running",
	"a", "a=", "a=b=c", "=x&y", "&&", "&a=1&", "a-b=1&a=2&a.b=3", "x=1&x=&x=0", "a=%41&%61=b", "a+b=c d",
	"%zz=%&o=%", "~=_&-=.", "中文=值", "a=1&a=1",
}

func TestCanonicalQuery(t *testing.T) {
	for _, q := range canonicalQueries {
		checkCanonicalQuery(t, q)
	}
}

func FuzzCanonicalQuery(f *testing.F) {
	for _, q := range canonicalQueries {
		f.Add(q)
	}
	f.Fuzz(checkCanonicalQuery)
}

// checkCanonicalQuery compares appendCanonicalQuery (plain parameters
// copied as sent in one pass) with the documented form written plainly:
// every name and value normalized, empty names dropped, sorted.
func checkCanonicalQuery(t *testing.T, rawQuery string) {
	t.Helper()
	var params [][2]string
	for _, pair := range strings.Split(rawQuery, "&") {
		name, value, _ := strings.Cut(pair, "=")
		if name != "" {
			params = append(params, [2]string{normalized(name), normalized(value)})
		}
	}
	slices.SortFunc(params, func(a, b [2]string) int {
		return cmp.Or(strings.Compare(a[0], b[0]), strings.Compare(a[1], b[1]))
	})
	pairs := make([]string, len(params))
	for i, p := range params {
		pairs[i] = p[0] + "=" + p[1]
	}
	want := strings.Join(pairs, "&")
	if got := appendCanonicalQuery([]byte("x"), rawQuery, &scratch{}); string(got) != "x"+want {
		t.Errorf("canonical query of %q = %q, want %q", rawQuery, got[1:], want)
	}
}

func normalized(s string) string { return string(appendNormalized(nil, s, false)) }

// TestLowerHex writes every byte value through lowerHex.
func TestLowerHex(t *testing.T) {
	for first := 0; first < 256; first += sha256.Size {
		var sum [sha256.Size]byte
		for i := range sum {
			sum[i] = byte(first + i)
		}
		if got, want := lowerHex(&sum), hex.EncodeToString(sum[:]); string(got[:]) != want {
			t.Errorf("lowerHex = %s, want %s", got[:], want)
		}
	}
}

func TestCanonicalPath(t *testing.T) {
	for _, path := range []string{
		"", "/", "//", "/v1/orders/1", "/v1//orders", "v1/orders", "/a+b", "/a%20b", "/a%2Fb", "/a b", "/~user/x.y_z-w",
		"/trailing/", "/%zz", "/%", "/ünï", "/a/./b", "/a/../b", "/a:b", "/a;b=c", "/v1/i-8f3ab2:describe", "/a/:/b", "/a/%2F/b", "/a/%2Fb", "/a%2F/b", "/a/+/b",
	} {
		checkCanonicalPath(t, path)
	}
}

// FuzzCanonicalPath: the path already in canonical form is written as the
// general normalisation writes it.
func FuzzCanonicalPath(f *testing.F) {
	f.Add("/v1/orders/1")
	f.Add("/v1//orders")
	f.Add("/a%2Fb+c")
	f.Fuzz(checkCanonicalPath)
}

func checkCanonicalPath(t *testing.T, path string) {
	got, want := appendCanonicalPath(nil, path), appendNormalizedPath(nil, path)
	if string(got) != string(want) {
		t.Fatalf("appendCanonicalPath(%q) = %q, the general normalisation %q", path, got, want)
	}
	if n := canonicalPrefix(path); n > 0 && string(want[:min(n, len(want))]) != path[:n] { // it may stop early, never claim too much
		t.Fatalf("canonicalPrefix(%q) = %d, but normalised it is %q", path, n, want)
	}
}
