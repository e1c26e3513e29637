package redisstore_test

import (
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/accessauth/caddy-access-auth/internal/redistest"
	"github.com/accessauth/caddy-access-auth/store"
	redisstore "github.com/accessauth/caddy-access-auth/store/redis"
	"github.com/accessauth/caddy-access-auth/store/storetest"
)

// TestRedisConformance runs the store rules over a standalone Redis. The
// tests share one server; each new backend gets a key prefix of its own, so
// it starts empty.
func TestRedisConformance(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	runConformance(t, redisstore.Options{Addrs: []string{srv.Addr}})
}

// TestRedisClusterConformance runs them over a Cluster: a transaction that
// touched keys of two slots would fail with CROSSSLOT.
func TestRedisClusterConformance(t *testing.T) {
	cl := redistest.StartCluster(t)
	runConformance(t, redisstore.Options{Addrs: cl.Addrs()})
}

func runConformance(t *testing.T, opts redisstore.Options) {
	var n atomic.Int64
	storetest.Run(t, func(t *testing.T) store.Backend {
		o := opts
		o.KeyPrefix = "conformance" + strconv.FormatInt(n.Add(1), 10)
		return openRedis(t, o)
	})
}
