package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/accessauth/caddy-access-auth/internal/gatewaytest"
	"github.com/accessauth/caddy-access-auth/internal/redistest"
)

// expect polls the node with freshly signed requests until it answers
// with status and reason, within maxPropagation of the call.
func expect(t *testing.T, n *gatewaytest.Node, c gatewaytest.Credentials, status int, reason, step string) {
	t.Helper()
	gatewaytest.Eventually(t, maxPropagation, step, func() error {
		if got := n.Call(c); got.Status != status || got.Reason != reason {
			return fmt.Errorf("%s answers %s", n.Name, got)
		}
		return nil
	})
}

// TestSentinel runs a node on Sentinel (the block form of store redis),
// kills the master and checks that keys still authenticate and admin
// writes succeed once the replica took over.
func TestSentinel(t *testing.T) {
	s := redistest.StartSentinel(t)
	opts := "store redis {\naddrs " + strings.Join(s.SentinelAddrs(), " ") + "\nmaster_name " + redistest.MasterName +
		"\n}\nmaster_key " + gatewaytest.NewMasterKey(t)
	n := gatewaytest.Start(t, "sentinel", opts, ordersSite)
	n.WaitGroup("orders")
	before := n.CreateKey("before-failover")
	n.Authorize(before.ID, "orders")
	n.Warm(before)
	// Everything written so far is on the replica before the master dies.
	master := redis.NewClient(&redis.Options{Addr: s.Master.Addr})
	if err := master.Wait(context.Background(), 1, 5*time.Second).Err(); err != nil {
		t.Fatalf("WAIT for the replica: %v", err)
	}
	master.Close()

	s.Master.Stop()
	killed := time.Now()
	gatewaytest.WantAnswer(t, "master down: cached key", n.Call(before), http.StatusOK, "")
	gatewaytest.Eventually(t, redistest.FailoverTimeout, "failover", func() error {
		addr, err := s.MasterAddr(context.Background())
		if err != nil {
			return err
		}
		if addr != s.Replica.Addr {
			return fmt.Errorf("the sentinels still name %s as the master", addr)
		}
		return nil
	})
	t.Logf("the sentinels promoted the replica %v after the master died", time.Since(killed).Round(time.Millisecond))

	// The client follows the new master: the first write may still meet
	// the old one's address, later ones must succeed.
	var after gatewaytest.Credentials
	attempt := 0
	gatewaytest.Eventually(t, 10*time.Second, "an admin write after the failover", func() error {
		attempt++
		status, body := n.Request(http.MethodPost, "/access-auth/keys", map[string]any{"name": fmt.Sprintf("after-failover-%d", attempt)})
		if status != http.StatusCreated {
			return fmt.Errorf("create key: %d %s", status, body)
		}
		return gatewaytest.DecodeJSON(body, &after)
	})
	t.Logf("admin writes succeed %v after the master died", time.Since(killed).Round(time.Millisecond))
	n.Authorize(after.ID, "orders")
	gatewaytest.WantAnswer(t, "a key created after the failover", n.Call(after), http.StatusOK, "")
	gatewaytest.WantAnswer(t, "a key created before the failover", n.Call(before), http.StatusOK, "")
	n.AdminJSON(http.MethodPatch, "/access-auth/keys/"+before.ID, map[string]any{"enabled": false}, http.StatusOK, nil)
	expect(t, n, before, http.StatusUnauthorized, "invalid_key", "disabling a key after the failover")
}

