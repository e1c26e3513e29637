package caddymodule

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"
	"github.com/redis/go-redis/v9"

	"github.com/accessauth/caddy-access-auth/internal/redistest"
	"github.com/accessauth/caddy-access-auth/signature"
	"github.com/accessauth/caddy-access-auth/store"
	redisstore "github.com/accessauth/caddy-access-auth/store/redis"
)

// goroutineSlack is how many goroutines a series of reloads may leave
// behind in Caddy itself (timers, a connection closing), independent of
// how many reloads there were.
const goroutineSlack = 8

// TestReloadRedisState reloads a Caddy on Redis many times (issue 3 item
// 5): with the store configuration unchanged the Redis client, cache and
// change feed are the same across every reload; when it changes they are
// replaced and the old ones closed; and neither leaks goroutines nor Redis
// connections, however many reloads there are.
func TestReloadRedisState(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	config := func(prefix string, generation int) (string, string) {
		return `access_auth {
			store redis redis://` + srv.Addr + `
			key_prefix ` + prefix + `
			master_key {env.CADDYMODULE_TEST_MASTER_KEY}
		}`, fmt.Sprintf("http://localhost:9080 {\naccess_auth orders\nrespond \"generation %d\"\n}", generation)
	}
	load := func(tester *caddytest.Tester, prefix string, generation int) {
		t.Helper()
		extra, sites := config(prefix, generation)
		initServer(t, tester, extra, sites)
	}
	generation := 0
	extra, sites := config("reload-a", generation)
	tester := startCaddy(t, extra, sites)
	waitGroupConfigured(t, "orders")
	keyA, _ := newAuthorizedKey(t, "reload-a", nil, [2]string{"orders", "online"})
	// serves checks that the latest config answers, through the shared state.
	serves := func(key accessKey) {
		t.Helper()
		a := send(t, signed(t, "GET", siteURL+"/x", "", signature.JDCloud2, key.APIKey, key.APISecret))
		if want := fmt.Sprintf("generation %d", generation); a.status != http.StatusOK || a.body != want {
			t.Fatalf("after reload %d: %d %q, want 200 %q", generation, a.status, a.body, want)
		}
	}
	serves(keyA)
	first := runningState(t)
	baseline := settledGoroutines(t, 0)

	// Unchanged store configuration: the very same state, feed running.
	reloadSame := func(n int) {
		t.Helper()
		for range n {
			generation++
			load(tester, "reload-a", generation)
			serves(keyA)
			if st := runningState(t); st != first {
				t.Fatalf("reload %d of an unchanged store config made a new state", generation)
			}
			select {
			case <-first.followDone:
				t.Fatalf("reload %d stopped the change feed", generation)
			default:
			}
		}
	}
	reloadSame(5)
	afterFew := settledGoroutines(t, baseline)
	reloadSame(20)
	afterMany := settledGoroutines(t, baseline)
	t.Logf("goroutines: %d at start, %d after 5 reloads, %d after 25", baseline, afterFew, afterMany)
	// The feed still runs: a write by another node (a store of this test
	// process on the same data set) shows within the propagation bound.
	other := otherNode(t, srv.Addr, "reload-a")
	disabled := false
	if _, err := other.UpdateKey(context.Background(), keyA.ID, store.KeyPatch{
		Enabled: store.Optional[bool]{Set: true, Value: &disabled},
	}, store.Actor{Name: "test"}); err != nil {
		t.Fatal(err)
	}
	written := time.Now()
	for {
		a := send(t, signed(t, "GET", siteURL+"/x", "", signature.JDCloud2, keyA.APIKey, keyA.APISecret))
		if a.status == http.StatusUnauthorized {
			wantDenial(t, a, 401, "ACCESS_ERROR", "invalid_key", "Invalid accessKey", signature.JDCloud2.Challenge())
			break
		}
		if time.Since(written) > 100*time.Millisecond {
			t.Fatalf("a write by another node did not reach the reloaded node: %d %q", a.status, a.body)
		}
	}
	adminDo(t, "PATCH", "/access-auth/keys/"+keyA.ID, map[string]any{"enabled": true}, http.StatusOK, nil)

	// A changed store configuration (another key prefix: another data
	// set) replaces the state; the old client and feed are closed.
	generation++
	load(tester, "reload-b", generation)
	waitGroupConfigured(t, "orders")
	keyB, _ := newAuthorizedKey(t, "reload-b", nil, [2]string{"orders", "online"})
	serves(keyB)
	second := runningState(t)
	if second == first || second.backend == first.backend {
		t.Fatal("a changed store config kept the old state or Redis client")
	}
	wantClosed(t, first)

	// Back and forth between the two: each switch opens one and closes one.
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()
	connections := func() int {
		t.Helper()
		list, err := rdb.ClientList(context.Background()).Result()
		if err != nil {
			t.Fatal(err)
		}
		return strings.Count(list, "\n") - 1 // not this one
	}
	for i := range 6 {
		previous := runningState(t)
		prefix, key := "reload-a", keyA
		if i%2 == 1 {
			prefix, key = "reload-b", keyB
		}
		generation++
		load(tester, prefix, generation)
		serves(key)
		if runningState(t) == previous {
			t.Fatalf("switch %d kept the state of the other store config", i)
		}
		wantClosed(t, previous)
	}
	afterSwitches := settledGoroutines(t, baseline)
	conns := connections()
	t.Logf("goroutines after 6 store switches: %d; Redis connections: %d", afterSwitches, conns)
	// One client: the feed's blocking XREAD and a few pooled connections.
	if conns > 6 {
		t.Errorf("%d connections to Redis after the switches: old clients were not closed", conns)
	}
}

// otherNode opens a store on the same Redis data set, as another node
// would: its writes reach Caddy only through the change feed.
func otherNode(t *testing.T, addr, prefix string) *store.Store {
	t.Helper()
	b, err := redisstore.Open(context.Background(), redisstore.Options{Addrs: []string{addr}, KeyPrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	key, err := store.DecodeMasterKey(testMasterKey)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(b, store.Options{MasterKeys: [][]byte{key}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// runningState returns the shared state of the running config's app.
func runningState(t *testing.T) *sharedState {
	t.Helper()
	app := current.Load()
	if app == nil {
		t.Fatal("no access_auth app runs")
	}
	st, err := app.acquire()
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// wantClosed checks that a replaced state's feed stopped and its Redis
// client is closed.
func wantClosed(t *testing.T, st *sharedState) {
	t.Helper()
	select {
	case <-st.followDone:
	case <-time.After(5 * time.Second):
		t.Fatal("the replaced state's change feed still runs")
	}
	r := st.backend.backend.(*redisstore.Backend)
	if err := r.Client().Ping(context.Background()).Err(); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("the replaced state's Redis client answers: %v", err)
	}
}

// settledGoroutines waits until the goroutine count is within
// goroutineSlack of baseline (0: no baseline yet, wait a moment and take
// it), failing the test when it stays above for ten seconds (closed
// clients and servers wind down in the background).
func settledGoroutines(t *testing.T, baseline int) int {
	t.Helper()
	client.CloseIdleConnections()
	if baseline == 0 {
		time.Sleep(200 * time.Millisecond)
		return runtime.NumGoroutine()
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= baseline+goroutineSlack {
			return n
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("goroutines grew from %d to %d:\n%s", baseline, n, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(50 * time.Millisecond)
	}
}
