package caddymodule

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/accessauth/caddy-access-auth/store"
)

// usageFlushInterval is how often the keys' last uses are written to the
// store. last_used_at is approximate (docs/admin-api.md): one write per interval keeps
// store round trips off the request path.
var usageFlushInterval = 10 * time.Second

// Bounds of one flush: a write of at most usageBatch keys, each given
// usageFlushTimeout (a flush that fails is dropped, not retried).
const (
	usageBatch        = 500
	usageFlushTimeout = 2 * time.Second
)

// usage collects when access keys were last let through, until the next
// flush writes them to the store as last_used_at.
type usage struct {
	mu   sync.Mutex
	last map[string]time.Time // access key ID → latest use
}

func newUsage() *usage { return &usage{last: make(map[string]time.Time)} }

// record notes that the access key was used at.
func (u *usage) record(accessKeyID string, at time.Time) {
	u.mu.Lock()
	if prev, ok := u.last[accessKeyID]; !ok || at.After(prev) {
		u.last[accessKeyID] = at
	}
	u.mu.Unlock()
}

// take returns the uses recorded since the last take.
func (u *usage) take() map[string]time.Time {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.last) == 0 {
		return nil
	}
	taken := u.last
	u.last = make(map[string]time.Time, len(taken))
	return taken
}

// flushUsage writes the recorded uses to s every usageFlushInterval, and
// once more when ctx ends, then closes done.
func flushUsage(ctx context.Context, s *store.Store, u *usage, logger *zap.Logger, done chan<- struct{}) {
	defer close(done)
	ticker := time.NewTicker(usageFlushInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ticker.C:
			writeUsage(context.Background(), s, u.take(), logger)
		case <-ctx.Done():
			writeUsage(context.Background(), s, u.take(), logger)
			return
		}
	}
}

func writeUsage(ctx context.Context, s *store.Store, uses map[string]time.Time, logger *zap.Logger) {
	batch := make(map[string]time.Time, min(len(uses), usageBatch))
	for id, at := range uses {
		batch[id] = at
		if len(batch) == usageBatch {
			markUsed(ctx, s, batch, logger)
			clear(batch)
		}
	}
	markUsed(ctx, s, batch, logger)
}

func markUsed(ctx context.Context, s *store.Store, batch map[string]time.Time, logger *zap.Logger) {
	if len(batch) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, usageFlushTimeout)
	defer cancel()
	if err := s.MarkUsed(ctx, batch); err != nil {
		logger.Warn("recording when access keys were last used", zap.Int("keys", len(batch)), zap.Error(err))
	}
}
