package e2e

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accessauth/caddy-access-auth/internal/gatewaytest"
	"github.com/accessauth/caddy-access-auth/signature"
)

// bodyRoutes answer without reading the body, except /echo, which answers
// with the body the next handler was given.
const bodyRoutes = `	access_auth orders
	handle /echo {
		respond "{http.request.body}"
	}
	respond "ok"`

// signedPost is a POST of body to path on n's site, signed with scheme
// and the given secret.
func signedPost(t *testing.T, n *gatewaytest.Node, scheme signature.Scheme, apiKey, secret, path, contentType string, body []byte, opts ...signature.Option) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, n.Site+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	if err := signature.Sign(req, scheme, apiKey, secret, opts...); err != nil {
		t.Fatal(err)
	}
	return req
}

// stall makes req send head of its body, then wait for the rest until the
// returned function is called with it (nil: the client goes away).
func stall(req *http.Request, head []byte) (finish func(rest []byte)) {
	pr, pw := io.Pipe()
	req.Body, req.GetBody = pr, nil
	written := make(chan struct{})
	go func() {
		defer close(written)
		pw.Write(head) //nolint:errcheck // a failed write shows as the request's error
	}()
	return func(rest []byte) {
		<-written
		if rest == nil {
			pw.CloseWithError(io.ErrClosedPipe)
			return
		}
		pw.Write(rest) //nolint:errcheck
		pw.Close()
	}
}

// sendAsync sends req and delivers its answer (or error) on the channel.
func sendAsync(req *http.Request) <-chan string {
	done := make(chan string, 1)
	go func() {
		a, err := gatewaytest.SendRequest(req)
		if err != nil {
			done <- "error: " + err.Error()
			return
		}
		done <- a.String()
	}()
	return done
}

// TestTamperedSmallBodyRefused: a small body whose hash the client signed
// (Content-MD5, x-jdcloud-content-sha256, x-amz-content-sha256) is
// verified before the next handler runs, so a tampered one is refused even
// by a route that never reads it; an intact one reaches the next handler
// whole.
func TestTamperedSmallBodyRefused(t *testing.T) {
	n := gatewaytest.Start(t, "tamper", "", bodyRoutes)
	c := n.AuthorizedKey("tamper", "orders")
	signed, tampered := []byte(`{"amount":10}`), []byte(`{"amount":99}`)
	for _, tc := range []struct {
		name   string
		scheme signature.Scheme
		opts   []signature.Option
	}{
		{"aliyun Content-MD5", signature.Aliyun, nil},
		{"jdcloud2 x-jdcloud-content-sha256", signature.JDCloud2, []signature.Option{signature.WithContentSHA256()}},
		{"sigv4 x-amz-content-sha256", signature.SigV4, []signature.Option{signature.WithContentSHA256()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			post := func(path string) *http.Request {
				return signedPost(t, n, tc.scheme, c.APIKey, c.APISecret, path, "application/json", signed, tc.opts...)
			}
			gatewaytest.WantAnswer(t, "the signed body", n.Send(post("/x")), http.StatusOK, "")
			echoed := n.Send(post("/echo"))
			if echoed.Status != http.StatusOK || echoed.Body != string(signed) {
				t.Fatalf("the signed body at /echo: got %s, want 200 %q", echoed, signed)
			}
			req := post("/tampered") // sigv4's nonce is its signature: another path, another one
			req.Body, req.GetBody = io.NopCloser(bytes.NewReader(tampered)), nil
			gatewaytest.WantAnswer(t, "a tampered body", n.Send(req), http.StatusUnauthorized, "signature_mismatch")
		})
	}
}

