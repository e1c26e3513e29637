package storetest

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/accessauth/caddy-access-auth/store"
)

// testAuditRetention: PruneAudit removes the records older than the
// cutoff, at most store.AuditPruneBatch per call, and keeps the rest.
func testAuditRetention(t *testing.T, newBackend func(t *testing.T) store.Backend) {
	e := newEnv(t, newBackend)
	e.group("old-1")
	e.group("old-2")
	e.clock.Advance(100 * 24 * time.Hour)
	cutoff := e.clock.Now().Add(-store.DefaultAuditRetention)
	e.group("new-1")
	e.group("new-2")

	// More old records than one batch, written as the store writes them.
	extra := store.AuditPruneBatch + 5
	oldest := cutoff.Add(-time.Hour)
	noErr(t, e.backend.Update(e.ctx, func(tx store.Tx) error {
		for i := range extra {
			at := oldest.Add(-time.Duration(i) * time.Second)
			id := fmt.Sprintf("%016x-%08x", math.MaxUint64-uint64(at.UnixNano()), i)
			if err := tx.Put("audit", id, fmt.Appendf(nil, `{"at":%q,"actor":"t","action":"group.create","target":"x"}`, at.Format(time.RFC3339Nano))); err != nil {
				return err
			}
		}
		return nil
	}))

	for _, want := range []int{store.AuditPruneBatch, extra + 2 - store.AuditPruneBatch, 0} {
		n, err := e.s.PruneAudit(e.ctx, cutoff)
		noErr(t, err)
		if n != want {
			t.Fatalf("PruneAudit removed %d, want %d", n, want)
		}
	}
	records := e.audit()
	if len(records) != 2 || records[0].Target != "new-2" || records[1].Target != "new-1" {
		t.Fatalf("after pruning, audit = %+v, want new-2 and new-1", records)
	}
	// Pruning wrote neither audit nor change: the groups are still there.
	if _, err := e.s.GetGroup(e.ctx, "old-1"); err != nil {
		t.Errorf("pruning the audit touched the data: %v", err)
	}
	n, err := e.s.PruneAuditAll(e.ctx, e.clock.Now(), time.Millisecond)
	noErr(t, err)
	if n != 2 || len(e.audit()) != 0 {
		t.Errorf("PruneAuditAll up to now removed %d, left %d; want 2 and 0", n, len(e.audit()))
	}
}
