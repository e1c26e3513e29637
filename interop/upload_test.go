package interop

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/accessauth/caddy-access-auth/internal/gatewaytest"
)

const (
	uploadSize = 100 << 20 // max_body's default, JD Cloud's limit
	// A 100 MiB signed upload adds at most 16 MiB RSS (docs/operations.md).
	maxRSSGrowth = 16 << 20
)

// patternBody is a reproducible stream of n pseudo-random bytes, generated
// as it is read so that the test itself holds none of it; flip, when not
// negative, is the offset of a byte that is altered.
type patternBody struct {
	rng       *rand.ChaCha8
	remaining int64
	offset    int64
	flip      int64
}

func newPatternBody(n, flip int64) *patternBody {
	return &patternBody{rng: rand.NewChaCha8([32]byte{7}), remaining: n, flip: flip}
}

func (b *patternBody) Read(p []byte) (int, error) {
	if b.remaining == 0 {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), b.remaining)]
	n, _ := b.rng.Read(p)
	if b.flip >= b.offset && b.flip < b.offset+int64(n) {
		p[b.flip-b.offset] ^= 1
	}
	b.offset += int64(n)
	b.remaining -= int64(n)
	return n, nil
}

func patternSHA256(n int64) string {
	h := sha256.New()
	io.Copy(h, newPatternBody(n, -1))
	return hex.EncodeToString(h.Sum(nil))
}

// countingUpstream is a reverse_proxy upstream that reads each body to its
// end and remembers how many bytes it got and how the read ended.
type countingUpstream struct {
	*httptest.Server
	mu       sync.Mutex
	received []upload
}

type upload struct {
	bytes  int64
	sha256 string
	err    error
}

func newCountingUpstream(t *testing.T) *countingUpstream {
	u := &countingUpstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		u.mu.Lock()
		u.received = append(u.received, upload{n, hex.EncodeToString(h.Sum(nil)), err})
		u.mu.Unlock()
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprint(w, hex.EncodeToString(h.Sum(nil)))
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *countingUpstream) last() upload {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.received) == 0 {
		return upload{bytes: -1}
	}
	return u.received[len(u.received)-1]
}

// memory reads the VmRSS and VmHWM of a process, in bytes.
func memory(t *testing.T, pid int) (rss, hwm int64) {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		name, value, _ := strings.Cut(line, ":")
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		switch name {
		case "VmRSS":
			rss = kb << 10
		case "VmHWM":
			hwm = kb << 10
		}
	}
	return rss, hwm
}

// resetPeak makes VmHWM the current RSS (Linux clear_refs 5).
func resetPeak(t *testing.T, pid int) {
	t.Helper()
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
		t.Fatal(err)
	}
}

// sendUpload PUTs n pattern bytes (flip: one altered byte, or -1) signed
// with the AWS SDK signer; with streamed the signed x-amz-content-sha256
// header lets the body stream (S3 form), without it the gateway hashes the
// body before passing it on (spooling what exceeds 1 MiB).
var uploadCount atomic.Int64

func sendUpload(t *testing.T, g *gatewaytest.Node, key gatewaytest.Credentials, n, flip int64, streamed bool) (int, string) {
	t.Helper()
	// A path of its own: SigV4 has no nonce, so the same upload signed in
	// the same second would be refused as a replay of the one before.
	path := fmt.Sprintf("/bucket/upload-%d.bin", uploadCount.Add(1))
	req, err := http.NewRequest(http.MethodPut, g.Site+path, newPatternBody(n, flip))
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = n
	payloadHash := patternSHA256(n)
	signer, service := v4.NewSigner(), "execute-api"
	if streamed {
		signer, service = v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }), "s3"
		req.Header.Set("X-Amz-Content-Sha256", payloadHash)
	}
	creds := aws.Credentials{AccessKeyID: key.APIKey, SecretAccessKey: key.APISecret}
	if err := signer.SignHTTP(context.Background(), creds, req, payloadHash, service, "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error() // the gateway may cut a refused upload short
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(body)
}

