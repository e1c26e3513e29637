package store_test

import (
	"testing"
	"time"

	"github.com/accessauth/caddy-access-auth/internal/redistest"
	"github.com/accessauth/caddy-access-auth/store"
)

// Every change carries its commit time, from which nodes measure the
// propagation lag (caddy_access_auth_propagation_lag_seconds).
func TestChangeCarriesCommitTime(t *testing.T) {
	backends := map[string]func(t *testing.T) store.Backend{
		"bolt": func(t *testing.T) store.Backend { return newBolt(t) },
		"redis": func(t *testing.T) store.Backend {
			srv := redistest.Start(t, redistest.Options{})
			return openRedis(t, store.RedisOptions{Addrs: []string{srv.Addr}})
		},
	}
	for name, open := range backends {
		t.Run(name, func(t *testing.T) {
			b := open(t)
			feed := subscribe(t, b)
			// Redis stamps the millisecond: compare at that precision.
			before := time.Now().Truncate(time.Millisecond)
			put(t, b, "t", "k", "v", "K1")
			after := time.Now()
			c := nextChange(t, feed, 2*time.Second)
			if c.At.Before(before) || c.At.After(after) {
				t.Fatalf("change committed between %v and %v says At %v", before, after, c.At)
			}
		})
	}
}
