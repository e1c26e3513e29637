package admin

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/accessauth/caddy-access-auth/cache"
	"github.com/accessauth/caddy-access-auth/enforcement"
	"github.com/accessauth/caddy-access-auth/replay"
	"github.com/accessauth/caddy-access-auth/signature"
	"github.com/accessauth/caddy-access-auth/store"
)

// checkerExplainer explains with a real check over the store's keys, as
// caddymodule wires it.
type checkerExplainer struct{ c *enforcement.Checker }

func (e checkerExplainer) Explain(ctx context.Context, in enforcement.ExplainRequest) (enforcement.Explanation, error) {
	return e.c.Explain(ctx, in), nil
}

// newExplainClient is an admin API whose explain runs the check of group
// shop, with replay protection, over the same store.
func newExplainClient(t *testing.T) (client, *store.Store) {
	t.Helper()
	s := newStore(t, nil)
	keys, err := cache.New(cache.Config{}, s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(keys.Close)
	checker, err := enforcement.NewChecker(enforcement.Config{Group: "shop", Nonces: replay.NewLocalNonces()}, keys)
	if err != nil {
		t.Fatal(err)
	}
	return client{t, New(s, Options{Explainer: checkerExplainer{checker}})}, s
}

// explainBody is the JSON of a signed request to explain.
func explainBody(t *testing.T, r *http.Request, body, group string) string {
	t.Helper()
	headers := map[string][]string{"Host": {r.Host}}
	for name, values := range r.Header {
		headers[name] = values
	}
	in := map[string]any{"method": r.Method, "url": r.URL.String(), "headers": headers, "group": group, "client_ip": "192.0.2.1"}
	if body != "" {
		in["body_base64"] = base64.StdEncoding.EncodeToString([]byte(body))
	}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestExplainEndpoint(t *testing.T) {
	c, _ := newExplainClient(t)
	c.createGroup("shop")
	key := c.createKey("alice")
	c.call("POST", "/access-auth/authorizations", fmt.Sprintf(`{"access_key_id":%q,"bindings":[{"group":"shop"}]}`, key.ID), http.StatusCreated, nil)

	sign := func(path, body string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "http://api.example.com"+path, strings.NewReader(body))
		if err := signature.Sign(r, signature.JDCloud2, key.APIKey, key.APISecret); err != nil {
			t.Fatal(err)
		}
		return r
	}
	tests := []struct {
		name      string
		request   func() string
		want      string
		wantForms bool
		wantSteps int
	}{
		{"allowed", func() string { return explainBody(t, sign("/v1/orders?a=1", `{"n":1}`), `{"n":1}`, "shop") }, "allowed", true, 11},
		{"without a group", func() string { return explainBody(t, sign("/v1/orders", ""), "", "") }, "allowed", true, 7},
		{"another group", func() string { return explainBody(t, sign("/v1/orders", ""), "", "billing") }, "not_authorized", true, 9},
		{"another body", func() string { return explainBody(t, sign("/v1/orders", `{"n":1}`), `{"n":2}`, "shop") }, "signature_mismatch", true, 6},
		{"wrong path", func() string {
			r := sign("/v1/orders", "")
			r.URL.Path = "/v1/order"
			return explainBody(t, r, "", "shop")
		}, "signature_mismatch", true, 6},
		{"no credentials", func() string { return `{"method":"GET","url":"http://api.example.com/"}` }, "missing_credentials", false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got ExplainAnswer
			// Twice: explaining records no nonce, so the answer is the same.
			body := tt.request()
			for range 2 {
				c.call("POST", "/access-auth/explain", body, http.StatusOK, &got)
				if got.Decision != tt.want || len(got.Steps) != tt.wantSteps {
					t.Fatalf("answer %+v, want %s in %d steps", got, tt.want, tt.wantSteps)
				}
			}
			if tt.wantForms != (len(got.FormsTried) > 0) || (tt.wantForms && got.CanonicalRequest != got.FormsTried[0].CanonicalRequest) {
				t.Fatalf("forms %+v, canonical request %q", got.FormsTried, got.CanonicalRequest)
			}
			if strings.Contains(body, key.APISecret) {
				t.Fatal("the test sends the secret")
			}
		})
	}
	var answer json.RawMessage
	c.call("POST", "/access-auth/explain", explainBody(t, sign("/v1/orders", ""), "", "shop"), http.StatusOK, &answer)
	if strings.Contains(string(answer), key.APISecret) {
		t.Fatalf("the answer shows the secret: %s", answer)
	}
}

