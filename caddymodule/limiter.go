package caddymodule

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"

	"go.uber.org/zap"

	"github.com/accessauth/caddy-access-auth/limits"
	"github.com/accessauth/caddy-access-auth/store"
	redisstore "github.com/accessauth/caddy-access-auth/store/redis"
)

// limiterCloseTimeout bounds the last flush of a limiter's counts.
const limiterCloseTimeout = 2 * time.Second

// openLimiter makes the node's usage-plan limiter over st: with Redis the
// nodes share budgets through leases on backend, with the embedded store
// the counts go to st's counters (docs/usage-plans.md).
func openLimiter(st *store.Store, backend store.Backend, logger *zap.Logger) *limits.Limiter {
	cfg := limits.Config{
		Plans:         st,
		Counts:        st,
		StoreRequests: func(n int) { limitStoreRequests.Add(float64(n)) },
		// Failed leases are retried once a second per budget: not a log
		// line each while Redis is down (store_up shows the outage).
		Errors: func(op string, err error) {
			logger.Debug("usage plans: store request failed", zap.String("op", op), zap.Error(err))
		},
	}
	if r, ok := backend.(*redisstore.Backend); ok {
		cfg.Shared, cfg.Node = r, newNodeID()
	}
	return limits.New(cfg)
}

// newNodeID names this process among the nodes sharing budgets.
func newNodeID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// closeLimiter writes the counts lim has not flushed yet.
func closeLimiter(lim *limits.Limiter) {
	ctx, cancel := context.WithTimeout(context.Background(), limiterCloseTimeout)
	defer cancel()
	lim.Close(ctx)
}
