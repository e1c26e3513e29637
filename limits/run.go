package limits

import (
	"context"
	"time"

	"github.com/accessauth/caddy-access-auth/store"
)

// idleBudget is how long a budget unused is kept in memory; its quota count
// is in the store by then, and its bucket would be full again.
const idleBudget = 2 * time.Hour

// backgroundTimeout bounds each store request of Run, so that a Redis that
// does not answer never holds up a flush for long, nor the end of Run.
const backgroundTimeout = time.Second

// Changed tells the limiter the store changed (a change of its feed): the
// plans it holds are read again by Run. It never blocks.
func (l *Limiter) Changed() {
	select {
	case l.changed <- struct{}{}:
	default:
	}
}

// Run keeps the limiter's state flowing until ctx ends: spent quota tokens
// to the store every FlushEvery, plans read again after Changed, this
// node's presence among the nodes, idle budgets dropped. Close after it
// returns writes what is left.
func (l *Limiter) Run(ctx context.Context) {
	flush := time.NewTicker(l.cfg.FlushEvery)
	defer flush.Stop()
	var lastNodes, lastSweep time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-l.changed:
			l.plans.refresh(ctx, time.Now())
		case now := <-flush.C:
			bounded(ctx, l.flush)
			if l.shared != nil && now.Sub(lastNodes) >= nodesEvery {
				lastNodes = now
				bounded(ctx, l.heartbeat)
			}
			if now.Sub(lastSweep) >= idleBudget/4 {
				lastSweep = now
				l.sweep(now)
			}
		}
	}
}

// bounded runs f with ctx bounded by backgroundTimeout.
func bounded(ctx context.Context, f func(context.Context)) {
	ctx, cancel := context.WithTimeout(ctx, backgroundTimeout)
	defer cancel()
	f(ctx)
}

// Close writes the spent tokens not yet in the store and gives back the
// quota tokens this node leased and did not spend.
func (l *Limiter) Close(ctx context.Context) {
	if l.shared != nil {
		l.mu.RLock()
		for _, bu := range l.budgets {
			bu.mu.Lock()
			if q := bu.quota; q != nil && q.held > 0 {
				l.retire(store.CountDelta{Name: q.name, Delta: -q.held, ExpiresAt: q.expiresAt})
				q.held = 0
			}
			bu.mu.Unlock()
		}
		l.mu.RUnlock()
	}
	l.flush(ctx)
}

// markDirty lists a budget whose quota has pending tokens; bu is locked.
func (l *Limiter) markDirty(bu *budget) {
	l.dirtyMu.Lock()
	l.dirty = append(l.dirty, bu)
	l.dirtyMu.Unlock()
}

// retire keeps a delta for the next flush.
func (l *Limiter) retire(d store.CountDelta) {
	l.dirtyMu.Lock()
	l.retired = append(l.retired, d)
	l.dirtyMu.Unlock()
}

// flush adds the pending tokens to the store's counters in one batch; on
// failure they are kept for the next one.
func (l *Limiter) flush(ctx context.Context) {
	l.dirtyMu.Lock()
	dirty, deltas := l.dirty, l.retired
	l.dirty, l.retired = nil, nil
	l.dirtyMu.Unlock()
	for _, bu := range dirty {
		bu.mu.Lock()
		if q := bu.quota; q != nil && q.pending > 0 {
			deltas = append(deltas, store.CountDelta{Name: q.name, Delta: q.pending, ExpiresAt: q.expiresAt})
			q.pending = 0
		}
		bu.mu.Unlock()
	}
	if len(deltas) == 0 || l.counts == nil {
		return
	}
	err := l.counts.AddCounts(ctx, deltas)
	if l.shared != nil {
		l.storeRequests(1)
	}
	if err != nil {
		l.failed("add_counts", err)
		l.dirtyMu.Lock()
		l.retired = append(l.retired, deltas...)
		l.dirtyMu.Unlock()
	}
}

// heartbeat refreshes this node's presence and the count of live nodes
// that an outage's local share divides by.
func (l *Limiter) heartbeat(ctx context.Context) {
	n, err := l.shared.Nodes(ctx, l.cfg.Node, nodesTTL)
	l.storeRequests(1)
	if err != nil {
		l.failed("nodes", err)
		return
	}
	l.nodes.Store(max(n, 1))
}

// sweep drops the budgets unused for idleBudget whose counts are all in
// the store, giving back the quota tokens they hold (the next flush).
func (l *Limiter) sweep(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, bu := range l.budgets {
		bu.mu.Lock()
		q := bu.quota
		idle := now.Sub(bu.usedAt) > idleBudget && (q == nil || q.pending == 0)
		if idle && q != nil && q.held > 0 {
			l.retire(store.CountDelta{Name: q.name, Delta: -q.held, ExpiresAt: q.expiresAt})
			q.held = 0
		}
		bu.mu.Unlock()
		if idle {
			delete(l.budgets, k)
		}
	}
}
