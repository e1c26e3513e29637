package store_test

import (
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/accessauth/caddy-access-auth/internal/redistest"
	"github.com/accessauth/caddy-access-auth/store"
	"github.com/accessauth/caddy-access-auth/store/storetest"
)

// TestRedisConformance runs the store rules over Redis. The tests share one
// server; each new backend gets a key prefix of its own, so it starts empty.
func TestRedisConformance(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	var n atomic.Int64
	storetest.Run(t, func(t *testing.T) store.Backend {
		prefix := "conformance" + strconv.FormatInt(n.Add(1), 10)
		return openRedis(t, store.RedisOptions{Addrs: []string{srv.Addr}, KeyPrefix: prefix})
	})
}
