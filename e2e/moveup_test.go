package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/accessauth/caddy-access-auth/internal/gatewaytest"
	"github.com/accessauth/caddy-access-auth/internal/redistest"
)

// TestMoveUpToRedis exports the data of a node on the embedded file store
// and imports it into a node on Redis configured with the file store's
// master key (docs/admin-api.md, issue 3 item 6): every key keeps working, disabled
// stays disabled, a rotation's grace secret survives, and no secret is
// stored in the clear in Redis. A Redis node with another master key
// refuses the import.
func TestMoveUpToRedis(t *testing.T) {
	storeDir := t.TempDir()
	dbPath := filepath.Join(storeDir, "store.db")
	f := gatewaytest.Start(t, "file", "store file "+dbPath, ordersSite)
	f.WaitGroup("orders")
	f.AdminJSON(http.MethodPost, "/access-auth/groups", map[string]any{"name": "billing"}, http.StatusCreated, nil)

	generated := f.CreateKey("generated")
	f.Authorize(generated.ID, "orders")
	imported := f.ImportKey("imported", gatewaytest.RandomAPIKey(t), "imported-secret-"+gatewaytest.RandomAPIKey(t))
	f.Authorize(imported.ID, "orders", "billing")
	disabled := f.CreateKey("disabled")
	f.Authorize(disabled.ID, "orders")
	f.AdminJSON(http.MethodPatch, "/access-auth/keys/"+disabled.ID, map[string]any{"enabled": false}, http.StatusOK, nil)
	rotated := f.CreateKey("rotated")
	f.Authorize(rotated.ID, "orders")
	previous := rotated
	f.AdminJSON(http.MethodPost, "/access-auth/keys/"+rotated.ID+"/reset", map[string]any{"grace": "1h"}, http.StatusOK, &rotated)
	rotated.ID, rotated.APIKey = previous.ID, previous.APIKey // the reset answers the new secret

	working := map[string]gatewaytest.Credentials{"generated": generated, "imported": imported, "rotated": rotated, "rotated (grace)": previous}
	check := func(n *gatewaytest.Node) {
		t.Helper()
		for name, c := range working {
			gatewaytest.WantAnswer(t, name+" key at "+n.Name, n.Call(c), http.StatusOK, "")
		}
		gatewaytest.WantAnswer(t, "disabled key at "+n.Name, n.Call(disabled), http.StatusUnauthorized, "invalid_key")
	}
	check(f)

	status, export := f.Request(http.MethodGet, "/access-auth/export", nil)
	if status != http.StatusOK {
		t.Fatalf("export: status %d: %s", status, export)
	}
	for name, c := range working {
		if strings.Contains(string(export), c.APISecret) {
			t.Fatalf("the export holds the %s key's secret in the clear", name)
		}
	}
	masterKey, err := os.ReadFile(filepath.Join(storeDir, "master.key"))
	if err != nil {
		t.Fatalf("the file store's master key beside store.db: %v", err)
	}

	srv := redistest.Start(t, redistest.Options{})
	other := gatewaytest.Start(t, "redis-other-key", gatewaytest.RedisOptions(gatewaytest.NewMasterKey(t), "redis://"+srv.Addr)+"\nkey_prefix other", ordersSite)
	var refusal struct{ Code string }
	other.AdminJSON(http.MethodPost, "/access-auth/import", rawJSON(export), http.StatusBadRequest, &refusal)
	if refusal.Code != "invalid_argument" {
		t.Errorf("import under another master key: code %q, want invalid_argument", refusal.Code)
	}

	r := gatewaytest.Start(t, "redis", gatewaytest.RedisOptions(strings.TrimSpace(string(masterKey)), "redis://"+srv.Addr), ordersSite)
	r.AdminJSON(http.MethodPost, "/access-auth/import", rawJSON(export), http.StatusOK, nil)
	check(r)

	// No value in Redis holds a secret in the clear.
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()
	values := redisValues(t, rdb)
	if !strings.Contains(values, imported.APIKey) {
		t.Fatal("the scan of Redis did not find the imported data")
	}
	for name, c := range working {
		if strings.Contains(values, c.APISecret) {
			t.Errorf("Redis holds the %s key's secret in the clear", name)
		}
	}
}

// rawJSON is a request body sent as is.
type rawJSON []byte

func (r rawJSON) MarshalJSON() ([]byte, error) { return r, nil }

// redisValues returns every key and value of the Redis server as one text.
func redisValues(t *testing.T, rdb *redis.Client) string {
	t.Helper()
	ctx := context.Background()
	var b strings.Builder
	iter := rdb.Scan(ctx, 0, "*", 100).Iterator()
	for iter.Next(ctx) {
		key := iter.Val()
		typ, err := rdb.Type(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		var v any
		switch typ {
		case "string":
			v, err = rdb.Get(ctx, key).Result()
		case "hash":
			v, err = rdb.HGetAll(ctx, key).Result()
		case "zset":
			v, err = rdb.ZRange(ctx, key, 0, -1).Result()
		case "stream":
			v, err = rdb.XRange(ctx, key, "-", "+").Result()
		case "list":
			v, err = rdb.LRange(ctx, key, 0, -1).Result()
		case "set":
			v, err = rdb.SMembers(ctx, key).Result()
		default:
			t.Fatalf("key %s of unexpected type %s", key, typ)
		}
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s %v\n", key, v)
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}
