package e2e

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accessauth/caddy-access-auth/internal/gatewaytest"
	"github.com/accessauth/caddy-access-auth/internal/redistest"
)

// quickAnswer bounds how long a node may take to refuse a request or an
// admin call while Redis is down.
const quickAnswer = 2 * time.Second

// TestRedisOutage stops Redis under two running nodes and brings it back
// on the same port, checking each request on the way (docs/coherence.md, issue 3
// item 4). Redis keeps an append-only file, so the data set survives the
// restart as it would in production; what is under test is the nodes.
//
// Node S caches briefly (ttl 1s, max_stale 3s) to show stale serving and
// its end; node L keeps the defaults' long TTL, so after recovery only its
// change feed can tell it about a write.
func TestRedisOutage(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{Args: []string{"--appendonly", "yes", "--appendfsync", "always"}})
	opts := gatewaytest.RedisOptions(gatewaytest.NewMasterKey(t), "redis://"+srv.Addr)
	s := gatewaytest.Start(t, "S", opts+"\ncache {\nttl 1s\n}\nmax_stale 3s", ordersSite)
	l := gatewaytest.Start(t, "L", opts+"\nmax_stale 1m", ordersSite)
	s.WaitGroup("orders")
	cached := s.CreateKey("cached")
	s.Authorize(cached.ID, "orders")
	uncached := s.CreateKey("uncached")
	s.Authorize(uncached.ID, "orders")
	// S loads the key between loading and loaded; its entry turns stale
	// after the TTL (1s) and expires after max_stale more (3s).
	loading := time.Now()
	gatewaytest.WantAnswer(t, "cached key at S", s.Call(cached), http.StatusOK, "")
	loaded := time.Now()
	s.Warm(cached)
	l.Warm(cached)

	srv.Stop()
	down := time.Now()

	gatewaytest.WantAnswer(t, "Redis down: cached key at S", s.Call(cached), http.StatusOK, "")
	gatewaytest.WantAnswer(t, "Redis down: cached key at L", l.Call(cached), http.StatusOK, "")
	for _, n := range []*gatewaytest.Node{s, l} {
		began := time.Now()
		gatewaytest.WantAnswer(t, "Redis down: uncached key at "+n.Name, n.Call(uncached), http.StatusServiceUnavailable, "store_unavailable")
		if took := time.Since(began); took > quickAnswer {
			t.Errorf("a miss at %s took %v to answer 503 with Redis down", n.Name, took)
		}
		began = time.Now()
		wantStoreUnavailable(t, n, http.MethodPatch, "/access-auth/keys/"+cached.ID, map[string]any{"description": "x"})
		wantStoreUnavailable(t, n, http.MethodPost, "/access-auth/keys", map[string]any{"name": "during-outage"})
		wantStoreUnavailable(t, n, http.MethodGet, "/access-auth/keys", nil)
		if took := time.Since(began); took > 3*quickAnswer {
			t.Errorf("three admin calls at %s took %v to answer 503 with Redis down", n.Name, took)
		}
	}

	// Past S's TTL the entry is stale: it serves while within max_stale.
	time.Sleep(time.Until(loaded.Add(1200 * time.Millisecond)))
	stale := s.CacheLookups("stale")
	gatewaytest.WantAnswer(t, "Redis down, past the TTL: cached key at S", s.Call(cached), http.StatusOK, "")
	if s.CacheLookups("stale") <= stale {
		t.Error("S did not count the answer past its TTL as stale")
	}
	// Past TTL + max_stale S refuses it; every answer before is a pass.
	for {
		sent := time.Now()
		got := s.Call(cached)
		if got.Status == http.StatusServiceUnavailable {
			gatewaytest.WantAnswer(t, "Redis down, past max_stale: cached key at S", got, http.StatusServiceUnavailable, "store_unavailable")
			if early := loading.Add(4 * time.Second).Sub(time.Now()); early > 0 {
				t.Errorf("S refused a key before its max_stale ended (%v early)", early)
			}
			break
		}
		gatewaytest.WantAnswer(t, "Redis down, within max_stale: cached key at S", got, http.StatusOK, "")
		if late := sent.Sub(loaded.Add(4 * time.Second)); late > time.Second {
			t.Fatalf("S still serves a key %v past its max_stale", late)
		}
		time.Sleep(50 * time.Millisecond)
	}
	gatewaytest.WantAnswer(t, "Redis down, within L's max_stale: cached key at L", l.Call(cached), http.StatusOK, "")
	t.Logf("Redis was down for %v", time.Since(down).Round(time.Millisecond))

	srv.Restart()
	recovered := time.Now()
	for _, n := range []*gatewaytest.Node{s, l} {
		gatewaytest.Eventually(t, 5*time.Second, "recovery at "+n.Name, func() error {
			for _, c := range []gatewaytest.Credentials{cached, uncached} {
				if got := n.Call(c); got.Status != http.StatusOK {
					return fmt.Errorf("key %s: %s", c.ID, got)
				}
			}
			if status, body := n.Request(http.MethodGet, "/access-auth/keys/"+cached.ID, nil); status != http.StatusOK {
				return fmt.Errorf("admin read: %d %s", status, body)
			}
			return nil
		})
	}
	t.Logf("recovered within %v of the restart", time.Since(recovered).Round(time.Millisecond))

	// A write after recovery reaches L through its change feed (its TTL
	// is five minutes, so nothing else would).
	s.AdminJSON(http.MethodPatch, "/access-auth/keys/"+cached.ID, map[string]any{"enabled": false}, http.StatusOK, nil)
	written := time.Now()
	gatewaytest.Eventually(t, maxPropagation, "the write after recovery at L", func() error {
		if got := l.Call(cached); got.Status != http.StatusUnauthorized || got.Reason != "invalid_key" {
			return fmt.Errorf("L answers %s", got)
		}
		return nil
	})
	t.Logf("the first write after recovery reached L in %v", time.Since(written).Round(time.Microsecond))
	s.AdminJSON(http.MethodPost, "/access-auth/keys", map[string]any{"name": "after-outage"}, http.StatusCreated, nil)

	// go-redis's own logger writes "redis: <date> <file>:<line>: …" lines
	// to stderr; they must go to Caddy's log instead.
	for _, n := range []*gatewaytest.Node{s, l} {
		for line := range strings.Lines(n.Logs()) {
			if strings.HasPrefix(line, "redis: ") {
				t.Errorf("go-redis wrote to %s's stderr: %s", n.Name, line)
				break
			}
		}
	}
}

