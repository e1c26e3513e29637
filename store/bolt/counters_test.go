package boltstore_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/accessauth/caddy-access-auth/store"
	boltstore "github.com/accessauth/caddy-access-auth/store/bolt"
)

// TestBoltCountersSurviveReopenAndExpiredAreSwept adds counters, reopens
// the file: the live ones are still there, and the sweep (due at the
// first AddCounts of a process) has deleted the expired one from the file.
func TestBoltCountersSurviveReopenAndExpiredAreSwept(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "store.db")
	b := must(boltstore.Open(path))(t)
	live := store.CountDelta{Name: "usage/ak-1/2026-03-01/g/allowed", Delta: 3, ExpiresAt: time.Now().Add(time.Hour)}
	if err := b.AddCounts(ctx, []store.CountDelta{live, {Name: "forever", Delta: 2}}); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	b = must(boltstore.Open(path))(t)
	gone := store.CountDelta{Name: "quota/az-1/day/2026-02-01", Delta: 5, ExpiresAt: time.Now().Add(-time.Minute)}
	if err := b.AddCounts(ctx, []store.CountDelta{live, gone}); err != nil {
		t.Fatal(err)
	}
	if got := must(b.Counts(ctx, []string{live.Name, "forever", gone.Name}))(t); !slices.Equal(got, []int64{6, 2, 0}) {
		t.Errorf("counts after reopen %v, want [6 2 0]", got)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	db := must(bbolt.Open(path, 0o600, nil))(t)
	defer db.Close()
	var names []string
	err := db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte("counters")).ForEach(func(k, _ []byte) error {
			names = append(names, string(k))
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"forever", live.Name}; !slices.Equal(names, want) {
		t.Errorf("counters in the file %v, want %v (the expired one swept)", names, want)
	}
}
