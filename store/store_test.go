package store_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/accessauth/caddy-access-auth/store"
	boltstore "github.com/accessauth/caddy-access-auth/store/bolt"
)

var testMasterKey = bytes.Repeat([]byte{7}, store.MasterKeySize)

// openStore opens a Store with testMasterKey over a new bbolt file, closed
// with the test. The rules are tested over the embedded engine here;
// store/storetest holds every engine to the same behavior.
func openStore(t testing.TB, opts store.Options) *store.Store {
	t.Helper()
	backend, err := boltstore.Open(filepath.Join(t.TempDir(), "store.db"))
	if err != nil {
		t.Fatal(err)
	}
	opts.MasterKeys = [][]byte{testMasterKey}
	s, err := store.Open(backend, opts)
	if err != nil {
		backend.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Keys made in one millisecond, or after the clock stepped back, still list
// newest first: a store's IDs only ever increase.
func TestIDsIncreaseWithinAMillisecond(t *testing.T) {
	at := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	clock := []time.Time{at, at, at, at.Add(-time.Second), at}
	s := openStore(t, store.Options{Now: func() time.Time {
		now := clock[0]
		if len(clock) > 1 {
			clock = clock[1:]
		}
		return now
	}})
	ctx := context.Background()
	var names []string
	for i := range 5 {
		names = append(names, fmt.Sprintf("k%d", i))
		if _, err := s.CreateKey(ctx, store.NewKey{Name: names[i]}, store.Actor{}); err != nil {
			t.Fatal(err)
		}
	}
	keys, _, err := s.ListKeys(ctx, store.KeyFilter{}, store.Page{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, k := range keys {
		got = append(got, k.Name)
	}
	slices.Reverse(names)
	if !slices.Equal(got, names) {
		t.Errorf("listed %v, want newest first %v", got, names)
	}
}
