package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/accessauth/caddy-access-auth/cache"
	"github.com/accessauth/caddy-access-auth/internal/redistest"
	"github.com/accessauth/caddy-access-auth/signature"
	"github.com/accessauth/caddy-access-auth/store"
)

// BenchmarkCacheMissRedis is what a cache miss costs against a real Redis
// on loopback: the store's one-round-trip load of a credential (HGET and
// decryption of the secret), and the same through the cache after the
// entry was invalidated.
func BenchmarkCacheMissRedis(b *testing.B) {
	srv := redistest.Start(b, redistest.Options{})
	backend, err := store.OpenRedis(context.Background(), store.RedisOptions{Addrs: []string{srv.Addr}})
	if err != nil {
		b.Fatal(err)
	}
	masterKey, err := store.GenerateMasterKey()
	if err != nil {
		b.Fatal(err)
	}
	st, err := store.Open(backend, store.Options{MasterKeys: [][]byte{masterKey}})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	actor := store.Actor{Name: "bench"}
	if _, err := st.CreateGroup(ctx, store.Group{Name: "orders"}, actor); err != nil {
		b.Fatal(err)
	}
	key, err := st.CreateKey(ctx, store.NewKey{Name: "bench"}, actor)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := st.CreateAuthorization(ctx, store.NewAuthorization{
		AccessKeyID: key.ID, Bindings: []store.Binding{{Group: "orders", Environment: "*"}},
	}, actor); err != nil {
		b.Fatal(err)
	}

	b.Run("LoadCredential", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := st.LoadCredential(ctx, key.APIKey); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("CacheGetAfterInvalidate", func(b *testing.B) {
		c, err := cache.New(cache.Config{MaxEntries: 1000}, st)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		b.ReportAllocs()
		for b.Loop() {
			c.Invalidate(key.APIKey)
			if _, err := c.Get(ctx, key.APIKey); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// Parameters of the end-to-end throughput benchmark.
const (
	throughputWorkers = 16
	throughputRound   = 1500 * time.Millisecond
	throughputRounds  = 4 // per route, alternating
)

// BenchmarkThroughputRatio is the end-to-end figure of SPEC §10: one Caddy
// on Redis with three routes answering the same "ok" — without access_auth,
// with it and replay protection in Redis (store, the default with Redis),
// and with it and local replay protection. The same load of signed GETs,
// each with a fresh nonce, goes to each route in alternating rounds; the
// ratios are each checked route's requests per second over the open
// route's. It runs once whatever b.N is.
func BenchmarkThroughputRatio(b *testing.B) {
	srv := redistest.Start(b, redistest.Options{})
	n := startNode(b, "bench", redisOptions(newMasterKey(b), "redis://"+srv.Addr), `	handle /open/* {
		respond "ok"
	}
	handle /store/* {
		access_auth bench
		respond "ok"
	}
	handle /local/* {
		access_auth bench {
			replay_protection local
		}
		respond "ok"
	}`)
	n.waitGroup("bench")
	key := n.createKey("bench")
	n.authorize(key.ID, "bench")
	for _, route := range []string{"/open/", "/store/", "/local/"} {
		if got := n.send(n.signedRequest(route+"x", key)); got.status != http.StatusOK {
			b.Fatalf("%s: %s", route, got)
		}
	}

	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()
	routes := []string{"/open/", "/store/", "/local/"}
	served := make(map[string]int64)
	spent := make(map[string]time.Duration)
	caddyCPU := make(map[string]time.Duration)
	redisCPU := make(map[string]time.Duration)
	for round := range throughputRounds * len(routes) {
		route := routes[round%len(routes)]
		caddyBefore, redisBefore := processCPU(b, n.cmd.Process.Pid), redisServerCPU(b, rdb)
		count, took := loadRound(b, n, key, route+"x", throughputRound)
		served[route] += count
		spent[route] += took
		caddyCPU[route] += processCPU(b, n.cmd.Process.Pid) - caddyBefore
		redisCPU[route] += redisServerCPU(b, rdb) - redisBefore
	}
	rate := func(route string) float64 { return float64(served[route]) / spent[route].Seconds() }
	perRequest := func(cpu map[string]time.Duration, route string) float64 {
		return float64(cpu[route].Microseconds()) / float64(served[route])
	}
	open := rate("/open/")
	b.ReportMetric(open, "open-req/s")
	b.ReportMetric(rate("/store/"), "store-req/s")
	b.ReportMetric(rate("/local/"), "local-req/s")
	b.ReportMetric(rate("/store/")/open, "ratio-redis-replay")
	b.ReportMetric(rate("/local/")/open, "ratio-local-replay")
	b.Logf("open %.0f req/s; access_auth with Redis replay %.0f req/s (ratio %.3f, target ≥ 0.80); with local replay %.0f req/s (ratio %.3f, target ≥ 0.95)",
		open, rate("/store/"), rate("/store/")/open, rate("/local/"), rate("/local/")/open)
	for _, route := range routes {
		b.Logf("%-8s CPU per request: caddy %.1f µs, redis-server %.1f µs", route, perRequest(caddyCPU, route), perRequest(redisCPU, route))
	}
}

// processCPU is the user and system CPU time a process has used, from
// /proc/<pid>/stat (in clock ticks of 10ms).
func processCPU(b *testing.B, pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// The fields after the command name (which may hold spaces) in ")".
	fields := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// redisServerCPU is the CPU time redis-server has used, from INFO cpu.
func redisServerCPU(b *testing.B, rdb *redis.Client) time.Duration {
	info, err := rdb.Info(context.Background(), "cpu").Result()
	if err != nil {
		b.Fatal(err)
	}
	var total float64
	for line := range strings.Lines(info) {
		name, value, _ := strings.Cut(strings.TrimSpace(line), ":")
		if name == "used_cpu_sys" || name == "used_cpu_user" {
			v, _ := strconv.ParseFloat(value, 64)
			total += v
		}
	}
	return time.Duration(total * float64(time.Second))
}

// loadRound sends signed GETs of path from throughputWorkers workers for
// d and returns how many were answered 200 and how long the round took.
func loadRound(b *testing.B, n *node, key credentials, path string, d time.Duration) (int64, time.Duration) {
	var count atomic.Int64
	var failure atomic.Value
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for range throughputWorkers {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				req, err := http.NewRequest(http.MethodGet, n.site+path, nil)
				if err == nil {
					err = signature.Sign(req, signature.JDCloud2, key.APIKey, key.APISecret)
				}
				if err != nil {
					failure.Store(err.Error())
					return
				}
				got, err := sendRequest(req)
				if err != nil || got.status != http.StatusOK {
					failure.Store(path + ": " + got.String())
					return
				}
				count.Add(1)
			}
		})
	}
	wg.Wait()
	if f := failure.Load(); f != nil {
		b.Fatalf("load on %s: %v", path, f)
	}
	return count.Load(), time.Since(start)
}
