package signature

import (
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"
)

// TestBodyRule: what each scheme's signature covers of a body, and the
// declarations about a body that cannot be right.
func TestBodyRule(t *testing.T) {
	md5Of := func(body string) string {
		sum := md5.Sum([]byte(body))
		return base64.StdEncoding.EncodeToString(sum[:])
	}
	payloadHash := sha256Hex("body")
	tests := []struct {
		name        string
		creds       Credentials
		empty       bool
		wantOK      bool
		wantCover   BodyCover
		wantPayload string
		matches     string // a body the rule's digest matches ("" when it has none)
	}{
		{"no hash, no body", Credentials{Scheme: JDCloud2}, true, true, BodyCovered, emptySHA256, ""},
		{"no hash, a body", Credentials{Scheme: SigV4}, false, true, BodyHashed, "", ""},
		{"unsigned payload", Credentials{Scheme: JDCloud3, PayloadHash: UnsignedPayload}, false, true, BodyUnsigned, UnsignedPayload, ""},
		{"unsigned payload, no body", Credentials{Scheme: SigV4, PayloadHash: UnsignedPayload}, true, true, BodyUnsigned, UnsignedPayload, ""},
		{"signed hash", Credentials{Scheme: JDCloud2, PayloadHash: payloadHash}, false, true, BodyDigest, payloadHash, "body"},
		{"signed hash in upper case", Credentials{Scheme: SigV4, PayloadHash: strings.ToUpper(payloadHash)}, false, true, BodyDigest, strings.ToUpper(payloadHash), "body"},
		{"empty body's hash, no body", Credentials{Scheme: JDCloud2, PayloadHash: strings.ToUpper(emptySHA256)}, true, true, BodyCovered, strings.ToUpper(emptySHA256), ""},
		{"another hash, no body", Credentials{Scheme: JDCloud2, PayloadHash: payloadHash}, true, false, 0, "", ""},
		{"hash not hex", Credentials{Scheme: SigV4, PayloadHash: strings.Repeat("g", 64)}, false, false, 0, "", ""},
		{"hash too short", Credentials{Scheme: JDCloud3, PayloadHash: payloadHash[:62]}, false, false, 0, "", ""},
		{"aliyun, no body", Credentials{Scheme: Aliyun}, true, true, BodyCovered, "", ""},
		{"aliyun, empty body's MD5, no body", Credentials{Scheme: Aliyun, ContentMD5: md5Of("")}, true, true, BodyCovered, "", ""},
		{"aliyun, another MD5, no body", Credentials{Scheme: Aliyun, ContentMD5: md5Of("x")}, true, false, 0, "", ""},
		{"aliyun, Content-MD5", Credentials{Scheme: Aliyun, ContentMD5: md5Of("body")}, false, true, BodyDigest, "", "body"},
		{"aliyun, form", Credentials{Scheme: Aliyun, SignsForm: true}, false, true, BodyForm, "", ""},
		{"aliyun, form and Content-MD5", Credentials{Scheme: Aliyun, SignsForm: true, ContentMD5: md5Of("a=1")}, false, true, BodyForm, "", "a=1"},
		{"aliyun, neither", Credentials{Scheme: Aliyun}, false, true, BodyUnsigned, "", ""},
		{"aliyun, Content-MD5 not base64", Credentials{Scheme: Aliyun, ContentMD5: strings.Repeat("!", 24)}, false, false, 0, "", ""},
		{"aliyun, Content-MD5 a SHA-256", Credentials{Scheme: Aliyun, ContentMD5: base64.StdEncoding.EncodeToString(make([]byte, 32))}, false, false, 0, "", ""},
		{"aliyun, Content-MD5 longer", Credentials{Scheme: Aliyun, ContentMD5: base64.StdEncoding.EncodeToString(make([]byte, 300))}, false, false, 0, "", ""},
		{"no scheme", Credentials{}, false, false, 0, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rule, ok := tt.creds.BodyRule(tt.empty)
			if ok != tt.wantOK || rule.Cover != tt.wantCover || rule.PayloadHash != tt.wantPayload {
				t.Fatalf("BodyRule = %+v, %v; want cover %d, payload hash %q, %v", rule, ok, tt.wantCover, tt.wantPayload, tt.wantOK)
			}
			if !ok {
				return
			}
			if tt.matches == "" {
				if rule.NewHash() != nil || !rule.Matches([]byte("anything")) {
					t.Fatal("a rule without a digest has a hash")
				}
				return
			}
			if !rule.Matches([]byte(tt.matches)) || rule.Matches([]byte(tt.matches+"x")) {
				t.Fatalf("Matches does not tell %q from another body", tt.matches)
			}
			h := rule.NewHash()
			h.Write([]byte(tt.matches))
			if got := h.Sum(nil); string(got) != string(rule.Want[:len(got)]) {
				t.Fatalf("NewHash sums %q to %x, want %x", tt.matches, got, rule.Want[:len(got)])
			}
		})
	}
}

// FuzzBodyRule: whatever a client declares about its body, the rule is
// found without a panic, and a digest it accepts is the one declared.
func FuzzBodyRule(f *testing.F) {
	f.Add("1B2M2Y8AsgTpgAmY7PhCfg==", false, true)
	f.Add(emptySHA256, true, false)
	f.Add(UnsignedPayload, false, false)
	f.Add(strings.Repeat("QUFB", 40), false, true)
	f.Add("AAAAAAAAAAAAAAAAAAAAAA=\n", false, false)
	f.Fuzz(func(t *testing.T, declared string, empty, signsForm bool) {
		for _, c := range []Credentials{
			{Scheme: JDCloud2, PayloadHash: declared},
			{Scheme: SigV4, PayloadHash: declared},
			{Scheme: Aliyun, ContentMD5: declared, SignsForm: signsForm},
		} {
			rule, ok := c.BodyRule(empty)
			if !ok || rule.NewHash() == nil {
				continue
			}
			var want []byte
			if c.Scheme == Aliyun {
				want, _ = base64.StdEncoding.DecodeString(declared)
			} else {
				want, _ = hex.DecodeString(declared)
			}
			if h := rule.NewHash(); len(want) != h.Size() || string(rule.Want[:h.Size()]) != string(want) {
				t.Fatalf("%s: declared %q, the rule wants %x", c.Scheme, declared, rule.Want)
			}
		}
	})
}
