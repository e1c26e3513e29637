package boltstore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/accessauth/caddy-access-auth/store"
	boltstore "github.com/accessauth/caddy-access-auth/store/bolt"
	"github.com/accessauth/caddy-access-auth/store/storetest"
)

func newBolt(t testing.TB) *boltstore.Backend {
	t.Helper()
	b, err := boltstore.Open(filepath.Join(t.TempDir(), "data", "store.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestBoltConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Backend { return newBolt(t) })
}

var testMasterKey = bytes.Repeat([]byte{7}, store.MasterKeySize)

// TestBoltReopen writes, closes the file and reads everything back in a new
// process-like open: the data and the revision survive.
func TestBoltReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "store.db")
	b, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := store.Open(b, store.Options{MasterKeys: [][]byte{testMasterKey}})
	if err != nil {
		t.Fatal(err)
	}
	actor := store.Actor{Name: "t"}
	if _, err := s.CreateGroup(ctx, store.Group{Name: "g"}, actor); err != nil {
		t.Fatal(err)
	}
	k, err := s.CreateKey(ctx, store.NewKey{Name: "k"}, actor)
	if err != nil {
		t.Fatal(err)
	}
	a, err := s.CreateAuthorization(ctx, store.NewAuthorization{AccessKeyID: k.ID, Bindings: []store.Binding{{Group: "g"}}}, actor)
	if err != nil {
		t.Fatal(err)
	}
	rev, err := b.Revision()
	if err != nil || rev != 2 {
		t.Fatalf("revision %d, %v; want 2 (two writes announced keys)", rev, err)
	}
	want, err := s.Export(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetKey(ctx, k.ID); err == nil || !strings.Contains(err.Error(), store.ErrUnavailable.Error()) {
		t.Errorf("read after Close: %v, want unavailable", err)
	}

	b, err = boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	s, err = store.Open(b, store.Options{MasterKeys: [][]byte{testMasterKey}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Export(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got.ExportedAt = want.ExportedAt
	if !bytes.Equal(mustJSON(t, got), mustJSON(t, want)) {
		t.Errorf("after reopen\n%s\nwant\n%s", mustJSON(t, got), mustJSON(t, want))
	}
	cred, err := s.LoadCredential(ctx, k.APIKey)
	if err != nil || cred.Secret != k.APISecret || cred.Authorization == nil || cred.Authorization.ID != a.ID {
		t.Errorf("credential after reopen: %+v, %v", cred, err)
	}
	if rev, err := b.Revision(); err != nil || rev != 2 {
		t.Errorf("revision after reopen %d, %v", rev, err)
	}
}

func TestBoltLockedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	b := must(boltstore.Open(path))(t)
	defer b.Close()
	start := time.Now()
	_, err := boltstore.Open(path)
	if err == nil || !strings.Contains(err.Error(), "locked by another process") || !strings.Contains(err.Error(), path) {
		t.Fatalf("second open: %v", err)
	}
	if waited := time.Since(start); waited > 10*time.Second {
		t.Errorf("second open waited %v", waited)
	}
}

func TestBoltSlowSubscriberGetsReset(t *testing.T) {
	b := newBolt(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	slow := b.Subscribe(ctx)
	fast := b.Subscribe(ctx)
	received := make(chan int)
	go func() {
		n := 0
		for c := range fast {
			if c.Reset {
				t.Error("fast subscriber got a Reset")
			}
			n++
		}
		received <- n
	}()
	const writes = 300 // more than a subscriber buffers
	for i := range writes {
		err := b.Update(ctx, func(tx store.Tx) error {
			tx.Notify("K")
			return tx.Put("t", "x", []byte{byte(i)})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// The slow subscriber lost what it had queued and got a Reset instead,
	// followed by the changes after it, in order.
	var got []store.Change
	for done := false; !done; {
		select {
		case c := <-slow:
			got = append(got, c)
		default:
			done = true
		}
	}
	resets := 0
	for i, c := range got {
		if c.Reset {
			resets++
		}
		if i > 0 && c.Revision <= got[i-1].Revision {
			t.Errorf("revision %d after %d", c.Revision, got[i-1].Revision)
		}
	}
	if resets == 0 || len(got) >= writes || got[len(got)-1].Revision != writes {
		t.Errorf("slow subscriber got %d messages with %d resets, last %+v", len(got), resets, got[len(got)-1])
	}
	// Writers were never blocked, and the feed carries on after the Reset.
	if err := b.Update(ctx, func(tx store.Tx) error { tx.Notify("K2"); return nil }); err != nil {
		t.Fatal(err)
	}
	if c := <-slow; c.Reset || c.Revision != writes+1 || len(c.APIKeys) != 1 || c.APIKeys[0] != "K2" {
		t.Errorf("after the Reset: %+v", c)
	}
	cancel()
	if n := <-received; n != writes+1 {
		t.Errorf("fast subscriber got %d changes, want %d", n, writes+1)
	}
}

func TestBoltUpdateWithoutNotifyPublishesNothing(t *testing.T) {
	b := newBolt(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	feed := b.Subscribe(ctx)
	if err := b.Update(ctx, func(tx store.Tx) error { return tx.Put("t", "a", []byte("1")) }); err != nil {
		t.Fatal(err)
	}
	if err := b.Update(ctx, func(tx store.Tx) error { tx.Notify("A", "A", "B"); return nil }); err != nil {
		t.Fatal(err)
	}
	if c := <-feed; c.Revision != 1 || len(c.APIKeys) != 2 || c.APIKeys[0] != "A" || c.APIKeys[1] != "B" {
		t.Errorf("change %+v, want revision 1 for A and B", c)
	}
	// Notify in a read-only transaction announces nothing.
	if err := b.View(ctx, func(tx store.Tx) error { tx.Notify("C"); return nil }); err != nil {
		t.Fatal(err)
	}
	if rev, _ := b.Revision(); rev != 1 {
		t.Errorf("revision %d", rev)
	}
}

func TestBoltCloseEndsSubscriptions(t *testing.T) {
	b := must(boltstore.Open(filepath.Join(t.TempDir(), "store.db")))(t)
	feed := b.Subscribe(context.Background())
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-feed; ok {
		t.Error("feed open after Close")
	}
	if _, ok := <-b.Subscribe(context.Background()); ok {
		t.Error("Subscribe after Close returned an open feed")
	}
}

func TestBoltScan(t *testing.T) {
	b := newBolt(t)
	ctx := context.Background()
	err := b.Update(ctx, func(tx store.Tx) error {
		for _, id := range []string{"b", "a", "c", "d"} {
			if err := tx.Put("t", id, []byte(id)); err != nil {
				return err
			}
		}
		return tx.Delete("t", "d")
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		after string
		limit int
		want  string
	}{
		{"", 0, "abc"}, {"", 2, "ab"}, {"a", 0, "bc"}, {"aa", 1, "b"}, {"c", 0, ""}, {"zzz", 5, ""},
	} {
		var got string
		err := b.View(ctx, func(tx store.Tx) error {
			records, err := tx.Scan("t", tt.after, tt.limit)
			for _, r := range records {
				if r.ID != string(r.Value) {
					t.Errorf("record %s holds %s", r.ID, r.Value)
				}
				got += r.ID
			}
			return err
		})
		if err != nil || got != tt.want {
			t.Errorf("Scan after %q limit %d = %q, %v; want %q", tt.after, tt.limit, got, err, tt.want)
		}
	}
	if v, err := b.Get(ctx, "missing-table", "x"); v != nil || err != nil {
		t.Errorf("Get from a missing table: %q, %v", v, err)
	}
}

func BenchmarkBoltLoadCredential(b *testing.B) {
	ctx := context.Background()
	s, err := store.Open(newBolt(b), store.Options{MasterKeys: [][]byte{testMasterKey}})
	if err != nil {
		b.Fatal(err)
	}
	actor := store.Actor{Name: "bench"}
	if _, err := s.CreateGroup(ctx, store.Group{Name: "g"}, actor); err != nil {
		b.Fatal(err)
	}
	var apiKeys []string
	for i := range 100 {
		k, err := s.CreateKey(ctx, store.NewKey{Name: fmt.Sprintf("k%d", i)}, actor)
		if err != nil {
			b.Fatal(err)
		}
		_, err = s.CreateAuthorization(ctx, store.NewAuthorization{
			AccessKeyID: k.ID, AllowedIPs: []string{"10.0.0.0/8"},
			Bindings: []store.Binding{{Group: "g", Environment: "online"}, {Group: "g", Environment: "test"}},
		}, actor)
		if err != nil {
			b.Fatal(err)
		}
		apiKeys = append(apiKeys, k.APIKey)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := s.LoadCredential(ctx, apiKeys[i%len(apiKeys)]); err != nil {
			b.Fatal(err)
		}
	}
}

func must[T any](v T, err error) func(t *testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// BenchmarkBoltKeyListPages measures one page of the key list among
// 100,000 keys: newest first (a backwards walk of one page), and a search
// that matches nothing, which examines its whole budget of
// store.KeyScanBudget keys (the cost docs/admin-api.md states).
func BenchmarkBoltKeyListPages(b *testing.B) {
	ctx := context.Background()
	backend := newBolt(b)
	s, err := store.Open(backend, store.Options{MasterKeys: [][]byte{testMasterKey}})
	if err != nil {
		b.Fatal(err)
	}
	// Bare records of the "keys" table: what the list reads.
	const keys, batch = 100_000, 10_000
	for start := 0; start < keys; start += batch {
		err := backend.Update(ctx, func(tx store.Tx) error {
			for i := start; i < start+batch; i++ {
				id := fmt.Sprintf("ak-%026d", i)
				rec, _ := json.Marshal(store.AccessKey{ID: id, Name: "key-" + id, Kind: store.KindGenerated,
					APIKey: fmt.Sprintf("%032X", i), Enabled: true, CreatedAt: time.Now()})
				if err := tx.Put("keys", id, rec); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	for _, bc := range []struct {
		name   string
		filter store.KeyFilter
	}{
		{"newest-first", store.KeyFilter{}},
		{"search-budget", store.KeyFilter{Query: "no-such-key"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := s.ListKeys(ctx, bc.filter, store.Page{Limit: 50}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
