package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/accessauth/caddy-access-auth/internal/gatewaytest"
	"github.com/accessauth/caddy-access-auth/internal/redistest"
)

// cutWrites is how long keys are created while the master's replicas are
// cut off.
const cutWrites = 1500 * time.Millisecond

// followBound bounds how long after Redis promoted a replica a node may
// take to serve admin calls and uncached keys again. The target is 5 s;
// the rest is room for a loaded machine.
const followBound = 15 * time.Second

// TestSentinelFailoverKeepsAcknowledgedWrites creates keys while the
// master's replica is cut off, kills the master and checks that every
// creation the node acknowledged is there once the replica took over.
func TestSentinelFailoverKeepsAcknowledgedWrites(t *testing.T) {
	s := redistest.StartSentinel(t)
	opts := "store redis {\naddrs " + strings.Join(s.SentinelAddrs(), " ") + "\nmaster_name " + redistest.MasterName +
		"\n}\nmaster_key " + gatewaytest.NewMasterKey(t)
	a := gatewaytest.Start(t, "A", opts, ordersSite)
	b := gatewaytest.Start(t, "B", opts, ordersSite)
	failOver(t, a, b, s.Master, func(ctx context.Context) error {
		addr, err := s.MasterAddr(ctx)
		if err == nil && addr != s.Replica.Addr {
			err = fmt.Errorf("the sentinels still name %s as the master", addr)
		}
		return err
	})
}

// TestClusterFailoverKeepsAcknowledgedWrites does the same on a Cluster of
// three masters and three replicas, to the master of the data set's slot,
// and checks that the node follows the promotion within followBound.
func TestClusterFailoverKeepsAcknowledgedWrites(t *testing.T) {
	c := redistest.StartClusterWithReplicas(t)
	a, b := clusterNodes(t, c)
	master, replica := c.Shard(t, "{access_auth}")
	failOver(t, a, b, master, func(ctx context.Context) error {
		role, err := replica.Role(ctx)
		if err == nil && role != "master" {
			err = fmt.Errorf("the replica is still a %s", role)
		}
		return err
	})
}

// failOver cuts master off its replicas, creates keys at n for cutWrites,
// kills master, waits until promoted says the replica took over, and then
// checks that n serves again within followBound, that no acknowledged
// creation was lost, and that other's change feed follows the promotion.
func failOver(t *testing.T, n, other *gatewaytest.Node, master *redistest.Server, promoted func(context.Context) error) {
	n.WaitGroup("orders")
	uncached := n.CreateKey("uncached") // never called before the failover
	n.Authorize(uncached.ID, "orders")
	cached := n.CreateKey("cached")
	n.Authorize(cached.ID, "orders")
	other.Warm(cached)

	master.CutReplicas()
	acked, refused := createKeys(t, n, cutWrites)
	t.Logf("replicas cut off: %d creations acknowledged, %d answered 503", len(acked), refused)

	master.Stop()
	killed := time.Now()
	gatewaytest.Eventually(t, redistest.FailoverTimeout, "the replica's promotion", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return promoted(ctx)
	})
	promotedAt := time.Now()
	t.Logf("the replica was promoted %v after the master died", promotedAt.Sub(killed).Round(time.Millisecond))

	attempt := 0
	gatewaytest.Eventually(t, followBound, "admin calls and uncached keys after the promotion", func() error {
		attempt++
		if got := n.Call(uncached); got.Status != http.StatusOK {
			return fmt.Errorf("uncached key: %s", got)
		}
		status, body := n.Request(http.MethodPost, "/access-auth/keys", map[string]any{"name": fmt.Sprintf("after-%d", attempt)})
		if status != http.StatusCreated {
			return fmt.Errorf("create key: %d %s", status, body)
		}
		return nil
	})
	t.Logf("the node served again %v after the promotion", time.Since(promotedAt).Round(time.Millisecond))

	lost := 0
	for _, id := range acked {
		switch status, body := n.Request(http.MethodGet, "/access-auth/keys/"+id, nil); status {
		case http.StatusOK:
		case http.StatusNotFound:
			lost++
		default:
			t.Fatalf("reading key %s: %d %s", id, status, body)
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d acknowledged creations were lost in the failover", lost, len(acked))
	}

	n.AdminJSON(http.MethodPatch, "/access-auth/keys/"+cached.ID, map[string]any{"enabled": false}, http.StatusOK, nil)
	expect(t, other, cached, http.StatusUnauthorized, "invalid_key", "a write after the promotion at the other node")
}

// createKeys creates keys one after another for d and returns the IDs of
// those acknowledged (201) and how many were refused with 503
// store_unavailable; any other answer fails the test.
func createKeys(t *testing.T, n *gatewaytest.Node, d time.Duration) (acked []string, refused int) {
	t.Helper()
	for i, end := 0, time.Now().Add(d); time.Now().Before(end); i++ {
		status, body := n.Request(http.MethodPost, "/access-auth/keys", map[string]any{"name": fmt.Sprintf("cut-%d", i)})
		var answer struct{ ID, Code string }
		if err := gatewaytest.DecodeJSON(body, &answer); err != nil {
			t.Fatalf("create key: %d %s: %v", status, body, err)
		}
		switch {
		case status == http.StatusCreated:
			acked = append(acked, answer.ID)
		case status == http.StatusServiceUnavailable && answer.Code == "store_unavailable":
			refused++
		default:
			t.Fatalf("create key with the replicas cut off: %d %s", status, body)
		}
	}
	return acked, refused
}
