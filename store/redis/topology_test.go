package redisstore_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accessauth/caddy-access-auth/internal/redistest"
	"github.com/accessauth/caddy-access-auth/store"
	redisstore "github.com/accessauth/caddy-access-auth/store/redis"
)

func TestRedisCluster(t *testing.T) {
	ctx := context.Background()
	cl := redistest.StartCluster(t)
	var urls []string
	for _, a := range cl.Addrs() {
		urls = append(urls, "redis://"+a)
	}
	writer := openRedis(t, redisstore.Options{URLs: urls})
	reader := openRedis(t, redisstore.Options{Addrs: cl.Addrs()[:1], Cluster: true})
	ch := subscribe(t, reader)

	// Writes to several tables in one transaction: CROSSSLOT would fail it.
	err := writer.Update(ctx, func(tx store.Tx) error {
		for i := range 5 {
			id := strconv.Itoa(i)
			if err := tx.Put("keys", id, []byte("key"+id)); err != nil {
				return err
			}
			if err := tx.Put("api_keys", "K"+id, []byte(id)); err != nil {
				return err
			}
		}
		tx.Notify("K0")
		return nil
	})
	if err != nil {
		t.Fatalf("Update on a Cluster: %v", err)
	}
	if got := mustGet(t, reader, "api_keys", "K3"); got != "3" {
		t.Fatalf("Get = %q", got)
	}
	err = reader.View(ctx, func(tx store.Tx) error {
		recs, err := tx.Scan("keys", "1", 2)
		if err != nil {
			return err
		}
		if len(recs) != 2 || recs[0].ID != "2" || recs[1].ID != "3" {
			t.Errorf("Scan = %v", recs)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if c := nextChange(t, ch, 2*time.Second); c.Reset || c.Revision != 1 || !slices.Equal(c.APIKeys, []string{"K0"}) {
		t.Fatalf("change = %+v", c)
	}

	// Nonces carry one of 16 hash tags: they spread over the masters.
	// Concurrent calls go as one script per tag (CROSSSLOT would fail a
	// script whose keys had several slots); each is answered for itself,
	// through either client.
	nonces, other := writer.Nonces(), reader.Nonces()
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Go(func() {
			nonce := "n" + strconv.Itoa(i)
			if seen, err := nonces.Seen(ctx, "K", nonce, testDate, time.Minute); seen || err != nil {
				t.Errorf("Seen %s = %v, %v; want fresh", nonce, seen, err)
			}
			if seen, err := other.Seen(ctx, "K", nonce, testDate, time.Minute); !seen || err != nil {
				t.Errorf("Seen %s again through another client = %v, %v; want a replay", nonce, seen, err)
			}
		})
	}
	wg.Wait()
	holding := 0
	for _, a := range cl.Addrs() {
		keys, err := rawClient(t, a).Keys(ctx, "access_auth:nonce:*").Result()
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) > 0 {
			holding++
		}
	}
	if holding < 2 {
		t.Fatalf("nonces on %d of 3 masters, want them spread", holding)
	}
}

func TestRedisSentinelFailover(t *testing.T) {
	ctx := context.Background()
	s := redistest.StartSentinel(t)
	b := openRedis(t, redisstore.Options{Addrs: s.SentinelAddrs(), MasterName: redistest.MasterName})
	ch := subscribe(t, b)
	put(t, b, "t", "k", "before", "A")
	if c := nextChange(t, ch, 2*time.Second); c.Revision != 1 {
		t.Fatalf("change = %+v", c)
	}
	// The replica must have the write before the master dies.
	if n, err := rawClient(t, s.Master.Addr).Wait(ctx, 1, 2*time.Second).Result(); err != nil || n != 1 {
		t.Fatalf("WAIT = %d, %v", n, err)
	}

	s.Master.Stop()
	deadline := time.Now().Add(redistest.FailoverTimeout)
	for {
		err := b.Update(ctx, func(tx store.Tx) error {
			tx.Notify("B")
			return tx.Put("t", "k", []byte("after"))
		})
		if err == nil {
			break
		}
		if !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("Update during failover = %v, want ErrUnavailable", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("Update still failing %v after the master died: %v\n%s", redistest.FailoverTimeout, err, s.Logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if addr, err := s.MasterAddr(ctx); err != nil || addr != s.Replica.Addr {
		t.Fatalf("master is %q, %v; want the promoted replica %s", addr, err, s.Replica.Addr)
	}
	if got := mustGet(t, b, "t", "k"); got != "after" {
		t.Fatalf("Get after failover = %q", got)
	}
	// Nothing was lost, so the feed carries on without a Reset.
	if c := nextChange(t, ch, 5*time.Second); c.Reset || c.Revision != 2 || !slices.Equal(c.APIKeys, []string{"B"}) {
		t.Fatalf("change after failover = %+v, want revision 2 for B", c)
	}
}

func BenchmarkRedisGet(b *testing.B) {
	srv := redistest.Start(b, redistest.Options{})
	be := openRedis(b, redisstore.Options{Addrs: []string{srv.Addr}})
	record := strings.Repeat("x", 300) // about a sealed credential record
	put(b, be, "credentials", "0123456789ABCDEF0123456789ABCDEF", record)
	ctx := context.Background()
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if v, err := be.Get(ctx, "credentials", "0123456789ABCDEF0123456789ABCDEF"); len(v) != len(record) || err != nil {
				b.Fatal(len(v), err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if v, err := be.Get(ctx, "credentials", "0123456789ABCDEF0123456789ABCDEF"); len(v) != len(record) || err != nil {
					b.Error(len(v), err)
					return
				}
			}
		})
	})
}

func BenchmarkRedisNonceSeen(b *testing.B) {
	srv := redistest.Start(b, redistest.Options{})
	n := openRedis(b, redisstore.Options{Addrs: []string{srv.Addr}}).Nonces()
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if _, err := n.Seen(ctx, "0123456789ABCDEF0123456789ABCDEF", strconv.Itoa(i), time.Now(), time.Minute); err != nil {
			b.Fatal(err)
		}
	}
}
