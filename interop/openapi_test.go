package interop

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	validationerrors "github.com/pb33f/libopenapi-validator/errors"

	"github.com/accessauth/caddy-access-auth/internal/gatewaytest"
	"github.com/accessauth/caddy-access-auth/signature"
)

// The document is validated with pb33f's libopenapi-validator: it reads
// OpenAPI 3.1 whole (JSON Schema 2020-12, type arrays for null), which
// kin-openapi only partly does. It lives in this module so users' builds
// never pull it.

const openAPIToken = "openapi-test-token-0123456789abcdef"

// openAPIValidator parses admin/openapi.json, failing the test when it is
// not a valid OpenAPI 3.1 document.
func openAPIValidator(t *testing.T, raw []byte) validator.Validator {
	t.Helper()
	doc, err := libopenapi.NewDocument(raw)
	if err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		t.Fatalf("openapi.json: %v", errs)
	}
	if valid, problems := v.ValidateDocument(); !valid {
		for _, p := range problems {
			t.Errorf("openapi.json is not a valid OpenAPI 3.1 document: %s: %s", p.Message, p.Reason)
		}
		t.FailNow()
	}
	return v
}

// validatingClient sends admin API requests and fails the test when a
// request or its answer does not match the OpenAPI document.
type validatingClient struct {
	t     *testing.T
	v     validator.Validator
	base  string
	token string
}

// call sends method path with body (JSON, none when nil), wants status and
// returns the answer's body; request and answer must match the document.
func (c validatingClient) call(method, path string, body any, want int) []byte {
	c.t.Helper()
	req, resp, answer := c.send(method, path, body, want)
	if valid, problems := c.v.ValidateHttpRequestResponse(req, resp); !valid {
		c.report(req, resp, problems)
	}
	return answer
}

// refused sends a request the document rejects on purpose (a bad argument,
// an undocumented method) and wants the error answer with code; where the
// operation exists, the answer must match the document.
func (c validatingClient) refused(method, path string, body any, want int, code string) {
	c.t.Helper()
	req, resp, answer := c.send(method, path, body, want)
	var got struct {
		Code string `json:"code"`
	}
	if c.decode(answer, &got); got.Code != code {
		c.t.Errorf("%s %s: code %q, want %q", method, path, got.Code, code)
	}
	if want == http.StatusMethodNotAllowed {
		return
	}
	if valid, problems := c.v.ValidateHttpResponse(req, resp); !valid {
		c.report(req, resp, problems)
	}
}

func (c validatingClient) report(req *http.Request, resp *http.Response, problems []*validationerrors.ValidationError) {
	c.t.Helper()
	for _, p := range problems {
		c.t.Errorf("%s %s (%d) does not match openapi.json: %s: %s %v", req.Method, req.URL.RequestURI(), resp.StatusCode, p.Message, p.Reason, p.SchemaValidationErrors)
	}
}

// send sends the request, wants status and gives back the request and
// answer with fresh bodies for the validator.
func (c validatingClient) send(method, path string, body any, want int) (*http.Request, *http.Response, []byte) {
	c.t.Helper()
	var raw []byte
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			c.t.Fatal(err)
		}
	}
	req, err := http.NewRequest(method, c.base+path, bytes.NewReader(raw))
	if err != nil {
		c.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := gatewaytest.Client.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	answer, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		c.t.Fatal(err)
	}
	if resp.StatusCode != want {
		c.t.Fatalf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, want, answer)
	}
	req.Body = io.NopCloser(bytes.NewReader(raw))
	resp.Body = io.NopCloser(bytes.NewReader(answer))
	return req, resp, answer
}

func (c validatingClient) decode(raw []byte, out any) {
	c.t.Helper()
	if err := json.Unmarshal(raw, out); err != nil {
		c.t.Fatalf("%v: %s", err, raw)
	}
}

