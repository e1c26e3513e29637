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
// keys keep serving through an outage (docs/coherence.md) and a replay to this node
// is still refused. Every nonce goes to the node's memory too, the ones the
// store answers for included: a request this node accepted before the
// store went away is then still refused when replayed to it. The nonces
// accepted during an outage are known only here: for as long as they could
// be replayed (their ttl), a nonce the store calls fresh is refused when
// this node's memory has it.
type fallbackNonces struct {
	shared enforcement.NonceStore
	local  *enforcement.LocalNonces
	now    func() time.Time
	// checkLocalUntil is when (Unix nanoseconds) the last nonce recorded
	// only in memory expires.
	checkLocalUntil atomic.Int64
}

func newFallbackNonces(shared enforcement.NonceStore, local *enforcement.LocalNonces) *fallbackNonces {
	return &fallbackNonces{shared: shared, local: local, now: time.Now}
}

// Seen is SeenAt at the current time.
func (n *fallbackNonces) Seen(ctx context.Context, apiKey, nonce string, ttl time.Duration) (bool, error) {
	return n.SeenAt(ctx, apiKey, nonce, n.now(), ttl)
}

// SeenAt asks the shared store and records the nonce in this node's
// memory, whose answer counts when the store fails or failed recently.
func (n *fallbackNonces) SeenAt(ctx context.Context, apiKey, nonce string, now time.Time, ttl time.Duration) (bool, error) {
	seen, err := n.shared.Seen(ctx, apiKey, nonce, ttl)
	seenHere, _ := n.local.SeenAt(ctx, apiKey, nonce, now, ttl)
	if err != nil {
		until := now.Add(ttl).UnixNano()
		for {
			old := n.checkLocalUntil.Load()
			if old >= until || n.checkLocalUntil.CompareAndSwap(old, until) {
				break
			}
		}
		return seenHere, nil
	}
	if seen || now.UnixNano() >= n.checkLocalUntil.Load() {
		return seen, nil
	}
	return seenHere, nil
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

// Interface guards
var _ enforcement.NonceStoreAt = (*fallbackNonces)(nil)
