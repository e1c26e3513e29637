package caddymodule

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/accessauth/caddy-access-auth/store"
)

// How often the node removes audit records older than audit_retention
// (docs/configuration.md), and the pause between two bounded batches so
// that admin writes are never held up for long. Every node prunes; the
// batches are idempotent, so nodes sharing Redis only repeat each other.
var (
	auditPruneInterval = time.Hour
	auditPrunePause    = 100 * time.Millisecond
)

// auditPruneTimeout bounds one pruning round.
const auditPruneTimeout = 10 * time.Minute

// pruneAudit removes old audit records once soon after start, then every
// auditPruneInterval, until ctx ends; then it closes done. retention is
// read at each round, so a reload that changes only audit_retention takes
// effect without reopening the store.
func pruneAudit(ctx context.Context, s *store.Store, retention func() time.Duration, logger *zap.Logger, done chan<- struct{}) {
	defer close(done)
	// The first round waits a while: start-up makes no store write for it.
	timer := time.NewTimer(auditPruneInterval / 60)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		round, cancel := context.WithTimeout(ctx, auditPruneTimeout)
		n, err := s.PruneAuditAll(round, time.Now().Add(-retention()), auditPrunePause)
		cancel()
		switch {
		case err != nil && ctx.Err() == nil:
			logger.Warn("removing old audit records; will retry", zap.Int("removed", n), zap.Error(err))
		case n > 0:
			logger.Info("removed old audit records", zap.Int("removed", n), zap.Duration("audit_retention", retention()))
		}
		timer.Reset(auditPruneInterval)
	}
}

// auditRetention is the audit_retention of the running config.
func auditRetention() time.Duration {
	if a := current.Load(); a != nil && a.AuditRetention > 0 {
		return time.Duration(a.AuditRetention)
	}
	return store.DefaultAuditRetention
}
