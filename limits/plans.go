package limits

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/accessauth/caddy-access-auth/store"
)

// plan is a plan's definition in the form Take reads it. A plan's record
// that changes is a new *plan: budgets compare pointers to notice.
type plan struct {
	rate     *store.PlanRate
	burst    int64
	per      time.Duration // the rate's period
	interval time.Duration // time to gain one token
	quota    *store.PlanQuota
}

// capacity is the bucket's size: the rate's requests plus the burst.
func (p *plan) capacity() int64 { return p.rate.Requests + p.burst }

func compilePlan(sp store.Plan) *plan {
	p := &plan{rate: sp.Rate, burst: sp.Burst, quota: sp.Quota}
	if p.rate != nil {
		switch p.rate.Per {
		case store.PerMinute:
			p.per = time.Minute
		case store.PerHour:
			p.per = time.Hour
		default:
			p.per = time.Second
		}
		p.interval = max(1, p.per/time.Duration(p.rate.Requests))
	}
	return p
}

// planEntry is a cached plan: nil def when the store has none or could not
// be asked (retried after retryAt then).
type planEntry struct {
	def     *plan
	retryAt time.Time
}

// planCache holds the plans budgets name, read from the store once each.
type planCache struct {
	src Plans
	mu  sync.RWMutex
	all map[string]planEntry
}

func newPlanCache(src Plans) *planCache {
	return &planCache{src: src, all: make(map[string]planEntry)}
}

// get returns the plan named, nil when there is none to apply.
func (c *planCache) get(ctx context.Context, name string, now time.Time) *plan {
	c.mu.RLock()
	e, ok := c.all[name]
	c.mu.RUnlock()
	if ok && (e.def != nil || now.Before(e.retryAt)) {
		return e.def
	}
	ctx, cancel := storeContext(ctx)
	defer cancel()
	e, _ = c.load(ctx, name, now)
	c.mu.Lock()
	c.all[name] = e
	c.mu.Unlock()
	return e.def
}

// loadBounded is load within backgroundTimeout (Run's refresh).
func loadBounded(ctx context.Context, c *planCache, name string, now time.Time) (planEntry, bool) {
	ctx, cancel := context.WithTimeout(ctx, backgroundTimeout)
	defer cancel()
	return c.load(ctx, name, now)
}

// load reads a plan; failed says the store could not be asked.
func (c *planCache) load(ctx context.Context, name string, now time.Time) (e planEntry, failed bool) {
	sp, err := c.src.GetPlan(ctx, name)
	switch {
	case err == nil:
		return planEntry{def: compilePlan(sp)}, false
	case errors.Is(err, store.ErrNotFound):
		// Deleted while a cached authorization still named it: no limit
		// until the feed says more.
		return planEntry{retryAt: now.Add(time.Hour)}, false
	}
	return planEntry{retryAt: now.Add(outageRetry)}, true
}

// refresh reads every cached plan again; a plan whose record is unchanged
// keeps its *plan, so budgets keep their state.
func (c *planCache) refresh(ctx context.Context, now time.Time) {
	c.mu.RLock()
	names := make([]string, 0, len(c.all))
	for name := range c.all {
		names = append(names, name)
	}
	c.mu.RUnlock()
	for _, name := range names {
		e, failed := loadBounded(ctx, c, name, now)
		if failed {
			continue // keep what is known; the next change tries again
		}
		c.mu.Lock()
		if old := c.all[name]; old.def != nil && e.def != nil && old.def.same(e.def) {
			e.def = old.def
		}
		c.all[name] = e
		c.mu.Unlock()
	}
}

func (p *plan) same(o *plan) bool {
	return p.burst == o.burst && equalPtr(p.rate, o.rate) && equalPtr(p.quota, o.quota)
}

func equalPtr[T comparable](a, b *T) bool {
	return a == b || (a != nil && b != nil && *a == *b)
}
