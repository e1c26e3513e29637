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
