package enforcement

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/accessauth/caddy-access-auth/signature"
)

// TestReasonTable pins the table of docs/request-check.md: codes, statuses and messages are
// what clients match on.
func TestReasonTable(t *testing.T) {
	tests := []struct {
		reason  Reason
		code    int
		status  string
		name    string
		message string
	}{
		{MissingCredentials, 401, "ACCESS_ERROR", "missing_credentials", "lack of header authorization"},
		{MalformedCredentials, 401, "ACCESS_ERROR", "malformed_credentials", "lack of credential in the header authorization"},
		{MissingDate, 401, "ACCESS_ERROR", "missing_date", "lack of header x-jdcloud-date"},
		{MissingSignedHeaders, 401, "ACCESS_ERROR", "missing_signed_headers", "lack of header signedHeaders"},
		{MissingNonce, 401, "ACCESS_ERROR", "missing_nonce", "lack of header x-jdcloud-nonce"},
		{InvalidKey, 401, "ACCESS_ERROR", "invalid_key", "Invalid accessKey"},
		{SignatureMismatch, 401, "ACCESS_ERROR", "signature_mismatch", "sign result is not same"},
		{DateOutOfRange, 401, "ACCESS_ERROR", "date_out_of_range", "request date is out of the allowed range"},
		{ReplayedNonce, 401, "ACCESS_ERROR", "replayed_nonce", "nonce has been used"},
		{NotAuthorized, 403, "HTTP_FORBIDDEN", "not_authorized", "access key is not authorized for this API group"},
		{IPNotAllowed, 403, "HTTP_FORBIDDEN", "ip_not_allowed", "Your IP address is not allowed"},
		{BodyTooLarge, 413, "HTTP_REQUEST_ENTITY_TOO_LARGE", "body_too_large", "Payload too large"},
		{RateLimited, 429, "HTTP_TOO_MANY_REQUESTS", "rate_limited", "request rate limit exceeded"},
		{QuotaExceeded, 429, "HTTP_TOO_MANY_REQUESTS", "quota_exceeded", "request quota exceeded"},
		{StoreUnavailable, 503, "HTTP_SERVICE_UNAVAILABLE", "store_unavailable", "store unavailable"},
		{Overloaded, 503, "HTTP_SERVICE_UNAVAILABLE", "overloaded", "server is busy"},
	}
	if len(tests) != len(reasons)-1 {
		t.Fatalf("%d reasons tested of %d", len(tests), len(reasons)-1)
	}
	for _, tt := range tests {
		r := tt.reason
		if r.HTTPStatus() != tt.code || r.Status() != tt.status || r.String() != tt.name || r.Message() != tt.message {
			t.Errorf("%s: got %d %s %q %q", tt.name, r.HTTPStatus(), r.Status(), r.String(), r.Message())
		}
	}
	if Allowed.String() != "allowed" || Reason(200).String() != "reason(200)" {
		t.Errorf("Allowed = %s, Reason(200) = %s", Allowed, Reason(200))
	}
}

func TestMessageForNamesTheSchemesHeaders(t *testing.T) {
	tests := []struct {
		reason Reason
		scheme signature.Scheme
		want   string
	}{
		{MissingDate, signature.JDCloud3, "lack of header x-jdcloud-date"},
		{MissingDate, signature.SigV4, "lack of header x-amz-date"},
		{MissingDate, signature.Aliyun, "lack of header x-ca-timestamp"},
		{MissingNonce, signature.Aliyun, "lack of header x-ca-nonce"},
		{MissingNonce, signature.JDCloud2, "lack of header x-jdcloud-nonce"},
		{SignatureMismatch, signature.Aliyun, "sign result is not same"},
	}
	for _, tt := range tests {
		if got := tt.reason.MessageFor(tt.scheme); got != tt.want {
			t.Errorf("%s.MessageFor(%s) = %q, want %q", tt.reason, tt.scheme, got, tt.want)
		}
	}
}

func writeDenial(t *testing.T, d Decision, requestID string) (*httptest.ResponseRecorder, DenialBody) {
	t.Helper()
	w := httptest.NewRecorder()
	WriteDenial(w, d, requestID)
	var body DenialBody
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("denial body %q is not JSON: %v", w.Body, err)
	}
	return w, body
}

