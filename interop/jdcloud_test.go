package interop

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/jdcloud-api/jdcloud-sdk-go/core"

	"github.com/accessauth/caddy-access-auth/enforcement"
	"github.com/accessauth/caddy-access-auth/internal/gatewaytest"
)

// echoed is what the upstream saw of a request that passed the gateway.
type echoed struct {
	Method      string `json:"method"`
	Path        string `json:"path"`
	RawQuery    string `json:"raw_query"`
	BodySHA256  string `json:"body_sha256"`
	AccessKeyID string `json:"access_key_id"`
	Group       string `json:"group"`
}

// echoUpstream answers every request with what it saw.
func echoUpstream(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		sum := sha256.Sum256(body)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(echoed{
			Method:      r.Method,
			Path:        r.URL.EscapedPath(),
			RawQuery:    r.URL.RawQuery,
			BodySHA256:  hex.EncodeToString(sum[:]),
			AccessKeyID: r.Header.Get("X-Access-Key-Id"),
			Group:       r.Header.Get("X-Api-Group"),
		})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestJDCloudSDKSignedRequests signs requests with JD Cloud's own Go SDK
// signer and sends them through Caddy: every one is accepted and reaches the
// upstream unchanged; the same requests signed with a wrong secret are refused.
func TestJDCloudSDKSignedRequests(t *testing.T) {
	upstream := echoUpstream(t)
	g := gatewaytest.Start(t, "gateway", "", "\taccess_auth interop\n\treverse_proxy "+upstream.Listener.Addr().String())
	generated := g.AuthorizedKey("jd-sdk-generated", "interop")
	imported := g.ImportKey("jd-sdk-imported", "JDC_IMPORTED_AK_0123456789", "imported/Secret+with=chars")
	g.Authorize(imported.ID, "interop")

	binary := make([]byte, 64<<10)
	rand.New(rand.NewSource(7)).Read(binary)
	binary[0], binary[1] = 0, 0

	cases := []struct {
		name, method, path, query string
		body                      []byte
		header                    map[string]string
	}{
		{"get with query", http.MethodGet, "/v1/regions/cn-north-1/instances", "pageNumber=1&pageSize=10", nil, nil},
		{"repeated unsorted query", http.MethodGet, "/v1/items", "z=2&a=1&a=0&b=&filters.1.name=id", nil, nil},
		{"escaped query values", http.MethodGet, "/v1/search", "q=hello%20world&tag=a%2Fb&x=%E4%B8%AD", nil, nil},
		{"post json to path with colon", http.MethodPost, "/v1/resource:action", "", []byte(`{"name":"vm-1","count":2}`),
			map[string]string{"Content-Type": "application/json"}},
		{"put binary to non-ASCII path", http.MethodPut, "/v1/files/中文/数据.bin", "", binary,
			map[string]string{"Content-Type": "application/octet-stream"}},
		{"delete with at and escaped space", http.MethodDelete, "/v1/items/a%20b@c", "", nil, nil},
		{"post empty body", http.MethodPost, "/v1/instances/i-123:start", "", []byte{}, nil},
		{"header with inner spaces", http.MethodGet, "/v1/ping", "", nil, map[string]string{"X-My-Header": "a   b  c"}},
		{"patch with tilde path", http.MethodPatch, "/v1/x~y/z_(1)", "k=v", []byte("patch body"), nil},
	}
	for _, key := range []gatewaytest.Credentials{generated, imported} {
		for _, tc := range cases {
			t.Run(key.ID+"/"+tc.name, func(t *testing.T) {
				send := func(secret string) *http.Response {
					url := g.Site + tc.path
					if tc.query != "" {
						url += "?" + tc.query
					}
					req, err := http.NewRequest(tc.method, url, bytes.NewReader(tc.body))
					if err != nil {
						t.Fatal(err)
					}
					for k, v := range tc.header {
						req.Header.Set(k, v)
					}
					signer := core.NewSigner(*core.NewCredentials(key.APIKey, secret), core.NewDummyLogger())
					var body io.ReadSeeker
					if tc.body != nil {
						body = bytes.NewReader(tc.body)
					}
					if _, err := signer.Sign(req, body, "interop", "cn-north-1", time.Now()); err != nil {
						t.Fatal(err)
					}
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					return resp
				}

				resp := send(key.APISecret)
				raw, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("signed request: status %d: %s", resp.StatusCode, raw)
				}
				var seen echoed
				if err := json.Unmarshal(raw, &seen); err != nil {
					t.Fatalf("upstream answer %q: %v", raw, err)
				}
				sum := sha256.Sum256(tc.body)
				if seen.Method != tc.method || seen.BodySHA256 != hex.EncodeToString(sum[:]) {
					t.Errorf("upstream saw %+v, want method %s and the body intact", seen, tc.method)
				}
				if seen.AccessKeyID != key.ID || seen.Group != "interop" {
					t.Errorf("upstream identity headers: key %q group %q, want %q interop", seen.AccessKeyID, seen.Group, key.ID)
				}

				resp = send(key.APISecret + "x")
				raw, _ = io.ReadAll(resp.Body)
				resp.Body.Close()
				var denied enforcement.DenialBody
				if resp.StatusCode != http.StatusUnauthorized || json.Unmarshal(raw, &denied) != nil ||
					denied.Error.Reason != "signature_mismatch" {
					t.Fatalf("wrong secret: status %d body %s, want 401 signature_mismatch", resp.StatusCode, raw)
				}
				if got := resp.Header.Get("WWW-Authenticate"); got != "JDCLOUD2-HMAC-SHA256" {
					t.Errorf("WWW-Authenticate = %q", got)
				}
			})
		}
	}
}
