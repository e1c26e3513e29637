package store

import (
	"context"
	"fmt"
	"math"
	"time"
)

// DefaultAuditRetention is how long audit records are kept unless the
// audit_retention option says otherwise (docs/configuration.md).
const DefaultAuditRetention = 90 * 24 * time.Hour

// AuditPruneBatch is how many audit records one PruneAudit call removes
// at most: a bounded transaction that never holds the store for long.
const AuditPruneBatch = 1000

// PruneAudit removes up to AuditPruneBatch audit records made before
// cutoff and returns how many it removed; fewer than AuditPruneBatch means
// none older is left. Removing writes no audit record and announces no
// change: audit records compile into no credential.
func (s *Store) PruneAudit(ctx context.Context, cutoff time.Time) (int, error) {
	// Audit IDs sort newest first (auditID), so the records older than
	// cutoff are exactly those after its inverted time.
	after := fmt.Sprintf("%016x", math.MaxUint64-uint64(cutoff.UnixNano()))
	removed := 0
	err := s.backend.Update(ctx, func(tx Tx) error {
		removed = 0
		records, err := tx.Scan(tblAudit, after, AuditPruneBatch)
		if err != nil {
			return err
		}
		for _, r := range records {
			if err := tx.Delete(tblAudit, r.ID); err != nil {
				return err
			}
		}
		removed = len(records)
		return nil
	})
	return removed, err
}

// PruneAuditAll calls PruneAudit until no record older than cutoff is left
// or ctx ends, pausing between batches so that admin writes interleave.
func (s *Store) PruneAuditAll(ctx context.Context, cutoff time.Time, pause time.Duration) (int, error) {
	total := 0
	for {
		n, err := s.PruneAudit(ctx, cutoff)
		total += n
		if err != nil || n < AuditPruneBatch {
			return total, err
		}
		select {
		case <-ctx.Done():
			return total, ctx.Err()
		case <-time.After(pause):
		}
	}
}
