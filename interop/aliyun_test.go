package interop

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"testing"

	sign "github.com/sliveryou/aliyun-api-gateway-sign"

	"github.com/accessauth/caddy-access-auth/internal/gatewaytest"
)

const (
	aliyunChallenge    = "X-Ca-Signature"
	aliyunFormType     = "application/x-www-form-urlencoded"
	signatureMismatch  = "sign result is not same"
	unsignedPayloadDir = "/unsigned/"
)

// aliyunGateway runs Caddy with /unsigned/* (group "unsigned") allowing
// unsigned payloads and every other path (group "interop") not.
func aliyunGateway(t *testing.T) *gatewaytest.Node {
	upstream := echoUpstream(t).Listener.Addr().String()
	return gatewaytest.Start(t, "gateway", "", `	handle `+unsignedPayloadDir+`* {
		access_auth unsigned {
			schemes aliyun
			allow_unsigned_payload
		}
		reverse_proxy `+upstream+`
	}
	handle {
		access_auth interop
		reverse_proxy `+upstream+`
	}`)
}

// mustDenyAliyun is mustDeny plus Alibaba's X-Ca-Error-Message.
func (a answer) mustDenyAliyun(t *testing.T, reason, message string) {
	t.Helper()
	a.mustDeny(t, reason, aliyunChallenge)
	if got := a.header.Get("X-Ca-Error-Message"); got != message {
		t.Errorf("X-Ca-Error-Message = %q, want %q", got, message)
	}
}

// TestSliveryouSignedRequests signs with
// github.com/sliveryou/aliyun-api-gateway-sign: accepted with the right
// secret, refused with a wrong one or a body that is not the one signed.
func TestSliveryouSignedRequests(t *testing.T) {
	g := aliyunGateway(t)
	key := g.AuthorizedKey("aliyun-go", "interop")
	form := url.Values{"name": {"测试 value"}, "b": {"form"}, "empty": {""}}.Encode()
	cases := []struct {
		name, method, path, query, contentType, body string
	}{
		{"get with query", http.MethodGet, "/v1/items", "bankcard=123&name=" + url.QueryEscape("测试") + "&b=2&a=1&a=0&flag", "", ""},
		{"post json", http.MethodPost, "/v1/items", "x=1", "application/json", `{"name":"vm-1"}`},
		{"post form with query", http.MethodPost, "/v1/form", "b=query&z=1", aliyunFormType, form},
		{"put text to non-ASCII path", http.MethodPut, "/v1/files/中文/a b.txt", "", "text/plain", "hello"},
		{"delete", http.MethodDelete, "/v1/items/42", "", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			send := func(secret string, tamper bool) answer {
				u := g.Site + (&url.URL{Path: tc.path, RawQuery: tc.query}).RequestURI()
				var body *strings.Reader
				if tc.body != "" {
					body = strings.NewReader(tc.body)
				}
				req, err := http.NewRequest(tc.method, u, nil)
				if body != nil {
					req, err = http.NewRequest(tc.method, u, body)
				}
				if err != nil {
					t.Fatal(err)
				}
				if tc.contentType != "" {
					req.Header.Set("Content-Type", tc.contentType)
				}
				if err := sign.Sign(req, key.APIKey, secret); err != nil {
					t.Fatal(err)
				}
				if tamper {
					altered := []byte(tc.body)
					altered[0] ^= 1
					req.Body, req.GetBody = nil, nil
					req.Body = readCloser{bytes.NewReader(altered)}
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				return readAnswer(t, resp)
			}
			send(key.APISecret, false).mustPass(t, tc.method, []byte(tc.body))
			send(key.APISecret+"x", false).mustDenyAliyun(t, "signature_mismatch", signatureMismatch)
			if tc.body != "" {
				if a := send(key.APISecret, true); a.status == http.StatusOK {
					t.Fatalf("a body other than the signed one passed: %s", a.body)
				}
			}
		})
	}
	t.Run("missing nonce", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, g.Site+"/v1/x", nil)
		if err := sign.Sign(req, key.APIKey, key.APISecret); err != nil {
			t.Fatal(err)
		}
		req.Header.Del("X-Ca-Nonce")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		readAnswer(t, resp).mustDenyAliyun(t, "missing_nonce", "lack of header x-ca-nonce")
	})
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