// TestCluster runs two nodes on a three-master Cluster (several URLs) and
// goes through the whole admin API, each write made at A and checked by
// signed requests at B.
func TestCluster(t *testing.T) {
	c := redistest.StartCluster(t)
	a, b := clusterNodes(t, c)
	a.WaitGroup("orders")

	a.AdminJSON(http.MethodPost, "/access-auth/groups", map[string]any{"name": "billing", "description": "invoices"}, http.StatusCreated, nil)
	key := a.CreateKey("cluster-alice")
	auth := a.Authorize(key.ID, "billing")
	gatewaytest.WantAnswer(t, "bound to another group", b.Call(key), http.StatusForbidden, "not_authorized")

	binding := "/access-auth/authorizations/" + auth + "/bindings/orders"
	a.AdminJSON(http.MethodPut, binding, nil, http.StatusOK, nil)
	expect(t, b, key, http.StatusOK, "", "bind")
	var list struct {
		Items []map[string]any `json:"items"`
	}
	a.AdminJSON(http.MethodGet, "/access-auth/keys/"+key.ID+"/groups", nil, http.StatusOK, &list)
	if len(list.Items) != 2 {
		t.Errorf("the key's groups: %v, want billing and orders", list.Items)
	}
	a.AdminJSON(http.MethodGet, "/access-auth/groups/orders/authorizations", nil, http.StatusOK, &list)
	if len(list.Items) != 1 || list.Items[0]["id"] != auth {
		t.Errorf("authorizations bound to orders: %v", list.Items)
	}

	a.AdminJSON(http.MethodDelete, binding, nil, http.StatusNoContent, nil)
	expect(t, b, key, http.StatusForbidden, "not_authorized", "unbind")
	a.AdminJSON(http.MethodPut, binding, nil, http.StatusOK, nil)
	expect(t, b, key, http.StatusOK, "", "bind again")

	a.AdminJSON(http.MethodPatch, "/access-auth/authorizations/"+auth, map[string]any{"enabled": false}, http.StatusOK, nil)
	expect(t, b, key, http.StatusForbidden, "not_authorized", "authorization disabled")
	a.AdminJSON(http.MethodPatch, "/access-auth/authorizations/"+auth, map[string]any{"enabled": true}, http.StatusOK, nil)
	expect(t, b, key, http.StatusOK, "", "authorization enabled")

	a.AdminJSON(http.MethodPatch, "/access-auth/keys/"+key.ID, map[string]any{"enabled": false}, http.StatusOK, nil)
	expect(t, b, key, http.StatusUnauthorized, "invalid_key", "key disabled")
	a.AdminJSON(http.MethodPatch, "/access-auth/keys/"+key.ID, map[string]any{"enabled": true}, http.StatusOK, nil)
	expect(t, b, key, http.StatusOK, "", "key enabled")

	old := key
	a.AdminJSON(http.MethodPost, "/access-auth/keys/"+key.ID+"/reset", map[string]any{}, http.StatusOK, &key)
	expect(t, b, old, http.StatusUnauthorized, "signature_mismatch", "the old secret after a reset")
	gatewaytest.WantAnswer(t, "the new secret", b.Call(key), http.StatusOK, "")

	// Replay protection spreads its nonces over the Cluster's nodes.
	reqs := signedFor(t, key, a, b)
	gatewaytest.WantAnswer(t, "accepted at A", a.Send(reqs[0]), http.StatusOK, "")
	gatewaytest.WantAnswer(t, "replayed at B", b.Send(reqs[1]), http.StatusUnauthorized, "replayed_nonce")

	status, export := a.Request(http.MethodGet, "/access-auth/export", nil)
	if status != http.StatusOK || !strings.Contains(string(export), key.APIKey) || !strings.Contains(string(export), "billing") {
		t.Errorf("export: %d %s", status, gatewaytest.Tail(string(export), 300))
	}
	var audit struct {
		Items []map[string]any `json:"items"`
	}
	a.AdminJSON(http.MethodGet, "/access-auth/audit", nil, http.StatusOK, &audit)
	if len(audit.Items) < 10 {
		t.Errorf("audit: %d records, want one per write", len(audit.Items))
	}

	a.AdminJSON(http.MethodDelete, "/access-auth/keys/"+key.ID, nil, http.StatusConflict, nil)
	a.AdminJSON(http.MethodDelete, "/access-auth/authorizations/"+auth, nil, http.StatusNoContent, nil)
	expect(t, b, key, http.StatusForbidden, "not_authorized", "authorization deleted")
	a.AdminJSON(http.MethodDelete, "/access-auth/keys/"+key.ID, nil, http.StatusNoContent, nil)
	expect(t, b, key, http.StatusUnauthorized, "invalid_key", "key deleted")
	a.AdminJSON(http.MethodDelete, "/access-auth/groups/billing", nil, http.StatusNoContent, nil)
	a.AdminJSON(http.MethodGet, "/access-auth/groups/billing", nil, http.StatusNotFound, nil)
}

// clusterNodes starts nodes A and B on Cluster c, every master's URL given.
func clusterNodes(t *testing.T, c *redistest.Cluster) (a, b *gatewaytest.Node) {
	var urls []string
	for _, addr := range c.Addrs() {
		urls = append(urls, "redis://"+addr)
	}
	opts := gatewaytest.RedisOptions(gatewaytest.NewMasterKey(t), urls...)
	return gatewaytest.Start(t, "A", opts, ordersSite), gatewaytest.Start(t, "B", opts, ordersSite)
}