// wantStoreUnavailable checks that an admin call answers 503
// store_unavailable.
func wantStoreUnavailable(t *testing.T, n *gatewaytest.Node, method, path string, body any) {
	t.Helper()
	var e struct{ Code string }
	n.AdminJSON(method, path, body, http.StatusServiceUnavailable, &e)
	if e.Code != "store_unavailable" {
		t.Errorf("%s %s at %s with Redis down: code %q, want store_unavailable", method, path, n.Name, e.Code)
	}
}

// TestPartitionCatchUp cuts one node off Redis while another writes: the
// cut-off node keeps serving what it cached and, once it reconnects,
// applies the write it missed (no invalidation is lost).
func TestPartitionCatchUp(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	proxy := redistest.StartProxy(t, srv.Addr)
	key := gatewaytest.NewMasterKey(t)
	a := gatewaytest.Start(t, "A", gatewaytest.RedisOptions(key, "redis://"+srv.Addr), ordersSite)
	b := gatewaytest.Start(t, "B", gatewaytest.RedisOptions(key, "redis://"+proxy.Addr), ordersSite)
	a.WaitGroup("orders")
	c := a.CreateKey("partitioned")
	a.Authorize(c.ID, "orders")
	b.Warm(c)

	proxy.Cut()
	a.AdminJSON(http.MethodPatch, "/access-auth/keys/"+c.ID, map[string]any{"enabled": false}, http.StatusOK, nil)
	gatewaytest.WantAnswer(t, "cut off: B serves its cached entry", b.Call(c), http.StatusOK, "")
	time.Sleep(300 * time.Millisecond) // B's feed notices and retries
	proxy.Restore()
	restored := time.Now()
	gatewaytest.Eventually(t, maxPropagation+time.Second, "B applies the write it missed", func() error {
		if got := b.Call(c); got.Status != http.StatusUnauthorized || got.Reason != "invalid_key" {
			return fmt.Errorf("B answers %s", got)
		}
		return nil
	})
	t.Logf("B caught up %v after the connection came back", time.Since(restored).Round(time.Millisecond))
}