func TestWriteDenial(t *testing.T) {
	for r := MissingCredentials; r <= StoreUnavailable; r++ {
		for s := signature.Scheme(0); int(s) < numSchemes; s++ {
			d := Decision{Reason: r, Identity: Identity{Scheme: s}, fallbackScheme: signature.SigV4}
			w, body := writeDenial(t, d, "req-1")
			if w.Code != r.HTTPStatus() || w.Header().Get("Content-Type") != "application/json" {
				t.Fatalf("%s/%s: status %d, content type %q", r, s, w.Code, w.Header().Get("Content-Type"))
			}
			effective := s
			if s == 0 {
				effective = signature.SigV4
			}
			if body.RequestID != "req-1" || body.Error.Code != r.HTTPStatus() || body.Error.Status != r.Status() ||
				body.Error.Reason != r.String() || body.Error.Message != r.MessageFor(effective) {
				t.Fatalf("%s/%s: body %+v", r, s, body)
			}
			challenge := w.Header().Get("WWW-Authenticate")
			if r.HTTPStatus() == http.StatusUnauthorized && challenge != effective.Challenge() {
				t.Fatalf("%s/%s: WWW-Authenticate %q, want %q", r, s, challenge, effective.Challenge())
			}
			if r.HTTPStatus() != http.StatusUnauthorized && challenge != "" {
				t.Fatalf("%s/%s: WWW-Authenticate on a %d", r, s, r.HTTPStatus())
			}
			if got := w.Header().Get("X-Ca-Error-Message"); (effective == signature.Aliyun) != (got != "") ||
				got != "" && got != r.MessageFor(signature.Aliyun) {
				t.Fatalf("%s/%s: X-Ca-Error-Message %q", r, s, got)
			}
		}
	}
}

func TestWriteDenialFallsBackToTheFirstAllowedScheme(t *testing.T) {
	c := newTestChecker(t, testKeys(), func(c *Config) { c.Schemes = 0 | 1<<signature.SigV4 | 1<<signature.Aliyun })
	d := check(c, httptest.NewRequest(http.MethodGet, bodyURL, nil), "203.0.113.5")
	w, body := writeDenial(t, d, "")
	if body.Error.Reason != "missing_credentials" || w.Header().Get("WWW-Authenticate") != signature.SigV4.Challenge() {
		t.Fatalf("reason %s, challenge %q", body.Error.Reason, w.Header().Get("WWW-Authenticate"))
	}
}

func TestWriteDenialOfAnAllowedDecisionFailsClosed(t *testing.T) {
	w, body := writeDenial(t, Decision{}, "r")
	if w.Code != http.StatusForbidden || body.Error.Reason != "not_authorized" {
		t.Fatalf("%d %s", w.Code, body.Error.Reason)
	}
}

func TestDenialEscapesTheRequestID(t *testing.T) {
	for _, id := range []string{`"}` + "\n\x00\\", "ünïcode ✓", "\xff\xfe broken", ""} {
		_, body := writeDenial(t, Decision{Reason: InvalidKey}, id)
		if want := viaEncodingJSON(id); body.RequestID != want {
			t.Errorf("request ID %q came back as %q, want %q", id, body.RequestID, want)
		}
	}
}

// viaEncodingJSON is s as encoding/json writes and reads it back (invalid
// UTF-8 becomes U+FFFD).
func viaEncodingJSON(s string) string {
	encoded, _ := json.Marshal(s)
	var decoded string
	json.Unmarshal(encoded, &decoded)
	return decoded
}

// FuzzAppendJSONStringContent checks that any request ID makes a valid
// JSON string that decodes as encoding/json's encoding of it does.
func FuzzAppendJSONStringContent(f *testing.F) {
	for _, s := range []string{"", "abc", `"\`, "\x00\x1f\x7f", "\xff", "é\u2028"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		quoted := append(appendJSONStringContent([]byte{'"'}, s), '"')
		var got string
		if err := json.Unmarshal(quoted, &got); err != nil {
			t.Fatalf("%q: %v", quoted, err)
		}
		if want := viaEncodingJSON(s); got != want {
			t.Fatalf("%q decoded to %q, want %q", s, got, want)
		}
	})
}
