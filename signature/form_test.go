package signature

import (
	"crypto/hmac"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// macOf is the MAC the verifier computes over stringToSign for c with secret.
func macOf(t *testing.T, c *Credentials, secret, stringToSign string) [32]byte {
	t.Helper()
	var key *hmacKey
	switch impl := implOf(c.Scheme).(type) {
	case *jdcloud:
		key = impl.auth.signingKey(c.Scheme, NewSecret(secret), c)
	case *sigv4:
		key = impl.auth.signingKey(c.Scheme, NewSecret(secret), c)
	case aliyun:
		key = NewSecret(secret).plainKey()
	default:
		t.Fatalf("no key for scheme %s", c.Scheme)
	}
	sc := getScratch()
	defer putScratch(sc)
	return key.sum([]byte(stringToSign), sc)
}

// TestFormsAreWhatIsSignedAndVerified signs with each scheme, then checks
// that the string to sign of Forms' documented form is the one Sign signed
// and MACs to the signature Verify accepts, and that a request whose path
// changed on the way shows the server's path in its canonical request.
func TestFormsAreWhatIsSignedAndVerified(t *testing.T) {
	const apiKey, secret = "AK0123456789", "SK0123456789abcdef"
	for _, tc := range []struct {
		scheme   Scheme
		pathLine string // the canonical request's line of the path /v1/orders
	}{
		{JDCloud2, "/v1/orders"},
		{JDCloud3, "/v1/orders"},
		{SigV4, "/v1/orders"},
		{Aliyun, "/v1/orders?page=2"},
	} {
		t.Run(tc.scheme.String(), func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "http://api.example.com/v1/orders?page=2", nil)
			var signed Form
			if err := Sign(req, tc.scheme, apiKey, secret, WithTime(time.Now()), WithSignedForm(&signed)); err != nil {
				t.Fatal(err)
			}
			if signed.Name != FormDocumented || signed.CanonicalRequest == "" || signed.StringToSign == "" {
				t.Fatalf("signed form = %+v", signed)
			}
			if strings.Contains(signed.CanonicalRequest+signed.StringToSign, secret) {
				t.Fatal("the signed form holds the secret")
			}
			r := &Request{Method: req.Method, Host: req.Host, Path: req.URL.EscapedPath(), RawQuery: req.URL.RawQuery, Header: req.Header}
			var c Credentials
			if err := Parse(r.Header, AllSchemes, &c); err != nil {
				t.Fatal(err)
			}
			if !Verify(r, &c, NewSecret(secret), emptySHA256) {
				t.Fatal("the signed request does not verify")
			}
			forms := Forms(r, &c, emptySHA256)
			if len(forms) != 1 || forms[0] != signed {
				t.Fatalf("Forms = %+v, signed %+v", forms, signed)
			}
			if mac := macOf(t, &c, secret, forms[0].StringToSign); !hmac.Equal(mac[:], c.signature[:]) {
				t.Fatal("the string to sign of Forms does not MAC to the signature")
			}
			if !hasLine(signed.CanonicalRequest, tc.pathLine) {
				t.Fatalf("signed canonical request has no line %q:\n%s", tc.pathLine, signed.CanonicalRequest)
			}

			r.Path = "/v2/orders" // rewritten on the way
			moved := Forms(r, &c, emptySHA256)
			if len(moved) == 0 || moved[0].Name != FormDocumented {
				t.Fatalf("Forms of the moved request = %+v", moved)
			}
			serverLine := strings.Replace(tc.pathLine, "/v1/", "/v2/", 1)
			if !hasLine(moved[0].CanonicalRequest, serverLine) || hasLine(moved[0].CanonicalRequest, tc.pathLine) {
				t.Fatalf("canonical request of the moved request has not the line %q:\n%s", serverLine, moved[0].CanonicalRequest)
			}
			if moved[0].StringToSign == signed.StringToSign {
				t.Fatal("the moved request has the signed string to sign")
			}
		})
	}
}

// TestFormsTriesOfVerify checks that Forms lists the forms Verify tries:
// a path that canonicalises to other text gives the as-sent form too, and
// a SigV4 request of another service than S3 the S3 form last.
func TestFormsTriesOfVerify(t *testing.T) {
	for _, tc := range []struct {
		name   string
		scheme Scheme
		url    string
		want   []string // names, in order
	}{
		{"jdcloud2 canonical path", JDCloud2, "http://h/a/b?x=1", []string{FormDocumented}},
		{"jdcloud2 double slash", JDCloud2, "http://h/a//b?x=1", []string{FormDocumented, FormAsSent}},
		{"jdcloud3 unsorted query", JDCloud3, "http://h/a?y=1&x=2", []string{FormDocumented, FormAsSent}},
		{"sigv4 plain", SigV4, "http://h/a?x=1", []string{FormDocumented}},
		{"sigv4 escaped path and unsorted query", SigV4, "http://h/a%20b?y=1&x=2", []string{FormDocumented, FormAsSent, FormS3}},
		{"aliyun plain", Aliyun, "http://h/a?x=1", []string{FormDocumented}},
		{"aliyun escaped path", Aliyun, "http://h/a%20b", []string{FormDocumented, FormAsSent}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, tc.url, nil)
			if err := Sign(req, tc.scheme, "AK", "SK"); err != nil {
				t.Fatal(err)
			}
			r := &Request{Method: req.Method, Host: req.Host, Path: req.URL.EscapedPath(), RawQuery: req.URL.RawQuery, Header: req.Header}
			var c Credentials
			if err := Parse(r.Header, AllSchemes, &c); err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, f := range Forms(r, &c, emptySHA256) {
				names = append(names, f.Name)
			}
			if strings.Join(names, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("forms %v, want %v", names, tc.want)
			}
		})
	}
	if forms := Forms(&Request{}, &Credentials{}, ""); forms != nil {
		t.Fatalf("Forms of unparsed credentials = %v", forms)
	}
}

func hasLine(text, line string) bool {
	for _, l := range strings.Split(text, "\n") {
		if l == line {
			return true
		}
	}
	return false
}
