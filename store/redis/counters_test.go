package redisstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/accessauth/caddy-access-auth/internal/redistest"
	"github.com/accessauth/caddy-access-auth/store"
	redisstore "github.com/accessauth/caddy-access-auth/store/redis"
)

// TestRedisCounterKeys checks the layout a Lua script of another package
// relies on: a plain integer at <prefix>:count:<name>, expiring when the
// delta said, and one without expiry kept.
func TestRedisCounterKeys(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t, redistest.Options{})
	b := openRedis(t, redisstore.Options{Addrs: []string{srv.Addr}, KeyPrefix: "aa"})
	raw := rawClient(t, srv.Addr)
	expires := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	err := b.AddCounts(ctx, []store.CountDelta{
		{Name: "quota/az-1/day/2026-03-01", Delta: 4, ExpiresAt: expires},
		{Name: "forever", Delta: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	if key := b.CounterKey("quota/az-1/day/2026-03-01"); key != "aa:count:quota/az-1/day/2026-03-01" {
		t.Errorf("CounterKey = %q", key)
	}
	if v, err := raw.Get(ctx, "aa:count:quota/az-1/day/2026-03-01").Int64(); err != nil || v != 4 {
		t.Errorf("GET = %d, %v; want 4", v, err)
	}
	if at, err := raw.PExpireTime(ctx, "aa:count:quota/az-1/day/2026-03-01").Result(); err != nil || at != time.Duration(expires.UnixMilli())*time.Millisecond {
		t.Errorf("PEXPIRETIME = %v, %v; want %v", at, err, expires.UnixMilli())
	}
	if ttl, err := raw.PTTL(ctx, "aa:count:forever").Result(); err != nil || ttl != -1 {
		t.Errorf("PTTL of a counter without expiry = %v, %v; want -1", ttl, err)
	}
	// A script's INCRBY of the same key is seen by Counts.
	raw.IncrBy(ctx, "aa:count:quota/az-1/day/2026-03-01", 10)
	if got, err := b.Counts(ctx, []string{"quota/az-1/day/2026-03-01"}); err != nil || got[0] != 14 {
		t.Errorf("Counts = %v, %v; want [14]", got, err)
	}
}

func TestRedisCountersUnavailable(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t, redistest.Options{})
	b := openRedis(t, redisstore.Options{Addrs: []string{srv.Addr}})
	srv.Stop()
	if err := b.AddCounts(ctx, []store.CountDelta{{Name: "n", Delta: 1}}); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("AddCounts on a stopped server = %v, want ErrUnavailable", err)
	}
	if _, err := b.Counts(ctx, []string{"n"}); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Counts on a stopped server = %v, want ErrUnavailable", err)
	}
}