// nodeOutcome is what interop/node/aliyun-request.js prints.
type nodeOutcome struct {
	OK             bool   `json:"ok"`
	Result         echoed `json:"result"`
	Status         int    `json:"status"`
	CaErrorMessage string `json:"caErrorMessage"`
	Message        string `json:"message"`
}

// runNode sends one request with the npm package aliyun-api-gateway.
func runNode(t *testing.T, spec map[string]any) nodeOutcome {
	t.Helper()
	encoded, _ := json.Marshal(spec)
	cmd := exec.Command("node", "aliyun-request.js", string(encoded))
	cmd.Dir = "node"
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v %s (run `npm ci` in interop/node, or make tools)", err, exitStderr(err))
	}
	var o nodeOutcome
	if err := json.Unmarshal(out, &o); err != nil {
		t.Fatalf("node printed %q: %v", out, err)
	}
	return o
}

// TestNodeAliyunAPIGateway signs with the npm package aliyun-api-gateway
// (lower-case signed header names, the path as sent, x-ca-stage signed).
// It sends Content-MD5 only for POST: its PUT bodies are unsigned and pass
// only where allow_unsigned_payload is set.
func TestNodeAliyunAPIGateway(t *testing.T) {
	g := aliyunGateway(t)
	key := g.AuthorizedKey("aliyun-node", "interop")
	unsigned := g.AuthorizedKey("aliyun-node-unsigned", "unsigned")
	cases := []struct {
		name    string
		key     gatewaytest.Credentials
		spec    map[string]any
		method  string
		body    string
		refused bool
	}{
		{"get with query", key, map[string]any{"method": "get", "url": g.Site + "/v1/items?z=1",
			"query": map[string]string{"b": "2", "a": "1", "name": "测试"}}, http.MethodGet, "", false},
		{"get escaped path", key, map[string]any{"method": "get", "url": g.Site + "/v1/%E4%B8%AD/a%20b"}, http.MethodGet, "", false},
		{"post json", key, map[string]any{"method": "post", "url": g.Site + "/v1/items",
			"data": map[string]any{"name": "vm-1", "count": 2}}, http.MethodPost, `{"count":2,"name":"vm-1"}`, false}, // keys as Go marshals the map
		{"post form", key, map[string]any{"method": "post", "url": g.Site + "/v1/form?q=1",
			"headers": map[string]string{"content-type": aliyunFormType + "; charset=UTF-8"},
			"data":    map[string]string{"b": "form", "name": "测试 value"}}, http.MethodPost, "b=form&name=%E6%B5%8B%E8%AF%95%20value", false},
		{"signed extra header", key, map[string]any{"method": "get", "url": g.Site + "/v1/h",
			"signHeaders": map[string]string{"x-custom": "v"}}, http.MethodGet, "", false},
		{"put json without Content-MD5", key, map[string]any{"method": "put", "url": g.Site + "/v1/items/1",
			"data": map[string]any{"a": 1}}, http.MethodPut, `{"a":1}`, true},
		{"put json where unsigned payloads are allowed", unsigned, map[string]any{"method": "put", "url": g.Site + unsignedPayloadDir + "items/1",
			"data": map[string]any{"a": 1}}, http.MethodPut, `{"a":1}`, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.spec["key"], tc.spec["secret"] = tc.key.APIKey, tc.key.APISecret
			o := runNode(t, tc.spec)
			if tc.refused {
				if o.OK || o.Status != http.StatusUnauthorized || o.CaErrorMessage != signatureMismatch {
					t.Fatalf("outcome %+v, want 401 %q", o, signatureMismatch)
				}
				return
			}
			if !o.OK {
				t.Fatalf("refused: %+v", o)
			}
			if o.Result.Method != tc.method || o.Result.BodySHA256 != sha256Hex([]byte(tc.body)) || o.Result.AccessKeyID != tc.key.ID {
				t.Fatalf("upstream saw %+v, want %s with body %q from %s", o.Result, tc.method, tc.body, tc.key.ID)
			}

			tc.spec["secret"] = tc.key.APISecret + "x"
			o = runNode(t, tc.spec)
			if o.OK || o.Status != http.StatusUnauthorized || o.CaErrorMessage != signatureMismatch {
				t.Fatalf("wrong secret: outcome %+v", o)
			}
		})
	}
}
