package e2e

import (
	"net/http"
	"testing"

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