// TestUploadMemory sends 100 MiB signed uploads through access_auth to a
// reverse_proxy upstream and measures the growth of the Caddy process's
// resident memory, streamed (signed content hash) and spooled (none).
func TestUploadMemory(t *testing.T) {
	upstream := newCountingUpstream(t)
	g := gatewaytest.Start(t, "gateway", "", "\taccess_auth upload\n\treverse_proxy "+upstream.Listener.Addr().String())
	key := g.AuthorizedKey("uploader", "upload")
	pid := g.PID()
	want := patternSHA256(uploadSize)

	// Warm up: the route's check is built on first use.
	if status, body := sendUpload(t, g, key, 1<<20, -1, true); status != http.StatusOK {
		t.Fatalf("warm-up upload: %d %s", status, body)
	}
	for _, streamed := range []bool{true, false} {
		name := map[bool]string{true: "streamed", false: "spooled"}[streamed]
		t.Run(name, func(t *testing.T) {
			resetPeak(t, pid)
			before, _ := memory(t, pid)
			status, body := sendUpload(t, g, key, uploadSize, -1, streamed)
			_, peak := memory(t, pid)
			if status != http.StatusOK || body != want {
				t.Fatalf("upload: status %d, upstream hashed %q, want %s", status, body, want)
			}
			if got := upstream.last(); got.bytes != uploadSize || got.err != nil {
				t.Fatalf("upstream got %d bytes, %v", got.bytes, got.err)
			}
			growth := peak - before
			t.Logf("%s 100 MiB upload: RSS %.1f MiB before, peak %.1f MiB, growth %.1f MiB",
				name, float64(before)/(1<<20), float64(peak)/(1<<20), float64(growth)/(1<<20))
			if growth > maxRSSGrowth {
				t.Errorf("RSS grew by %.1f MiB, more than 16 MiB", float64(growth)/(1<<20))
			}
		})
	}
}

// TestTamperedUploadNeverReachesTheUpstreamWhole alters one byte of a
// signed streamed upload: the upstream must not get the whole body, and the
// client gets 401 signature_mismatch. Without the content hash header the body is
// checked before it goes on, so the upstream gets nothing at all.
func TestTamperedUploadNeverReachesTheUpstreamWhole(t *testing.T) {
	upstream := newCountingUpstream(t)
	g := gatewaytest.Start(t, "gateway", "", "\taccess_auth upload\n\treverse_proxy "+upstream.Listener.Addr().String())
	key := g.AuthorizedKey("tamperer", "upload")
	const n = 8 << 20
	for _, tc := range []struct {
		name     string
		flip     int64
		streamed bool
	}{
		{"streamed, last byte", n - 1, true},
		{"streamed, first byte", 0, true},
		{"spooled, middle byte", n / 2, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(upstream.received)
			status, body := sendUpload(t, g, key, n, tc.flip, tc.streamed)
			// The client's fault is answered as such, never as a 5xx.
			if status != http.StatusUnauthorized || !strings.Contains(body, `"reason":"signature_mismatch"`) {
				t.Fatalf("tampered upload answered %d %s, want 401 signature_mismatch", status, body)
			}
			// The upstream handler ends once the gateway aborted its request.
			var got []upload
			for deadline := time.Now().Add(time.Second); ; time.Sleep(10 * time.Millisecond) {
				upstream.mu.Lock()
				got = upstream.received[before:]
				upstream.mu.Unlock()
				if !tc.streamed || len(got) > 0 || time.Now().After(deadline) {
					break
				}
			}
			for _, u := range got {
				if u.bytes >= n || u.err == nil {
					t.Fatalf("upstream read %d of %d bytes, error %v", u.bytes, n, u.err)
				}
			}
			if !tc.streamed && len(got) != 0 {
				t.Fatalf("upstream was called for a body refused before it went on")
			}
			t.Logf("client status %d; upstream reads %+v", status, got)
		})
	}
}
