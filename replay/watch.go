package replay

import (
	"context"
	"time"

	"go.uber.org/zap"
)

// TableCheckInterval is how often WatchTables looks at the node's nonce
// tables.
const TableCheckInterval = 10 * time.Second

// WatchTables warns, at most once an interval, while one of the node's
// nonce tables is full: it dropped nonces in the first half of their time
// (LocalNonces.Narrowed), so it refuses requests signed longer ago than it
// can vouch for. It returns when ctx ends.
func WatchTables(ctx context.Context, logger *zap.Logger, interval time.Duration, tables ...*LocalNonces) {
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
