package redisstore_test

import (
	"bytes"
	"context"
	"strconv"
	"testing"

	"github.com/accessauth/caddy-access-auth/internal/redistest"
	"github.com/accessauth/caddy-access-auth/store"
	redisstore "github.com/accessauth/caddy-access-auth/store/redis"
	"github.com/accessauth/caddy-access-auth/store/storetest"
)

// BenchmarkRedisApply1000Keys applies a file of 1,000 generated keys with
// their authorizations to an empty data set on a local redis-server (one
// transaction), then the same file again, which finds nothing to change.
func BenchmarkRedisApply1000Keys(b *testing.B) {
	srv := redistest.Start(b, redistest.Options{})
	d := storetest.ManyKeys(1000)
	ctx := context.Background()
	actor := store.Actor{Name: "bench"}
	n := 0
	open := func() *store.Store {
		n++
		backend := openRedis(b, redisstore.Options{Addrs: []string{srv.Addr}, KeyPrefix: "apply" + strconv.Itoa(n)})
		s, err := store.Open(backend, store.Options{MasterKeys: [][]byte{bytes.Repeat([]byte{1}, store.MasterKeySize)}})
		if err != nil {
			b.Fatal(err)
		}
		return s
	}
	b.Run("create", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			s := open()
			b.StartTimer()
			if _, err := s.Apply(ctx, d, store.ApplyOptions{}, actor); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("unchanged", func(b *testing.B) {
		s := open()
		if _, err := s.Apply(ctx, d, store.ApplyOptions{}, actor); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if res, err := s.Apply(ctx, d, store.ApplyOptions{}, actor); err != nil || len(res.Changes) != 0 {
				b.Fatalf("%v, %d changes", err, len(res.Changes))
			}
		}
	})
}
