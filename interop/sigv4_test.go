package interop

import (
	"bytes"
	"context"
	"math/rand"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/accessauth/caddy-access-auth/internal/gatewaytest"
)

const awsChallenge = "AWS4-HMAC-SHA256"

// sigv4Gateway runs Caddy with three routes: /pinned/* accepts only SigV4
// for region us-east-1 and service execute-api (group "pinned"),
// /unsigned/* unsigned payloads (group "unsigned"), every other path any
// scheme (group "interop").
func sigv4Gateway(t *testing.T) *gatewaytest.Node {
	upstream := echoUpstream(t).Listener.Addr().String()
	return gatewaytest.Start(t, "gateway", "", `	handle /pinned/* {
		access_auth pinned {
			schemes sigv4
			region us-east-1
			service execute-api
		}
		reverse_proxy `+upstream+`
	}
	handle /unsigned/* {
		access_auth unsigned {
			allow_unsigned_payload
		}
		reverse_proxy `+upstream+`
	}
	handle {
		access_auth interop
		reverse_proxy `+upstream+`
	}`)
}

// TestAWSSDKSignedRequests signs requests with the AWS SDK for Go v2
// signer, for a service (path encoded twice) and for S3 (path as sent,
// x-amz-content-sha256 sent, body streamed): accepted with the right
// secret, refused with a wrong one.
func TestAWSSDKSignedRequests(t *testing.T) {
	g := sigv4Gateway(t)
	key := g.AuthorizedKey("aws-sdk", "interop")

	binary := make([]byte, 64<<10)
	rand.New(rand.NewSource(4)).Read(binary)
	cases := []struct {
		name, method, path, query string
		body                      []byte
		header                    map[string]string
	}{
		{"get with unsorted repeated query", http.MethodGet, "/v1/items", "z=2&a=1&a=0&b=&filters.1.name=id", nil, nil},
		{"escaped query values", http.MethodGet, "/v1/search", "q=hello%20world&tag=a%2Fb&x=%E4%B8%AD&p=a+b", nil, nil},
		{"post json to path with colon", http.MethodPost, "/v1/resource:action", "", []byte(`{"name":"vm-1"}`),
			map[string]string{"Content-Type": "application/json"}},
		{"put binary to non-ASCII path", http.MethodPut, "/v1/files/中文/数据 1.bin", "", binary,
			map[string]string{"Content-Type": "application/octet-stream"}},
		{"delete with at and escaped space", http.MethodDelete, "/v1/items/a%20b@c", "", nil, nil},
		{"header with inner spaces", http.MethodGet, "/v1/ping", "", nil, map[string]string{"X-Amz-Meta-Note": "a   b  c"}},
	}
	for _, service := range []string{"execute-api", "s3"} {
		for _, tc := range cases {
			t.Run(service+"/"+tc.name, func(t *testing.T) {
				send := func(secret, token string) answer {
					req, err := http.NewRequest(tc.method, g.Site+tc.path, bytes.NewReader(tc.body))
					if err != nil {
						t.Fatal(err)
					}
					req.URL.RawQuery = tc.query
					for k, v := range tc.header {
						req.Header.Set(k, v)
					}
					payloadHash := sha256Hex(tc.body)
					signer := v4.NewSigner()
					if service == "s3" { // as the S3 client configures it
						signer = v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
						req.Header.Set("X-Amz-Content-Sha256", payloadHash)
					}
					creds := aws.Credentials{AccessKeyID: key.APIKey, SecretAccessKey: secret, SessionToken: token}
					if err := signer.SignHTTP(context.Background(), creds, req, payloadHash, service, "us-east-1", time.Now()); err != nil {
						t.Fatal(err)
					}
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					return readAnswer(t, resp)
				}
				seen := send(key.APISecret, "").mustPass(t, tc.method, tc.body)
				if seen.Group != "interop" {
					t.Errorf("upstream saw group %q", seen.Group)
				}
				send(key.APISecret+"x", "").mustDeny(t, "signature_mismatch", awsChallenge)
				// A session token is one more signed header: the key's own secret decides.
				send(key.APISecret, "FwoGZXIvYXdzEXAMPLETOKEN").mustPass(t, tc.method, tc.body)
			})
		}
	}
}