// TestRedisRestartEmpty restarts Redis without persistence under a node
// that caches for five minutes: the data set is gone, and the node must
// notice through its change feed and drop its cache rather than serve keys
// that no longer exist. Importing the data again brings them back, without
// restarting Caddy.
func TestRedisRestartEmpty(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	n := gatewaytest.Start(t, "N", gatewaytest.RedisOptions(gatewaytest.NewMasterKey(t), "redis://"+srv.Addr), ordersSite)
	n.WaitGroup("orders")
	c := n.CreateKey("lost")
	n.Authorize(c.ID, "orders")
	n.Warm(c)
	status, export := n.Request(http.MethodGet, "/access-auth/export", nil)
	if status != http.StatusOK {
		t.Fatalf("export: %d %s", status, export)
	}

	srv.Restart()
	restarted := time.Now()
	gatewaytest.Eventually(t, 5*time.Second, "the node drops the keys of the lost data set", func() error {
		if got := n.Call(c); got.Status != http.StatusUnauthorized || got.Reason != "invalid_key" {
			return fmt.Errorf("N answers %s", got)
		}
		return nil
	})
	t.Logf("the node dropped its cache %v after Redis came back empty", time.Since(restarted).Round(time.Millisecond))

	n.AdminJSON(http.MethodPost, "/access-auth/import", rawJSON(export), http.StatusOK, nil)
	expect(t, n, c, http.StatusOK, "", "the key after the import")
}

// TestRedisHung points a node at a server that accepts connections and
// never answers (a hung Redis, or packets dropped on the way): misses and
// admin calls must still answer 503 store_unavailable quickly, not hang
// (the client's read timeout is a second). Start-up waits for the
// credential check of opening Redis to time out (a few seconds).
func TestRedisHung(t *testing.T) {
	hung, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			conn, err := hung.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, conn)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		hung.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	})
	n := gatewaytest.Start(t, "N", gatewaytest.RedisOptions(gatewaytest.NewMasterKey(t), "redis://"+hung.Addr().String()), ordersSite)
	unknown := gatewaytest.Credentials{APIKey: gatewaytest.RandomAPIKey(t), APISecret: "secret"}
	for i := range 2 {
		began := time.Now()
		gatewaytest.WantAnswer(t, "a miss with Redis hung", n.Call(unknown), http.StatusServiceUnavailable, "store_unavailable")
		missTook := time.Since(began)
		began = time.Now()
		wantStoreUnavailable(t, n, http.MethodPost, "/access-auth/keys", map[string]any{"name": fmt.Sprintf("hung-%d", i)})
		writeTook := time.Since(began)
		t.Logf("Redis hung: a miss answered 503 in %v, an admin write in %v", missTook.Round(time.Millisecond), writeTook.Round(time.Millisecond))
		if missTook > quickAnswer || writeTook > quickAnswer+time.Second {
			t.Errorf("with Redis hung a miss took %v and an admin write %v to answer 503", missTook, writeTook)
		}
	}
}