// TestOpenAPIDocument checks that both the Caddy admin endpoint and
// access_auth_admin (behind its token) serve admin/openapi.json, and that
// it is a valid OpenAPI 3.1 document.
func TestOpenAPIDocument(t *testing.T) {
	file, err := os.ReadFile("../admin/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	v := openAPIValidator(t, file)
	node := gatewaytest.Start(t, "openapi", "", "\taccess_auth_admin {\n\t\ttoken "+openAPIToken+"\n\t}\n")
	for _, c := range []validatingClient{
		{t: t, v: v, base: node.Admin},
		{t: t, v: v, base: node.Site, token: openAPIToken},
	} {
		served := c.call(http.MethodGet, "/access-auth/openapi.json", nil, http.StatusOK)
		var got, want any
		c.decode(served, &got)
		c.decode(file, &want)
		if !jsonEqual(got, want) {
			t.Errorf("%s serves a document other than admin/openapi.json", c.base)
		}
	}
	anonymous := validatingClient{t: t, v: v, base: node.Site}
	anonymous.refused(http.MethodGet, "/access-auth/openapi.json", nil, http.StatusUnauthorized, "unauthenticated")
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

// TestOpenAPITraffic calls every route of the admin API on the real Caddy
// binary, with successes and the documented errors, and validates each
// request and answer against the document.
func TestOpenAPITraffic(t *testing.T) {
	file, err := os.ReadFile("../admin/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	node := gatewaytest.Start(t, "openapi-traffic", "", "\taccess_auth_admin {\n\t\ttoken "+openAPIToken+"\n\t}\n")
	c := validatingClient{t: t, v: openAPIValidator(t, file), base: node.Admin}

	c.call(http.MethodPost, "/access-auth/groups", map[string]any{"name": "shop", "description": "the shop API", "environments": []string{"prod"}}, http.StatusCreated)
	c.call(http.MethodPost, "/access-auth/groups", map[string]any{"name": "shop"}, http.StatusConflict)
	c.call(http.MethodGet, "/access-auth/groups?limit=10", nil, http.StatusOK)
	c.call(http.MethodGet, "/access-auth/groups/shop", nil, http.StatusOK)

	c.call(http.MethodPost, "/access-auth/plans", map[string]any{"name": "gold", "rate": map[string]any{"requests": 10, "per": "1s"}, "burst": 20}, http.StatusCreated)
	c.call(http.MethodPatch, "/access-auth/plans/gold", map[string]any{"quota": map[string]any{"requests": 1000, "period": "day"}}, http.StatusOK)
	c.call(http.MethodGet, "/access-auth/plans", nil, http.StatusOK)
	c.call(http.MethodGet, "/access-auth/plans/gold", nil, http.StatusOK)

	var key struct {
		ID        string `json:"id"`
		APIKey    string `json:"api_key"`
		APISecret string `json:"api_secret"`
	}
	c.decode(c.call(http.MethodPost, "/access-auth/keys", map[string]any{"name": "alice", "description": "Alice's app"}, http.StatusCreated), &key)
	signed, err := http.NewRequest(http.MethodPost, "http://api.example.com/v1/orders", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	if err := signature.Sign(signed, signature.SigV4, key.APIKey, key.APISecret); err != nil {
		t.Fatal(err)
	}
	c.call(http.MethodPost, "/access-auth/explain", map[string]any{"method": signed.Method, "url": signed.URL.String(),
		"headers": signed.Header, "body_base64": "e30="}, http.StatusOK)
	c.call(http.MethodPost, "/access-auth/keys", map[string]any{"name": "imported", "kind": "imported",
		"api_key": gatewaytest.RandomAPIKey(t), "api_secret": strings.Repeat("s", 32)}, http.StatusCreated)
	c.call(http.MethodGet, "/access-auth/keys?name=alice&enabled=true", nil, http.StatusOK)
	c.call(http.MethodGet, "/access-auth/keys?q=ALI&kind=generated&enabled=true&limit=10", nil, http.StatusOK)
	c.call(http.MethodGet, "/access-auth/keys?api_key=NONE-SUCH", nil, http.StatusOK)
	c.call(http.MethodGet, "/access-auth/keys/"+key.ID, nil, http.StatusOK)
	c.call(http.MethodPatch, "/access-auth/keys/"+key.ID, map[string]any{"description": "renamed", "expires_at": "2099-01-01T00:00:00Z"}, http.StatusOK)
	c.call(http.MethodPost, "/access-auth/keys/"+key.ID+"/reset", map[string]any{"grace": "1h"}, http.StatusOK)
	c.call(http.MethodPost, "/access-auth/keys/"+key.ID+"/reset", nil, http.StatusOK)

	var auth struct {
		ID string `json:"id"`
	}
	c.decode(c.call(http.MethodPost, "/access-auth/authorizations", map[string]any{"access_key_id": key.ID, "allowed_ips": []string{"10.0.0.0/8"},
		"bindings": []map[string]any{{"group": "shop", "environment": "prod", "plan": "gold"}}}, http.StatusCreated), &auth)
	c.call(http.MethodPost, "/access-auth/authorizations", map[string]any{"access_key_id": key.ID}, http.StatusConflict)
	c.call(http.MethodDelete, "/access-auth/plans/gold", nil, http.StatusConflict)
	c.call(http.MethodPut, "/access-auth/authorizations/"+auth.ID+"/bindings/shop?environment=*&plan=gold", nil, http.StatusOK)
	c.call(http.MethodPut, "/access-auth/authorizations/"+auth.ID+"/bindings/nowhere", nil, http.StatusNotFound)
	c.call(http.MethodPatch, "/access-auth/authorizations/"+auth.ID, map[string]any{"plan": nil, "valid_until": "2099-01-01T00:00:00Z"}, http.StatusOK)
	c.call(http.MethodPatch, "/access-auth/authorizations/"+auth.ID, map[string]any{"plan": "none-such"}, http.StatusNotFound)
	c.call(http.MethodGet, "/access-auth/authorizations?access_key_id="+key.ID+"&group=shop", nil, http.StatusOK)
	c.call(http.MethodGet, "/access-auth/authorizations/"+auth.ID, nil, http.StatusOK)
	c.call(http.MethodGet, "/access-auth/keys/"+key.ID+"/groups", nil, http.StatusOK)
	c.call(http.MethodGet, "/access-auth/keys/"+key.ID+"/usage", nil, http.StatusOK) // a group budget of gold's quota
	c.call(http.MethodGet, "/access-auth/groups/shop/authorizations", nil, http.StatusOK)
	c.call(http.MethodDelete, "/access-auth/keys/"+key.ID, nil, http.StatusConflict)
	c.call(http.MethodDelete, "/access-auth/authorizations/"+auth.ID+"/bindings/shop?environment=prod", nil, http.StatusNoContent)

	c.call(http.MethodPost, "/access-auth/explain", map[string]any{"method": "GET", "url": "http://api.example.com/v1/orders?page=1",
		"headers": map[string][]string{"X-Jdcloud-Date": {"20260101T000000Z"}}, "body_base64": "e30=", "group": "shop",
		"environment": "prod", "client_ip": "192.0.2.1"}, http.StatusOK)
	c.refused(http.MethodPost, "/access-auth/explain", map[string]any{"method": "GET"}, http.StatusBadRequest, "invalid_argument")

	c.call(http.MethodGet, "/access-auth/audit?limit=2", nil, http.StatusOK)
	export := c.call(http.MethodGet, "/access-auth/export", nil, http.StatusOK)
	c.call(http.MethodPost, "/access-auth/import", json.RawMessage(export), http.StatusOK)
	applied := map[string]any{
		"groups":         []map[string]any{{"name": "applied", "environments": []string{"prod"}}},
		"plans":          []map[string]any{{"name": "applied", "quota": map[string]any{"requests": 10, "period": "day"}}},
		"keys":           []map[string]any{{"name": "applied"}, {"name": "applied-imported", "api_key": gatewaytest.RandomAPIKey(t), "api_secret": "s"}},
		"authorizations": []map[string]any{{"key": "applied", "plan": "applied", "bindings": []map[string]any{{"group": "applied", "environment": "prod"}}}},
	}
	c.call(http.MethodPost, "/access-auth/apply?dry_run=true&prune=false", applied, http.StatusOK)
	c.call(http.MethodPost, "/access-auth/apply", applied, http.StatusOK)
	c.call(http.MethodPost, "/access-auth/apply", applied, http.StatusOK)
	c.refused(http.MethodPost, "/access-auth/apply", map[string]any{"authorizations": []map[string]any{{"key": "nobody"}}}, http.StatusBadRequest, "invalid_argument")

	c.call(http.MethodDelete, "/access-auth/authorizations/"+auth.ID, nil, http.StatusNoContent)
	c.call(http.MethodDelete, "/access-auth/keys/"+key.ID, nil, http.StatusNoContent)
	c.call(http.MethodDelete, "/access-auth/groups/shop", nil, http.StatusNoContent)
	c.call(http.MethodDelete, "/access-auth/plans/gold", nil, http.StatusNoContent)

	// Errors.
	c.call(http.MethodGet, "/access-auth/keys/none-such", nil, http.StatusNotFound)
	c.refused(http.MethodGet, "/access-auth/keys/none-such/usage", nil, http.StatusNotFound, "not_found")
	c.refused(http.MethodGet, "/access-auth/keys?limit=0", nil, http.StatusBadRequest, "invalid_argument")
	c.refused(http.MethodGet, "/access-auth/keys?kind=stolen", nil, http.StatusBadRequest, "invalid_argument")
	c.refused(http.MethodPost, "/access-auth/groups", map[string]any{"name": "x", "unknown": 1}, http.StatusBadRequest, "invalid_argument")
	c.refused(http.MethodPost, "/access-auth/groups", map[string]any{"name": strings.Repeat("x", 2<<20)}, http.StatusRequestEntityTooLarge, "body_too_large")
	c.refused(http.MethodPut, "/access-auth/keys/none-such", nil, http.StatusMethodNotAllowed, "method_not_allowed")
}
