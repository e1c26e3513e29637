package caddymodule

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/accessauth/caddy-access-auth/internal/redistest"
	"github.com/accessauth/caddy-access-auth/signature"
)

func TestRedisStore(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{Password: "pw"})
	startCaddy(t, `access_auth {
		store redis redis://:pw@`+srv.Addr+`/0
		key_prefix caddytest
		master_key {env.CADDYMODULE_TEST_MASTER_KEY}
	}`, "http://localhost:9080 {\naccess_auth orders\nrespond \"ok {http.auth.user.id}\"\n}")
	waitGroupConfigured(t, "orders")
	key, _ := newAuthorizedKey(t, "redis-alice", nil, [2]string{"orders", "online"})

	req := signed(t, "GET", siteURL+"/x", "", signature.JDCloud2, key.APIKey, key.APISecret, signature.WithNonce("nonce-1"))
	if a := send(t, req); a.status != http.StatusOK || a.body != "ok "+key.ID {
		t.Fatalf("signed request: %d %q", a.status, a.body)
	}
	// replay_protection auto means the store's nonces with Redis: a replay
	// is caught on every node sharing it.
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, Password: "pw"})
	defer rdb.Close()
	// In the set of the request's signed second (docs/replay-protection.md).
	sets, err := rdb.Keys(context.Background(), "caddytest:nonce:*").Result()
	if err != nil || len(sets) != 1 || !rdb.SIsMember(context.Background(), sets[0], key.APIKey+":nonce-1").Val() {
		t.Errorf("nonce not recorded in Redis: sets %v, %v", sets, err)
	}
	wantDenial(t, send(t, req), 401, "ACCESS_ERROR", "replayed_nonce", "nonce has been used", signature.JDCloud2.Challenge())

	adminDo(t, "PATCH", "/access-auth/keys/"+key.ID, map[string]any{"enabled": false}, http.StatusOK, nil)
	a := send(t, signed(t, "GET", siteURL+"/x", "", signature.JDCloud2, key.APIKey, key.APISecret))
	wantDenial(t, a, 401, "ACCESS_ERROR", "invalid_key", "Invalid accessKey", signature.JDCloud2.Challenge())
}

// TestRedisDownAtStart: an unreachable Redis does not keep Caddy from
// starting; requests and the admin API answer 503 store_unavailable.
func TestRedisDownAtStart(t *testing.T) {
	port := freeLoopbackPort(t)
	startCaddy(t, `access_auth {
		store redis redis://127.0.0.1:`+strconv.Itoa(port)+`
		master_key {env.CADDYMODULE_TEST_MASTER_KEY}
	}`, "http://localhost:9080 {\naccess_auth orders\nrespond ok\n}")

	req := signed(t, "GET", siteURL+"/x", "", signature.JDCloud2, "0123456789ABCDEF0123456789ABCDEF", "secret")
	wantDenial(t, send(t, req), 503, "HTTP_SERVICE_UNAVAILABLE", "store_unavailable", "store unavailable", "")
	var e struct{ Code string }
	adminDo(t, "GET", "/access-auth/keys", nil, http.StatusServiceUnavailable, &e)
	if e.Code != "store_unavailable" {
		t.Errorf("admin API with Redis down: code %q", e.Code)
	}
}

func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
