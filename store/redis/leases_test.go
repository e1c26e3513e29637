package redisstore_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/accessauth/caddy-access-auth/internal/redistest"
	"github.com/accessauth/caddy-access-auth/store"
	redisstore "github.com/accessauth/caddy-access-auth/store/redis"
)

func TestLease(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t, redistest.Options{})
	b := openRedis(t, redisstore.Options{Addrs: []string{srv.Addr}})
	expires := time.Now().Add(time.Hour)
	for i, tt := range []struct {
		want, limit           int64
		wantGranted, wantUsed int64
	}{
		{4, 10, 4, 4},
		{0, 10, 0, 4}, // a lease of nothing reads the counter (explain's peek)
		{4, 10, 4, 8},
		{4, 10, 2, 10}, // what is left
		{1, 10, 0, 10}, // spent
		{5, 12, 2, 12}, // a raised limit
	} {
		granted, used, err := b.Lease(ctx, "quota/auth-1/day/2026-03-10", tt.want, tt.limit, expires)
		if err != nil || granted != tt.wantGranted || used != tt.wantUsed {
			t.Fatalf("lease %d: %d, %d, %v; want %d, %d", i, granted, used, err, tt.wantGranted, tt.wantUsed)
		}
	}
	raw := rawClient(t, srv.Addr)
	if granted, used, err := b.Lease(ctx, "quota/auth-2/day/2026-03-10", 0, 10, expires); err != nil || granted != 0 || used != 0 ||
		raw.Exists(ctx, b.CounterKey("quota/auth-2/day/2026-03-10")).Val() != 0 {
		t.Errorf("a lease of nothing on a new counter: %d, %d, %v; want 0, 0 and no counter made", granted, used, err)
	}
	key := b.CounterKey("quota/auth-1/day/2026-03-10")
	if ttl := raw.PTTL(ctx, key).Val(); ttl <= 0 || ttl > time.Hour {
		t.Errorf("counter's TTL = %s, want up to an hour", ttl)
	}
	// Unspent tokens go back through the counters' AddCounts.
	if err := b.AddCounts(ctx, []store.CountDelta{{Name: "quota/auth-1/day/2026-03-10", Delta: -2}}); err != nil {
		t.Fatal(err)
	}
	if counts, err := b.Counts(ctx, []string{"quota/auth-1/day/2026-03-10"}); err != nil || counts[0] != 10 {
		t.Errorf("Counts = %v, %v after giving 2 back, want 10", counts, err)
	}
}

// Concurrent leases never grant beyond the limit, all together.
func TestLeaseConcurrent(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t, redistest.Options{})
	b := openRedis(t, redisstore.Options{Addrs: []string{srv.Addr}})
	var granted atomic.Int64
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				g, _, err := b.Lease(ctx, "rate/auth-1/1s/100", 7, 1000, time.Now().Add(time.Minute))
				if err != nil {
					t.Error(err)
					return
				}
				granted.Add(g)
			}
		}()
	}
	wg.Wait()
	if got := granted.Load(); got != 1000 {
		t.Errorf("%d granted by 400 leases of 7 against a limit of 1000, want exactly 1000", got)
	}
}

func TestLeaseOnACluster(t *testing.T) {
	ctx := context.Background()
	cl := redistest.StartCluster(t)
	b := openRedis(t, redisstore.Options{Addrs: cl.Addrs()})
	// Counters of many budgets spread over the slots: each script names
	// one key, so every one runs on its own node.
	for _, name := range []string{"quota/a/day/2026-03-10", "quota/b/g/week/2026-03-09", "rate/c/1s/17", "rate/d/g/1m/60"} {
		if g, used, err := b.Lease(ctx, name, 3, 5, time.Time{}); err != nil || g != 3 || used != 3 {
			t.Errorf("%s: %d, %d, %v; want 3, 3", name, g, used, err)
		}
	}
	if n, err := b.Nodes(ctx, "node-1", time.Minute); err != nil || n != 1 {
		t.Errorf("Nodes = %d, %v; want 1", n, err)
	}
}

func TestNodes(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t, redistest.Options{})
	b := openRedis(t, redisstore.Options{Addrs: []string{srv.Addr}})
	for i, node := range []string{"a", "b", "a", "c"} {
		n, err := b.Nodes(ctx, node, time.Minute)
		if want := []int64{1, 2, 2, 3}[i]; err != nil || n != want {
			t.Fatalf("Nodes(%s) = %d, %v; want %d", node, n, err, want)
		}
	}
	// A node that stops announcing itself is gone after its ttl.
	if _, err := b.Nodes(ctx, "d", 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if n, err := b.Nodes(ctx, "a", time.Minute); err != nil || n != 3 {
		t.Errorf("after d's ttl: %d nodes, %v; want 3", n, err)
	}
}

func TestLeaseWhileRedisIsDown(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t, redistest.Options{})
	b := openRedis(t, redisstore.Options{Addrs: []string{srv.Addr}})
	srv.Stop()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, _, err := b.Lease(ctx, "quota/a/day/2026-03-10", 1, 10, time.Time{}); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Lease with Redis down: %v, want store.ErrUnavailable", err)
	}
	if _, err := b.Nodes(ctx, "a", time.Minute); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Nodes with Redis down: %v, want store.ErrUnavailable", err)
	}
}
