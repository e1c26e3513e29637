package signature

import (
	"net/http"
	"testing"
)

func TestSniff(t *testing.T) {
	jd := "JDCLOUD2-HMAC-SHA256 Credential=garbage"
	tests := []struct {
		name    string
		header  http.Header
		allowed Schemes
		want    Scheme
	}{
		{"jdcloud2", http.Header{"Authorization": {jd}}, AllSchemes, JDCloud2},
		{"jdcloud3", http.Header{"Authorization": {"JDCLOUD3-HMAC-SHA256"}}, AllSchemes, JDCloud3},
		{"sigv4", http.Header{"Authorization": {"AWS4-HMAC-SHA256 x"}}, AllSchemes, SigV4},
		{"aliyun key", http.Header{"X-Ca-Key": {"k"}}, AllSchemes, Aliyun},
		{"aliyun signature", http.Header{"X-Ca-Signature": {"s"}}, AllSchemes, Aliyun},
		{"not allowed", http.Header{"Authorization": {jd}}, Schemes(0).With(SigV4), 0},
		{"the first allowed that shows", http.Header{"Authorization": {jd}, "X-Ca-Key": {"k"}}, Schemes(0).With(Aliyun).With(JDCloud2), JDCloud2},
		{"another scheme", http.Header{"Authorization": {"Bearer x"}}, AllSchemes, 0},
		{"leading space", http.Header{"Authorization": {" " + jd}}, AllSchemes, 0},
		{"nothing", http.Header{}, AllSchemes, 0},
	}
	for _, tt := range tests {
		if got := Sniff(tt.header, tt.allowed); got != tt.want {
			t.Errorf("%s: Sniff = %s, want %s", tt.name, got, tt.want)
		}
	}
}

func TestIsCredentialHeader(t *testing.T) {
	for name, want := range map[string]bool{
		"Authorization": true, "X-Jdcloud-Nonce": true, "x-jdcloud-date": true, "X-Amz-Date": true,
		"X-Ca-Signature": true, "X-CA-KEY": true, "Content-Type": false, "Content-Md5": false, "X-Api-Group": false, "X-Ca": false,
	} {
		if got := IsCredentialHeader(name); got != want {
			t.Errorf("IsCredentialHeader(%q) = %v", name, got)
		}
	}
}

func TestInScope(t *testing.T) {
	scoped := Credentials{Scheme: SigV4, Region: "cn-north-1", Service: "apigateway"}
	tests := []struct {
		name            string
		creds           Credentials
		region, service string
		want            bool
	}{
		{"any", scoped, "", "", true},
		{"pinned alike", scoped, "cn-north-1", "apigateway", true},
		{"another region", scoped, "cn-south-1", "", false},
		{"another service", scoped, "", "s3", false},
		{"jdcloud scope", Credentials{Scheme: JDCloud3, Region: "r", Service: "s"}, "r", "x", false},
		{"aliyun has no scope", Credentials{Scheme: Aliyun}, "cn-north-1", "apigateway", true},
	}
	for _, tt := range tests {
		if got := tt.creds.InScope(tt.region, tt.service); got != tt.want {
			t.Errorf("%s: InScope = %v", tt.name, got)
		}
	}
}

// TestSchemeList: the list the configuration, the CLI and their messages
// take, in the order of the schemes.
func TestSchemeList(t *testing.T) {
	if got, want := ExpectedSchemes(), "jdcloud2, jdcloud3, sigv4 or aliyun"; got != want {
		t.Errorf("ExpectedSchemes = %q, want %q", got, want)
	}
	if DefaultScheme.String() != "jdcloud2" {
		t.Errorf("DefaultScheme = %s", DefaultScheme)
	}
	for _, tt := range []struct {
		set  Schemes
		want Scheme
	}{{AllSchemes, JDCloud2}, {Schemes(0).With(Aliyun).With(SigV4), SigV4}, {0, 0}} {
		if got := tt.set.First(); got != tt.want {
			t.Errorf("%#x.First() = %s, want %s", uint8(tt.set), got, tt.want)
		}
	}
	for s := Scheme(1); int(s) < NumSchemes; s++ {
		if !AllSchemes.Has(s) || implOf(s) == nil {
			t.Errorf("%s: not in AllSchemes or not registered", s)
		}
	}
	if AllSchemes.Has(Scheme(NumSchemes)) || AllSchemes.Has(0) {
		t.Error("AllSchemes holds more than the schemes")
	}
}
