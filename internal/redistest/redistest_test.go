package redistest

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestStartRestartStop(t *testing.T) {
	ctx := context.Background()
	s := Start(t, Options{Password: "pw"})
	if s.Port == 6379 {
		t.Fatal("the system Redis port was handed out")
	}
	c := redis.NewClient(&redis.Options{Addr: s.Addr, Password: "pw", MaxRetries: -1})
	defer c.Close()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	s.Restart()
	if _, err := c.Get(ctx, "k").Result(); !errors.Is(err, redis.Nil) {
		t.Fatalf("after restart without persistence GET k = %v, want redis.Nil", err)
	}
	s.Stop()
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("PING answered after Stop")
	}
}

func TestCluster(t *testing.T) {
	ctx := context.Background()
	cl := StartCluster(t)
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs()})
	defer c.Close()
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		if err := c.Set(ctx, k, k, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// ForEachMaster calls back concurrently, one goroutine per master.
	var masters atomic.Int32
	if err := c.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		masters.Add(1)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n := masters.Load(); n != 3 {
		t.Fatalf("%d masters, want 3", n)
	}
}

func TestSentinelFailover(t *testing.T) {
	ctx := context.Background()
	s := StartSentinel(t)
	addr, err := s.MasterAddr(ctx)
	if err != nil || addr != s.Master.Addr {
		t.Fatalf("MasterAddr = %q, %v; want %s", addr, err, s.Master.Addr)
	}
	s.Master.Stop()
	deadline := time.Now().Add(FailoverTimeout)
	for {
		addr, err := s.MasterAddr(ctx)
		if err == nil && addr == s.Replica.Addr {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no failover within %v: master %q, %v\n%s", FailoverTimeout, addr, err, s.Logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
