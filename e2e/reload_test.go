package e2e

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/accessauth/caddy-access-auth/internal/gatewaytest"
	"github.com/accessauth/caddy-access-auth/internal/redistest"
)

// TestReloadKeepsConnections reloads a running Caddy through its admin
// endpoint's /load (what `caddy reload` does): with the store
// configuration unchanged the node keeps its very Redis connections (the
// CLIENT LIST ids stay), with another one it closes them all and opens new
// ones.
func TestReloadKeepsConnections(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()
	masterKey := gatewaytest.NewMasterKey(t)
	opts := func(prefix string) string {
		return gatewaytest.RedisOptions(masterKey, "redis://"+srv.Addr) + "\nkey_prefix " + prefix
	}
	site := func(generation int) string {
		return fmt.Sprintf("\taccess_auth orders\n\trespond \"generation %d\"", generation)
	}
	n := gatewaytest.Start(t, "reloaded", opts("first"), site(0))
	n.WaitGroup("orders")
	c := n.CreateKey("reload")
	n.Authorize(c.ID, "orders")
	// serves checks that the latest config answers. A connection the old
	// config's server accepted as it stopped may be closed under the
	// request: like any client, the test then retries.
	serves := func(generation int) {
		t.Helper()
		var got gatewaytest.Answer
		var err error
		for range 3 {
			if got, err = gatewaytest.SendRequest(n.SignedRequest("/x", c)); err == nil {
				break
			}
			gatewaytest.Client.CloseIdleConnections()
		}
		if err != nil || got.Status != http.StatusOK || got.Body != fmt.Sprintf("generation %d", generation) {
			t.Fatalf("after reload %d: %s %v", generation, got, err)
		}
	}
	serves(0)
	before := clientIDs(t, rdb)

	for generation := 1; generation <= 5; generation++ {
		n.Reload(opts("first"), site(generation))
		serves(generation)
		// The pool may open a connection for concurrent work (the routes
		// register their group on each start), but it keeps the old ones,
		// and a new client per reload would add at least its feed's.
		after := clientIDs(t, rdb)
		for id := range before {
			if !after[id] {
				t.Fatalf("reload %d with the same store config closed Redis connection %s:\nbefore %v\nafter  %v",
					generation, id, slices.Sorted(maps.Keys(before)), slices.Sorted(maps.Keys(after)))
			}
		}
		if len(after) > len(before)+2 {
			t.Fatalf("reload %d with the same store config: %d Redis connections, %d before the reloads",
				generation, len(after), len(before))
		}
	}

	n.Reload(opts("second"), site(6))
	n.WaitGroup("orders")
	c = n.CreateKey("reload-second")
	n.Authorize(c.ID, "orders")
	serves(6)
	gatewaytest.Eventually(t, 5*time.Second, "the old client's connections closed", func() error {
		after := clientIDs(t, rdb)
		for id := range after {
			if before[id] {
				return fmt.Errorf("connection %s of the old client still open", id)
			}
		}
		if len(after) == 0 {
			return fmt.Errorf("no connection of the new client")
		}
		return nil
	})
}

// clientIDs returns the ids of the connections to Redis but this test's.
func clientIDs(t *testing.T, rdb *redis.Client) map[string]bool {
	t.Helper()
	ctx := context.Background()
	own, err := rdb.ClientID(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	list, err := rdb.ClientList(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for line := range strings.Lines(list) {
		id, _, _ := strings.Cut(strings.TrimPrefix(line, "id="), " ")
		if id != fmt.Sprint(own) && id != "" {
			ids[id] = true
		}
	}
	return ids
}