// TestAWSSDKReplay: SigV4 has no nonce, so the signature serves as one and
// the same signed request is refused the second time.
func TestAWSSDKReplay(t *testing.T) {
	g := sigv4Gateway(t)
	key := g.AuthorizedKey("aws-replay", "interop")
	req, _ := http.NewRequest(http.MethodGet, g.Site+"/v1/once", nil)
	creds := aws.Credentials{AccessKeyID: key.APIKey, SecretAccessKey: key.APISecret}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, sha256Hex(nil), "execute-api", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	for i, want := range []int{http.StatusOK, http.StatusUnauthorized} {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		a := readAnswer(t, resp)
		if i == 0 {
			a.mustPass(t, http.MethodGet, nil)
		} else if a.status != want || !strings.Contains(string(a.body), "replayed_nonce") {
			t.Fatalf("replay: status %d %s, want 401 replayed_nonce", a.status, a.body)
		}
	}
}

// TestCurlAWSSigV4 sends requests with the real curl --aws-sigv4.
func TestCurlAWSSigV4(t *testing.T) {
	g := sigv4Gateway(t)
	key := g.AuthorizedKey("curl", "interop")
	pinned := g.AuthorizedKey("curl-pinned", "pinned")
	user := key.APIKey + ":" + key.APISecret

	upload := make([]byte, 256<<10)
	rand.New(rand.NewSource(5)).Read(upload)
	file := filepath.Join(t.TempDir(), "upload.bin")
	if err := os.WriteFile(file, upload, 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, method, provider string
		url                    string
		args                   []string
		body                   []byte
	}{
		{"get with unsorted query", http.MethodGet, "aws:amz:us-east-1:execute-api", "/v1/items?z=2&a=1&b=", nil, nil},
		{"escaped path and query", http.MethodGet, "aws:amz:eu-west-1:es", "/v1/a%20b/%E4%B8%AD?q=x%20y", nil, nil},
		{"post json", http.MethodPost, "aws:amz:us-east-1:execute-api", "/v1/items",
			[]string{"-H", "Content-Type: application/json", "-d", `{"a":1}`}, []byte(`{"a":1}`)},
		{"s3 put with signed content hash (streamed)", http.MethodPut, "aws:amz:us-east-1:s3", "/bucket/object.bin",
			[]string{"-X", "PUT", "-H", "x-amz-content-sha256: " + sha256Hex(upload), "--data-binary", "@" + file}, upload},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--aws-sigv4", tc.provider, "--user", user}, tc.args...)
			runCurl(t, append(args, g.Site+tc.url)...).mustPass(t, tc.method, tc.body)

			args = append([]string{"--aws-sigv4", tc.provider, "--user", user + "x"}, tc.args...)
			runCurl(t, append(args, g.Site+tc.url)...).mustDeny(t, "signature_mismatch", awsChallenge)
		})
	}

	t.Run("region and service pinning", func(t *testing.T) {
		user := pinned.APIKey + ":" + pinned.APISecret
		runCurl(t, "--aws-sigv4", "aws:amz:us-east-1:execute-api", "--user", user, g.Site+"/pinned/x").mustPass(t, http.MethodGet, nil)
		runCurl(t, "--aws-sigv4", "aws:amz:us-west-2:execute-api", "--user", user, g.Site+"/pinned/x").mustDeny(t, "signature_mismatch", awsChallenge)
		runCurl(t, "--aws-sigv4", "aws:amz:us-east-1:s3", "--user", user, g.Site+"/pinned/x").mustDeny(t, "signature_mismatch", awsChallenge)
	})
	t.Run("UNSIGNED-PAYLOAD only with allow_unsigned_payload", func(t *testing.T) {
		unsigned := g.AuthorizedKey("curl-unsigned", "unsigned")
		for _, tc := range []struct {
			key  gatewaytest.Credentials
			path string
			pass bool
		}{{unsigned, "/unsigned/put", true}, {key, "/v1/put", false}} {
			a := runCurl(t, "--aws-sigv4", "aws:amz:us-east-1:s3", "--user", tc.key.APIKey+":"+tc.key.APISecret,
				"-X", "PUT", "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD", "--data-binary", "unsigned body", g.Site+tc.path)
			if tc.pass {
				a.mustPass(t, http.MethodPut, []byte("unsigned body"))
			} else {
				a.mustDeny(t, "signature_mismatch", awsChallenge)
			}
		}
	})
	t.Run("route schemes", func(t *testing.T) {
		// /pinned/* takes SigV4 only: a JDCLOUD2 Authorization is no credential there.
		a := runCurl(t, "-H", "Authorization: JDCLOUD2-HMAC-SHA256 Credential=k/20260101/r/s/jdcloud2_request, SignedHeaders=host, Signature=00",
			g.Site+"/pinned/x")
		a.mustDeny(t, "missing_credentials", awsChallenge)
	})
	if strings.Contains(g.Logs(), "panic") {
		t.Fatal("caddy logged a panic")
	}
}
