package e2e

import (
	"net/http"
	"testing"

	"github.com/accessauth/caddy-access-auth/signature"
)

// sharedHost is the Host a request signed for several nodes carries.
const sharedHost = "api.example.test"

// signedFor signs one request for sharedHost and returns a copy of it
// addressed to each node, all with the same headers and signature.
func signedFor(t *testing.T, c credentials, nodes ...*node) []*http.Request {
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
		r, err := http.NewRequest(http.MethodGet, n.site+"/x", nil)
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
	c := a.createKey("replayed")
	a.authorize(c.ID, "orders")

	for _, order := range [][2]*node{{a, b}, {b, a}} {
		first, second := order[0], order[1]
		reqs := signedFor(t, c, first, second, first)
		want(t, "accepted at "+first.name, first.send(reqs[0]), http.StatusOK, "")
		want(t, "replayed at "+second.name, second.send(reqs[1]), http.StatusUnauthorized, "replayed_nonce")
		want(t, "replayed at "+first.name, first.send(reqs[2]), http.StatusUnauthorized, "replayed_nonce")
	}
	// A fresh nonce still passes at both.
	want(t, "fresh request at A", a.call(c), http.StatusOK, "")
	want(t, "fresh request at B", b.call(c), http.StatusOK, "")
}
