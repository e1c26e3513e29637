package redisstore_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/accessauth/caddy-access-auth/internal/redistest"
	"github.com/accessauth/caddy-access-auth/store"
	redisstore "github.com/accessauth/caddy-access-auth/store/redis"
)

// TestRedisUpdateWaitsForReplica checks that a write is acknowledged once
// the master's replica has it, and refused with ErrUnavailable once the
// replica is cut off (UpdateStaged's visible called all the same, with the
// write on the master); a server without replicas acknowledges alone.
func TestRedisUpdateWaitsForReplica(t *testing.T) {
	ctx := context.Background()
	master := redistest.Start(t, redistest.Options{})
	replica := redistest.Start(t, redistest.Options{Args: []string{"--replicaof", "127.0.0.1", strconv.Itoa(master.Port)}})
	b := openRedis(t, redisstore.Options{Addrs: []string{master.Addr}})
	redistest.WaitInSync(t, replica)

	put(t, b, "t", "k", "with the replica")
	if got := mustGet(t, openRedis(t, redisstore.Options{Addrs: []string{replica.Addr}}), "t", "k"); got != "with the replica" {
		t.Fatalf("the replica has %q once the write was acknowledged", got)
	}

	master.CutReplicas()
	began := time.Now()
	err := b.Update(ctx, func(tx store.Tx) error { return tx.Put("t", "k", []byte("master alone")) })
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Update with the replica cut off = %v, want ErrUnavailable", err)
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("the refusal took %v", took)
	}

	// UpdateStaged says when the write is on the master, before the wait
	// for the replica fails it.
	var onMaster string
	err = b.UpdateStaged(ctx, func(tx store.Tx) error { return tx.Put("t", "k", []byte("staged")) }, func() {
		onMaster = mustGet(t, openRedis(t, redisstore.Options{Addrs: []string{master.Addr}}), "t", "k")
	})
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("UpdateStaged with the replica cut off = %v, want ErrUnavailable", err)
	}
	if onMaster != "staged" {
		t.Fatalf("when visible was called the master had %q, want the write", onMaster)
	}

	alone := redistest.Start(t, redistest.Options{})
	b = openRedis(t, redisstore.Options{Addrs: []string{alone.Addr}})
	put(t, b, "t", "k", "no replica")
}
