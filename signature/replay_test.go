package signature

import (
	"encoding/base64"
	"strings"
	"testing"
)

// The request check keys replay protection on Credentials.Nonce (or, for
// SigV4, Signature). These tests re-send signed requests written another way
// on the wire: whatever still verifies must carry the same key.

// signedReceived is a request signed with scheme and nonce (and a body, so
// that the content hash and Content-MD5 are sent), as the gateway receives it.
func signedReceived(t *testing.T, scheme Scheme, nonce string) (*Request, string) {
	t.Helper()
	req := newRequest(t, "PUT", "/v1/items", "a=1", []byte(`{"a":1}`))
	req.Header.Set("Content-Type", "application/json")
	if err := Sign(req, scheme, "ak", "sk", WithNonce(nonce), WithContentSHA256()); err != nil {
		t.Fatal(err)
	}
	return received(t, req)
}

// TestReencodedNonceIsTheSameNonce: a nonce re-spaced or padded still
// verifies where the scheme's canonical form hides the change, and then
// reads as the nonce the signature covered; where the form shows it, the
// signature fails.
func TestReencodedNonceIsTheSameNonce(t *testing.T) {
	tests := []struct {
		scheme         Scheme
		header         string
		signed, resent string
		verifies       bool
	}{
		{JDCloud2, jdNonceKey, "abc def", "abc  def", true},
		{JDCloud2, jdNonceKey, "abc def", " abc   def\t", true},
		{JDCloud2, jdNonceKey, "abc  def", "abc def", true},
		{JDCloud2, jdNonceKey, "abc def", "abc\tdef", false},
		{JDCloud3, jdNonceKey, "abc def", "abc  def", false},
		{JDCloud3, jdNonceKey, "abc def", " abc def\t", true},
		{Aliyun, caNonceKey, "abc def", "abc  def", false},
		{Aliyun, caNonceKey, "abc def", "\tabc def ", true},
	}
	for _, tt := range tests {
		t.Run(tt.scheme.String()+" "+tt.resent, func(t *testing.T) {
			r, bodyHash := signedReceived(t, tt.scheme, tt.signed)
			original, ok := verifyReceived(t, r, bodyHash, "sk")
			if !ok {
				t.Fatal("the request as signed does not verify")
			}
			want := original.Nonce
			r.Header.Set(tt.header, tt.resent)
			resent, ok := verifyReceived(t, r, bodyHash, "sk")
			if ok != tt.verifies {
				t.Fatalf("re-sent with nonce %q: verified %v, want %v", tt.resent, ok, tt.verifies)
			}
			if ok && resent.Nonce != want {
				t.Fatalf("re-sent with nonce %q verifies but reads as nonce %q, the original as %q", tt.resent, resent.Nonce, want)
			}
		})
	}
}

// TestRepeatedCredentialHeaders: a header the check reads once, sent on two
// lines (its value split at a comma, as a signature over "A,B" still
// verifies, or repeated), is malformed credentials.
func TestRepeatedCredentialHeaders(t *testing.T) {
	single := map[Scheme][]string{
		JDCloud2: {"Authorization", jdDateKey, jdNonceKey, jdContentKey},
		JDCloud3: {"Authorization", jdDateKey, jdNonceKey, jdContentKey},
		SigV4:    {"Authorization", amzDateKey, amzContentKey},
		Aliyun:   {caKeyKey, caSignatureKey, caSignatureMethodKey, caTimestampKey, caNonceKey, caSignatureHeadersKey, contentMD5Key},
	}
	for _, scheme := range []Scheme{JDCloud2, JDCloud3, SigV4, Aliyun} {
		for _, name := range single[scheme] {
			for _, resend := range []struct {
				how   string
				lines func(v string) []string
			}{
				{"repeated", func(v string) []string { return []string{v, v} }},
				{"split", func(v string) []string {
					if first, second, ok := strings.Cut(v, ","); ok { // the canonical headers put the comma back
						return []string{first, second}
					}
					return []string{v[:len(v)/2], v[len(v)/2:]}
				}},
			} {
				t.Run(scheme.String()+" "+name+" "+resend.how, func(t *testing.T) {
					r, _ := signedReceived(t, scheme, "A,B")
					var c Credentials
					if err := Parse(r.Header, AllSchemes, &c); err != nil {
						t.Fatalf("as signed: %v", err)
					}
					v := r.Header.Get(name)
					if v == "" {
						t.Fatalf("the signed request has no %s", name)
					}
					r.Header[name] = resend.lines(v)
					if err := Parse(r.Header, AllSchemes, &c); err != ErrMalformedCredentials {
						t.Fatalf("%s on two lines %q: Parse = %v, want %v", name, r.Header[name], err, ErrMalformedCredentials)
					}
				})
			}
		}
	}
}

// TestAliyunSignatureHasOneEncoding: 32 bytes take 43 Base64 digits and
// '=', whose last digit carries two bits of padding. Set, they decode to
// the same signature under lenient decoding; the scheme refuses them.
func TestAliyunSignatureHasOneEncoding(t *testing.T) {
	r, bodyHash := signedReceived(t, Aliyun, "n")
	if _, ok := verifyReceived(t, r, bodyHash, "sk"); !ok {
		t.Fatal("the request as signed does not verify")
	}
	sig := r.Header.Get(caSignatureKey)
	const digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	last := strings.IndexByte(digits, sig[42])
	for pad := 1; pad < 4; pad++ {
		other := sig[:42] + string(digits[last|pad]) + "="
		if _, err := base64.StdEncoding.DecodeString(other); err != nil {
			t.Fatalf("%q: lenient decoding refuses it (%v): the test no longer shows anything", other, err)
		}
		r.Header.Set(caSignatureKey, other)
		var c Credentials
		if err := Parse(r.Header, AllSchemes, &c); err != ErrMalformedCredentials {
			t.Errorf("signature %q re-encoded as %q: Parse = %v, want %v", sig, other, err, ErrMalformedCredentials)
		}
	}
}

func TestCanonicalValue(t *testing.T) {
	tests := []struct {
		value     string
		collapse  bool
		want      string
		allocates bool // only to collapse spaces
	}{
		{"abc", true, "abc", false},
		{" a b ", true, "a b", false},
		{"a  b   c", true, "a b c", true},
		{"a  b", false, "a  b", false},
		{"\ta \t b\v", true, "a \t b", false},
		{"  ", true, "", false},
	}
	for _, tt := range tests {
		if got := canonicalValue(tt.value, tt.collapse); got != tt.want {
			t.Errorf("canonicalValue(%q, %v) = %q, want %q", tt.value, tt.collapse, got, tt.want)
		}
		if got := string(appendHeaderValue(nil, []string{tt.value}, tt.collapse)); got != tt.want {
			t.Errorf("appendHeaderValue(%q, %v) = %q, want %q", tt.value, tt.collapse, got, tt.want)
		}
		if !tt.allocates && !raceEnabled {
			if n := testing.AllocsPerRun(10, func() { canonicalValue(tt.value, tt.collapse) }); n != 0 {
				t.Errorf("canonicalValue(%q, %v) allocates %v times", tt.value, tt.collapse, n)
			}
		}
	}
}