// TestExplainEndpointBadInput checks that each bad field is refused with
// 400 invalid_argument naming it.
func TestExplainEndpointBadInput(t *testing.T) {
	c, _ := newExplainClient(t)
	for _, tc := range []struct{ body, field string }{
		{`{"url":"http://a/"}`, "method"},
		{`{"method":"GE T","url":"http://a/"}`, "method"},
		{`{"method":"GET"}`, "url"},
		{`{"method":"GET","url":"http://a/%zz"}`, "url"},
		{`{"method":"GET","url":"mailto:x@y"}`, "url"},
		{`{"method":"GET","url":"relative/path"}`, "url"},
		{`{"method":"GET","url":"/","headers":{"Bad Name":["x"]}}`, "headers"},
		{`{"method":"GET","url":"/","headers":{"X-A":["a\nb"]}}`, "headers"},
		{`{"method":"GET","url":"/","body_base64":"!!"}`, "body_base64"},
		{`{"method":"GET","url":"/","group":"Not A Group"}`, "group"},
		{`{"method":"GET","url":"/","environment":"bad env"}`, "environment"},
		{`{"method":"GET","url":"/","client_ip":"10.0.0.300"}`, "client_ip"},
		{`{"method":"GET","url":"/","secret":"x"}`, "secret"},
		{`[]`, "JSON"},
	} {
		var e struct{ Error, Code string }
		c.call("POST", "/access-auth/explain", tc.body, http.StatusBadRequest, &e)
		if e.Code != "invalid_argument" || !strings.Contains(e.Error, tc.field) {
			t.Errorf("%s: %+v, want invalid_argument naming %s", tc.body, e, tc.field)
		}
	}
}

func TestExplainEndpointWithoutExplainer(t *testing.T) {
	c, _ := newClient(t, Options{})
	c.fails("POST", "/access-auth/explain", `{"method":"GET","url":"/"}`, http.StatusServiceUnavailable, "store_unavailable")
}

// TestExplainRequestAsAServerReadsIt checks the request explain hands the
// check: host from the Host header, else the URL; the path as escaped on
// the wire; header names canonical, values kept in order.
func TestExplainRequestAsAServerReadsIt(t *testing.T) {
	tests := []struct {
		in       ExplainInput
		wantHost string
		wantPath string
	}{
		{ExplainInput{Method: "GET", URL: "http://api.example.com/a%3Ab?x=1"}, "api.example.com", "/a%3Ab"},
		{ExplainInput{Method: "GET", URL: "/v1/a:b", Headers: map[string][]string{"host": {"h.example"}}}, "h.example", "/v1/a:b"},
		{ExplainInput{Method: "GET", URL: "http://u.example", Headers: map[string][]string{"Host": {"h.example"}}}, "h.example", "/"},
	}
	for _, tt := range tests {
		tt.in.Headers = mergeHeaders(tt.in.Headers, map[string][]string{"x-jdcloud-nonce": {"a", "b"}})
		got, err := tt.in.request()
		if err != nil {
			t.Fatalf("%+v: %v", tt.in, err)
		}
		r := got.Request
		if r.Host != tt.wantHost || r.Path != tt.wantPath || r.Header.Get("Host") != "" ||
			strings.Join(r.Header["X-Jdcloud-Nonce"], ",") != "a,b" {
			t.Errorf("%+v: request %+v, want host %s, path %s", tt.in, r, tt.wantHost, tt.wantPath)
		}
	}
}

func mergeHeaders(a, b map[string][]string) map[string][]string {
	out := map[string][]string{}
	for _, m := range []map[string][]string{a, b} {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}
