package store_test

import (
	"context"
	"errors"
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
// write is visible when Update commits and durable later (a replica's
// acknowledgement): once the next write has begun, or after maxHold when
// none begins. It records how ImportFrom's batches overlap; holding each
// write until the next begins makes the overlap certain for a correct
// importer, however slowly a loaded machine runs it.
type stagedBackend struct {
	store.Backend
	maxHold time.Duration

	onVisible func() // called as each write becomes visible, unless nil

	mu        sync.Mutex
	running   int // writes under way
	visible   int // writes visible so far
	durable   int // writes durable so far
	begun     int // writes begun so far
	overlaps  int // writes begun while an earlier one was visible, not durable
	violation string
}

func (b *stagedBackend) UpdateStaged(ctx context.Context, fn func(store.Tx) error, visible func()) error {
	b.mu.Lock()
	if b.visible < b.begun {
		b.violation = "a write began before the last one was visible"
	}
	if b.begun-b.durable > 1 {
		b.violation = "a write began with two earlier ones not durable"
	}
	if b.visible > b.durable {
		b.overlaps++
	}
	b.begun++
	mine := b.begun
	b.running++
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		b.running--
		b.mu.Unlock()
	}()

	if err := b.Backend.Update(ctx, fn); err != nil {
		return err
	}
	b.mu.Lock()
	b.visible++
	b.mu.Unlock()
	if b.onVisible != nil {
		b.onVisible()
	}
	visible()
	for held := time.Duration(0); held < b.maxHold && !b.followed(mine); held += time.Millisecond {
		time.Sleep(time.Millisecond)
	}
	b.mu.Lock()
	b.durable++
	b.mu.Unlock()
	return nil
}

// followed reports whether a write began after the n-th.
func (b *stagedBackend) followed(n int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.begun > n
}

// TestImportFromOverlapsBatches: ImportFrom reads and prepares a batch
// while the last one becomes durable, never begins one before the last is
// visible nor holds more than two, and returns once every batch is durable.
func TestImportFromOverlapsBatches(t *testing.T) {
	backend, s := openStaged(t)
	n := 4*store.ImportBatch + 1 // 5 batches of keys, 5 of authorizations
	sum, err := s.ImportFrom(context.Background(), bulkExport(t, n), store.Actor{Name: "test"})
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
	if backend.durable != backend.begun {
		t.Fatalf("ImportFrom returned with %d of %d writes durable", backend.durable, backend.begun)
	}
	if backend.overlaps < backend.begun/2 {
		t.Errorf("%d of %d writes began while the one before became durable", backend.overlaps, backend.begun)
	}
}

// TestImportFromCancelled: an import whose context ends part way returns
// the context's error once no batch is still being written.
func TestImportFromCancelled(t *testing.T) {
	backend, s := openStaged(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	backend.onVisible = cancel // the first batch lands, then the client goes
	sum, err := s.ImportFrom(ctx, bulkExport(t, 4*store.ImportBatch), store.Actor{Name: "test"})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("ImportFrom = %v, want context.Canceled", err)
	}
	if want := (store.ImportSummary{Keys: store.ImportBatch, Groups: 1}); sum != want {
		t.Errorf("summary %+v, want the first batch's %+v", sum, want)
	}
	backend.mu.Lock()
	defer backend.mu.Unlock()
	if backend.running != 0 {
		t.Fatalf("%d writes still under way after ImportFrom returned", backend.running)
	}
	if backend.begun > 2 {
		t.Errorf("%d writes began, want no more than the one cancelled and the next", backend.begun)
	}
}

// openStaged opens a Store over a stagedBackend over a new bbolt file.
func openStaged(t *testing.T) (*stagedBackend, *store.Store) {
	bolt, err := boltstore.Open(filepath.Join(t.TempDir(), "store.db"))
	if err != nil {
		t.Fatal(err)
	}
	backend := &stagedBackend{Backend: bolt, maxHold: 200 * time.Millisecond}
	s, err := store.Open(backend, store.Options{MasterKeys: [][]byte{testMasterKey}})
	if err != nil {
		bolt.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return backend, s
}

// bulkExport streams an export of n keys with an authorization each; the
// stream ends with the test, read or not.
func bulkExport(t *testing.T, n int) io.Reader {
	pr, pw := io.Pipe()
	t.Cleanup(func() { pr.Close() })
	go func() {
		pw.CloseWithError(bulkgen.Write(pw, bulkgen.Spec{Keys: n, Group: "bulk", MasterKey: testMasterKey}))
	}()
	return pr
}
