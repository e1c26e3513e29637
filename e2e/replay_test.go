package e2e

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/accessauth/caddy-access-auth/internal/gatewaytest"
	"github.com/accessauth/caddy-access-auth/signature"
)

// sharedHost is the Host a request signed for several nodes carries.
const sharedHost = "api.example.test"

// signedFor signs one request for sharedHost and returns a copy of it
// addressed to each node, all with the same headers and signature.
func signedFor(t *testing.T, c gatewaytest.Credentials, nodes ...*gatewaytest.Node) []*http.Request {
	t.Helper()
	orig, err := http.NewRequest(http.MethodGet, "http://"+sharedHost+"/x", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := signature.Sign(orig, signature.JDCloud2, c.APIKey, c.APISecret); err != nil {
		t.Fatal(err)
	}
	reqs := make([]*http.Request, len(nodes))
	for i, n := range nodes {
		r, err := http.NewRequest(http.MethodGet, n.Site+"/x", nil)
		if err != nil {
			t.Fatal(err)
		}
		r.Host = sharedHost
		r.Header = orig.Header.Clone()
		reqs[i] = r
	}
	return reqs
}

// TestReplayAcrossNodes: with replay_protection auto (store, with Redis) a
// request accepted by one node is refused as a replay by the other, and by
// itself.
func TestReplayAcrossNodes(t *testing.T) {
	a, b, _ := twoNodes(t)
	c := a.CreateKey("replayed")
	a.Authorize(c.ID, "orders")

	for _, order := range [][2]*gatewaytest.Node{{a, b}, {b, a}} {
		first, second := order[0], order[1]
		reqs := signedFor(t, c, first, second, first)
		gatewaytest.WantAnswer(t, "accepted at "+first.Name, first.Send(reqs[0]), http.StatusOK, "")
		gatewaytest.WantAnswer(t, "replayed at "+second.Name, second.Send(reqs[1]), http.StatusUnauthorized, "replayed_nonce")
		gatewaytest.WantAnswer(t, "replayed at "+first.Name, first.Send(reqs[2]), http.StatusUnauthorized, "replayed_nonce")
	}
	// A fresh nonce still passes at both.
	gatewaytest.WantAnswer(t, "fresh request at A", a.Call(c), http.StatusOK, "")
	gatewaytest.WantAnswer(t, "fresh request at B", b.Call(c), http.StatusOK, "")
}

// TestFullLocalNonceTable: a node whose nonce table is full (local_nonces
// sized for one nonce: one bucket of 10) never lets a replay through. Once
// it had to drop the oldest request's nonce, the replay of that request and
// any request signed as long ago are refused as date_out_of_range; a
// request signed since passes; the metric counts the dropped nonce and the
// log warns.
func TestFullLocalNonceTable(t *testing.T) {
	n := gatewaytest.Start(t, "full", "\t\tlocal_nonces 1", "\taccess_auth orders {\n\t\treplay_protection local\n\t}\n\trespond \"ok\"")
	c := n.AuthorizedKey("flood", "orders")
	// Dates a minute ahead: a node that started without a saved table
	// refuses requests dated before its start.
	now := time.Now().Add(time.Minute)
	signed := func(age time.Duration, nonce string) *http.Request {
		return n.SignedRequest("/x", c, signature.WithTime(now.Add(-age)), signature.WithNonce(nonce))
	}
	for i := range 10 {
		age := time.Duration(30-i) * time.Second
		gatewaytest.WantAnswer(t, fmt.Sprintf("request signed %v ago", age), n.Send(signed(age, "n-"+strconv.Itoa(i))), http.StatusOK, "")
	}
	gatewaytest.WantAnswer(t, "a request that fills the table", n.Send(signed(0, "n-new")), http.StatusOK, "")
	gatewaytest.WantAnswer(t, "the replay of the dropped request", n.Send(signed(30*time.Second, "n-0")), http.StatusUnauthorized, "date_out_of_range")
	gatewaytest.WantAnswer(t, "another request as old", n.Send(signed(30*time.Second, "n-other")), http.StatusUnauthorized, "date_out_of_range")
	gatewaytest.WantAnswer(t, "the replay of a request still held", n.Send(signed(25*time.Second, "n-5")), http.StatusUnauthorized, "replayed_nonce")
	gatewaytest.WantAnswer(t, "a request signed since", n.Send(signed(20*time.Second, "n-since")), http.StatusOK, "")

	if got := n.Metric("caddy_access_auth_local_nonces_displaced_total", `narrowing="true"`); got < 1 {
		t.Errorf("local_nonces_displaced_total{narrowing=\"true\"} = %v, want at least 1", got)
	}
	gatewaytest.Eventually(t, 15*time.Second, "the warning", func() error {
		if !strings.Contains(n.Logs(), "nonce table is full") {
			return errors.New("not in the log")
		}
		return nil
	})
}

// TestReencodedReplays: a node refuses a request it accepted, re-sent with
// its nonce, date, signature or credentials written another way on the wire
// — as a replay where the signature still covers it (JDCLOUD2 signs runs
// of spaces as one), as malformed credentials where a header read once
// comes on two lines (JD Cloud's canonical headers join them with ',', so
// a nonce "A,B" on two lines verified, read as "A") or a signature is
// spelled another way, as a mismatch where the signature covers the change.
func TestReencodedReplays(t *testing.T) {
	n := gatewaytest.Start(t, "reencoded", "", ordersSite)
	c := n.AuthorizedKey("reencoder", "orders")

	// onTwoLines sends a header on two lines, cut at its comma or in the middle.
	onTwoLines := func(name string) func(h http.Header) {
		return func(h http.Header) {
			v := h.Get(name)
			if first, second, ok := strings.Cut(v, ","); ok {
				h[name] = []string{first, second}
			} else {
				h[name] = []string{v[:len(v)/2], v[len(v)/2:]}
			}
		}
	}
	repeated := func(name string) func(h http.Header) {
		return func(h http.Header) { h.Add(name, h.Get(name)) }
	}
	respaced := func(name string) func(h http.Header) {
		return func(h http.Header) { h.Set(name, strings.Replace(h.Get(name), " ", "  ", 1)) }
	}
	tests := []struct {
		scheme signature.Scheme
		nonce  string
		name   string
		resend func(h http.Header)
		reason string
	}{
		{signature.JDCloud2, "abc def", "nonce with a double space", respaced("X-Jdcloud-Nonce"), "replayed_nonce"},
		{signature.JDCloud2, "A,B", "nonce on two lines", onTwoLines("X-Jdcloud-Nonce"), "malformed_credentials"},
		{signature.JDCloud2, "n", "nonce repeated", repeated("X-Jdcloud-Nonce"), "malformed_credentials"},
		{signature.JDCloud2, "n", "date repeated", repeated("X-Jdcloud-Date"), "malformed_credentials"},
		{signature.JDCloud2, "n", "Authorization repeated", repeated("Authorization"), "malformed_credentials"},
		{signature.JDCloud3, "abc def", "nonce with a double space", respaced("X-Jdcloud-Nonce"), "signature_mismatch"},
		{signature.JDCloud3, "A,B", "nonce on two lines", onTwoLines("X-Jdcloud-Nonce"), "malformed_credentials"},
		{signature.SigV4, "", "signature in upper case", func(h http.Header) {
			auth := h.Get("Authorization")
			i := strings.Index(auth, "Signature=") + len("Signature=")
			h.Set("Authorization", auth[:i]+strings.ToUpper(auth[i:]))
		}, "malformed_credentials"},
		{signature.SigV4, "", "date on two lines", onTwoLines("X-Amz-Date"), "malformed_credentials"},
		{signature.Aliyun, "abc def", "nonce with a double space", respaced("X-Ca-Nonce"), "signature_mismatch"},
		{signature.Aliyun, "A,B", "nonce on two lines", onTwoLines("X-Ca-Nonce"), "malformed_credentials"},
		{signature.Aliyun, "n", "nonce repeated", repeated("X-Ca-Nonce"), "malformed_credentials"},
		{signature.Aliyun, "n", "key repeated", repeated("X-Ca-Key"), "malformed_credentials"},
		{signature.Aliyun, "n", "signature with its padding bits set", func(h http.Header) {
			sig := h.Get("X-Ca-Signature")
			h.Set("X-Ca-Signature", sig[:42]+string(base64Digits[strings.IndexByte(base64Digits, sig[42])|3])+"=")
		}, "malformed_credentials"},
	}
	for i, tt := range tests {
		step := fmt.Sprintf("%s %s", tt.scheme, tt.name)
		var opts []signature.Option
		if tt.nonce != "" {
			opts = append(opts, signature.WithNonce(strconv.Itoa(i)+tt.nonce))
		}
		req, err := http.NewRequest(http.MethodGet, n.Site+"/x?row="+strconv.Itoa(i), nil) // SigV4's nonce, the signature, differs
		if err != nil {
			t.Fatal(err)
		}
		if err := signature.Sign(req, tt.scheme, c.APIKey, c.APISecret, opts...); err != nil {
			t.Fatal(err)
		}
		resent := req.Clone(req.Context())
		tt.resend(resent.Header)
		gatewaytest.WantAnswer(t, step+": as signed", n.Send(req), http.StatusOK, "")
		gatewaytest.WantAnswer(t, step+": re-sent as is", n.Send(req.Clone(req.Context())), http.StatusUnauthorized, "replayed_nonce")
		gatewaytest.WantAnswer(t, step+": re-sent", n.Send(resent), http.StatusUnauthorized, tt.reason)
	}
}

// base64Digits are the digits of standard Base64, in order of value.
const base64Digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

// TestReplayDuringRedisOutage: with replay protection in Redis, a request
// the node accepted while Redis was up is refused as a replay by the same
// node once Redis is down, when only the node's own table can tell.
func TestReplayDuringRedisOutage(t *testing.T) {
	a, _, srv := twoNodes(t)
	c := a.CreateKey("outage-replay")
	a.Authorize(c.ID, "orders")
	a.Warm(c)
	reqs := signedFor(t, c, a, a)
	gatewaytest.WantAnswer(t, "accepted with Redis up", a.Send(reqs[0]), http.StatusOK, "")

	srv.Stop()
	gatewaytest.WantAnswer(t, "replayed with Redis down", a.Send(reqs[1]), http.StatusUnauthorized, "replayed_nonce")
	gatewaytest.WantAnswer(t, "a fresh request with Redis down", a.Call(c), http.StatusOK, "")
}