// TestBadSignatureRefusedBeforeBody: a request whose content hash header
// is signed is refused for a wrong signature before its body is read: a
// client that sends the headers and a little of the body, then stalls, gets
// its 401 at once, whether the body is one that would be verified before
// the request goes on (1 MiB at most) or one that would stream.
func TestBadSignatureRefusedBeforeBody(t *testing.T) {
	n := gatewaytest.Start(t, "stall", "", bodyRoutes)
	c := n.AuthorizedKey("stall", "orders")
	for _, size := range []int{512 << 10, 64 << 20} {
		t.Run(fmt.Sprintf("%d bytes", size), func(t *testing.T) {
			body := make([]byte, size)
			req := signedPost(t, n, signature.JDCloud2, c.APIKey, "not-"+c.APISecret, "/x", "application/octet-stream", body, signature.WithContentSHA256())
			finish := stall(req, body[:16<<10])
			defer finish(nil)
			select {
			case got := <-sendAsync(req):
				if want := "401 signature_mismatch"; got != want {
					t.Fatalf("got %s, want %s", got, want)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no answer within 5s while the body stalls: the answer waits on the unread body")
			}
		})
	}
}

// TestBodyBufferBudget: bodies that must be read before their signature can
// be checked (no content hash header) share the node's body_buffer. While
// stalled clients hold it, further such requests are refused at once with
// 503 overloaded (for want of bytes, then of bodies), never anything else;
// once the stalled requests complete they pass and the budget is free again.
func TestBodyBufferBudget(t *testing.T) {
	n := gatewaytest.Start(t, "budget", "\t\tbody_buffer {\n\t\t\tmax_bytes 3MiB\n\t\t\tmax_bodies 2\n\t\t}", bodyRoutes)
	c := n.AuthorizedKey("budget", "orders")
	post := func(size int) (*http.Request, []byte) {
		body := bytes.Repeat([]byte("b"), size)
		return signedPost(t, n, signature.JDCloud2, c.APIKey, c.APISecret, "/x", "application/octet-stream", body), body
	}
	inUse := func(want float64) {
		t.Helper()
		gatewaytest.Eventually(t, 5*time.Second, fmt.Sprintf("%v bodies buffered", want), func() error {
			if got := n.Metric("caddy_access_auth_body_buffer_bodies", ""); got != want {
				return fmt.Errorf("caddy_access_auth_body_buffer_bodies = %v", got)
			}
			return nil
		})
	}
	const head = 64 << 10

	// A 2 MiB body (spooled to a file) holds 2 of the 3 MiB.
	large, largeBody := post(2 << 20)
	finishLarge := stall(large, largeBody[:head])
	largeDone := sendAsync(large)
	inUse(1)

	const concurrent = 8
	answers := make([]string, concurrent)
	var wg sync.WaitGroup
	for i := range answers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := post(2 << 20)
			if a, err := gatewaytest.SendRequest(req); err != nil {
				answers[i] = "error: " + err.Error()
			} else {
				answers[i] = a.String()
			}
		}()
	}
	wg.Wait()
	for i, got := range answers {
		if want := "503 overloaded"; got != want {
			t.Errorf("2 MiB body %d beyond the budget's bytes: got %s, want %s", i, got, want)
		}
	}

	// A small body fits the bytes; a second stalled one takes the last of
	// the two bodies.
	small, smallBody := post(512 << 10)
	finishSmall := stall(small, smallBody[:head])
	smallDone := sendAsync(small)
	inUse(2)
	tiny, _ := post(1 << 10)
	gatewaytest.WantAnswer(t, "a body beyond the budget's count", n.Send(tiny), http.StatusServiceUnavailable, "overloaded")
	if got := n.Metric("caddy_access_auth_body_buffer_refused_total", ""); got != concurrent+1 {
		t.Errorf("caddy_access_auth_body_buffer_refused_total = %v, want %d", got, concurrent+1)
	}
	if got := n.Metric("caddy_access_auth_requests_total", `group="orders",reason="overloaded",result="denied"`); got != concurrent+1 {
		t.Errorf("requests_total{reason=\"overloaded\"} = %v, want %d", got, concurrent+1)
	}

	finishLarge(largeBody[head:])
	finishSmall(smallBody[head:])
	for what, done := range map[string]<-chan string{"the stalled 2 MiB body": largeDone, "the stalled 512 KiB body": smallDone} {
		select {
		case got := <-done:
			if got != `200 "ok"` {
				t.Errorf("%s, completed: got %s, want 200", what, got)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no answer within 10s of completing it", what)
		}
	}
	inUse(0)
	again, _ := post(2 << 20)
	gatewaytest.WantAnswer(t, "a 2 MiB body once the budget is free", n.Send(again), http.StatusOK, "")
}

// TestAliyunFormParameters: an Alibaba form's parameters are signed, so
// its body is read and parsed before the signature can be checked; a form
// of more parameters than the gateway parses is refused as too large
// without sorting them, one of a few passes.
func TestAliyunFormParameters(t *testing.T) {
	n := gatewaytest.Start(t, "form", "", bodyRoutes)
	c := n.AuthorizedKey("form", "orders")
	form := func(params int) []byte {
		var b strings.Builder
		for i := range params {
			if i > 0 {
				b.WriteByte('&')
			}
			fmt.Fprintf(&b, "p%d=%d", i, i)
		}
		return []byte(b.String())
	}
	const formType = "application/x-www-form-urlencoded"
	few := signedPost(t, n, signature.Aliyun, c.APIKey, c.APISecret, "/x", formType, form(100))
	gatewaytest.WantAnswer(t, "a form of 100 parameters", n.Send(few), http.StatusOK, "")
	many := signedPost(t, n, signature.Aliyun, c.APIKey, c.APISecret, "/x", formType, form(80_000))
	gatewaytest.WantAnswer(t, "a form of 80000 parameters", n.Send(many), http.StatusRequestEntityTooLarge, "body_too_large")
}

// TestMalformedContentMD5Refused: an Alibaba request whose Content-MD5 is
// not the Base64 of an MD5 is refused as signature_mismatch, whatever its
// length (a long one once overran the decoding buffer: a panic, no answer).
func TestMalformedContentMD5Refused(t *testing.T) {
	n := gatewaytest.Start(t, "md5", "", bodyRoutes)
	c := n.AuthorizedKey("md5", "orders")
	for _, tc := range []struct{ name, contentMD5 string }{
		{"not base64", "not base64 at all!!!!!!!"},
		{"a SHA-256", base64.StdEncoding.EncodeToString(make([]byte, 32))},
		{"longer than a SHA-256", base64.StdEncoding.EncodeToString(make([]byte, 64))},
		{"4 KiB", base64.StdEncoding.EncodeToString(make([]byte, 3<<10))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, contentType := range []string{"application/json", "application/x-www-form-urlencoded"} {
				req := signedPost(t, n, signature.Aliyun, c.APIKey, c.APISecret, "/x", contentType, []byte("a=1"))
				req.Header.Set("Content-MD5", tc.contentMD5)
				gatewaytest.WantAnswer(t, contentType, n.Send(req), http.StatusUnauthorized, "signature_mismatch")
			}
		})
	}
}
