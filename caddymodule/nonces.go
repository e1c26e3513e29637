package caddymodule

import (
	"context"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/accessauth/caddy-access-auth/enforcement"
)

// fallbackNonces is replay protection in the shared store that falls back
// to this node's memory while the store cannot be reached, so that cached
// keys keep serving through an outage (SPEC §7) and a replay to this node
// is still refused. The nonces accepted meanwhile are known only here: for
// as long as they could be replayed (their ttl), a nonce the store calls
// fresh is checked against this node's memory too.
type fallbackNonces struct {
	shared enforcement.NonceStore
	local  enforcement.NonceStore
	now    func() time.Time
	// checkLocalUntil is when (Unix nanoseconds) the last nonce recorded
	// only in memory expires.
	checkLocalUntil atomic.Int64
}

func newFallbackNonces(shared, local enforcement.NonceStore) *fallbackNonces {
	return &fallbackNonces{shared: shared, local: local, now: time.Now}
}

// Seen asks the shared store, and this node's memory when the store fails
// or failed recently.
func (n *fallbackNonces) Seen(ctx context.Context, apiKey, nonce string, ttl time.Duration) (bool, error) {
	seen, err := n.shared.Seen(ctx, apiKey, nonce, ttl)
	if err != nil {
		until := n.now().Add(ttl).UnixNano()
		for {
			old := n.checkLocalUntil.Load()
			if old >= until || n.checkLocalUntil.CompareAndSwap(old, until) {
				break
			}
		}
		return n.local.Seen(ctx, apiKey, nonce, ttl)
	}
	if seen || n.now().UnixNano() >= n.checkLocalUntil.Load() {
		return seen, nil
	}
	return n.local.Seen(ctx, apiKey, nonce, ttl)
}

// nonceTableCheckInterval is how often the node's nonce tables are looked
// at.
const nonceTableCheckInterval = 10 * time.Second

// watchNonceTables warns, at most once an interval, while one of the node's
// nonce tables is full: it dropped nonces in the first half of their time
// (enforcement.LocalNonces.Narrowed), so it refuses requests signed longer
// ago than it can vouch for. It returns when ctx ends.
func watchNonceTables(ctx context.Context, logger *zap.Logger, interval time.Duration, tables ...*enforcement.LocalNonces) {
	reported := make([]uint64, len(tables))
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		for i, t := range tables {
			n := t.Narrowed()
			if n == reported[i] {
				continue
			}
			logger.Warn("replay protection: this node's nonce table is full; requests whose nonces would expire by the horizon (signed two max_skew before it or earlier) are refused as date_out_of_range; raise local_nonces, use replay_protection store with a Redis store, or shorten max_skew",
				zap.Uint64("nonces_dropped_early", n-reported[i]), zap.Time("horizon", t.Horizon()))
			reported[i] = n
		}
	}
}
