package store_test

import (
	"context"
	"io"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/accessauth/caddy-access-auth/internal/bulkgen"
	"github.com/accessauth/caddy-access-auth/store"
	boltstore "github.com/accessauth/caddy-access-auth/store/bolt"
)

// stagedBackend is the embedded engine with the two stages of Redis: a
// write is visible when Update commits and durable a little later (a
// replica's acknowledgement). It records how ImportFrom's batches overlap.
type stagedBackend struct {
	store.Backend
	durableAfter time.Duration

	mu        sync.Mutex
	visible   int // writes visible so far
	durable   int // writes durable so far
	started   []int
	overlaps  int // writes begun while an earlier one was visible, not durable
	violation string
}

func (b *stagedBackend) UpdateStaged(ctx context.Context, fn func(store.Tx) error, visible func()) error {
	b.mu.Lock()
	if b.visible < len(b.started) {
		b.violation = "a write began before the last one was visible"
	}
	if len(b.started)-b.durable > 1 {
		b.violation = "a write began with two earlier ones not durable"
	}
	if b.visible > b.durable {
		b.overlaps++
	}
	b.started = append(b.started, len(b.started))
	b.mu.Unlock()

	if err := b.Backend.Update(ctx, fn); err != nil {
		return err
	}
	b.mu.Lock()
	b.visible++
	b.mu.Unlock()
	visible()
	time.Sleep(b.durableAfter)
	b.mu.Lock()
	b.durable++
	b.mu.Unlock()
	return nil
}

// TestImportFromOverlapsBatches: ImportFrom reads and prepares a batch
// while the last one becomes durable, never begins one before the last is
// visible nor holds more than two, and returns once every batch is durable.
func TestImportFromOverlapsBatches(t *testing.T) {
	bolt, err := boltstore.Open(filepath.Join(t.TempDir(), "store.db"))
	if err != nil {
		t.Fatal(err)
	}
	backend := &stagedBackend{Backend: bolt, durableAfter: 20 * time.Millisecond}
	s, err := store.Open(backend, store.Options{MasterKeys: [][]byte{testMasterKey}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	n := 4*store.ImportBatch + 1 // 5 batches of keys, 5 of authorizations
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(bulkgen.Write(pw, bulkgen.Spec{Keys: n, Group: "bulk", MasterKey: testMasterKey}))
	}()
	sum, err := s.ImportFrom(context.Background(), pr, store.Actor{Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if want := (store.ImportSummary{Keys: n, Authorizations: n, Groups: 1}); sum != want {
		t.Fatalf("summary %+v, want %+v", sum, want)
	}
	backend.mu.Lock()
	defer backend.mu.Unlock()
	if backend.violation != "" {
		t.Fatal(backend.violation)
	}
	if backend.durable != len(backend.started) {
		t.Fatalf("ImportFrom returned with %d of %d writes durable", backend.durable, len(backend.started))
	}
	if backend.overlaps < len(backend.started)/2 {
		t.Errorf("%d of %d writes began while the one before became durable", backend.overlaps, len(backend.started))
	}
}
