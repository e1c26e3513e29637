package limits

import (
	"context"
	"time"
)

// Lease sizing and retries of shared counters (see the package doc).
const (
	firstLease     = 16
	maxLease       = 1 << 16
	leaseFast      = 500 * time.Millisecond // a block spent sooner: the next one doubles
	leaseSlow      = 2 * time.Second        // a block that lasted longer: the next one halves
	exhaustedRetry = time.Second            // a spent counter is asked again after this
	outageRetry    = time.Second            // a failed lease is tried again after this
	// storeTimeout bounds a store request made on a request's path: an
	// unreachable Redis must cost a request little, and a request that
	// ends must not end the store's answer (it would read as an outage).
	storeTimeout = 250 * time.Millisecond
)

// pool is this node's part of one counter: a quota's in one period, or (on
// several nodes) a rate window's.
type pool struct {
	name      string
	limit     int64
	endsAt    time.Time // the period or window ends: the next one is a new pool
	expiresAt time.Time // the store may drop the counter then
	persist   bool      // a quota: its spent tokens must reach the store's counter
	owner     *budget   // whose mutex guards the pool

	loaded  bool  // one node: the store's count was read
	used    int64 // the counter as this node knows it (leased tokens included)
	pending int64 // spent tokens not yet added to the store's counter

	held     int64 // several nodes: leased tokens not spent yet
	own      int64 // tokens this node granted itself while Redis failed
	outage   bool  // own tokens were granted in this pool already
	size     int64 // the demand-driven size of the next lease
	leasedAt time.Time
	retryAt  time.Time // no lease is asked before
}

func newPool(owner *budget, name string, limit int64, endsAt, expiresAt time.Time, persist bool) *pool {
	return &pool{owner: owner, name: name, limit: limit, endsAt: endsAt, expiresAt: expiresAt, persist: persist, size: firstLease}
}

// ready reports whether a token can be spent at now, reading the store's
// count (one node) or, on several, leasing a block when lease is set and
// reading the shared counter when not.
func (p *pool) ready(ctx context.Context, l *Limiter, now time.Time, lease bool) bool {
	if l.shared == nil {
		if !p.loaded {
			p.load(ctx, l)
		}
		return p.used < p.limit
	}
	if p.held+p.own > 0 {
		return true
	}
	if now.Before(p.retryAt) {
		return false
	}
	if !lease {
		return p.read(ctx, l)
	}
	p.lease(ctx, l, now)
	return p.held+p.own > 0
}

// read brings the shared counter's value up to date with a lease of
// nothing, which changes no count, and reports whether a token is left;
// when Redis fails it answers what a lease would grant.
func (p *pool) read(ctx context.Context, l *Limiter) bool {
	ctx, cancel := storeContext(ctx)
	defer cancel()
	_, used, err := l.shared.Lease(ctx, p.name, 0, p.limit, p.expiresAt)
	l.storeRequests(1)
	if err != nil {
		l.failed("lease", err)
		return !p.outage && p.used < p.limit
	}
	p.used = used
	return used < p.limit
}

// load adds the store's count to what this node counted; on failure the
// next request tries again.
func (p *pool) load(ctx context.Context, l *Limiter) {
	if l.counts == nil {
		p.loaded = true
		return
	}
	ctx, cancel := storeContext(ctx)
	defer cancel()
	counts, err := l.counts.Counts(ctx, []string{p.name})
	if err != nil || len(counts) != 1 {
		l.failed("counts", err)
		return
	}
	p.used += counts[0]
	p.loaded = true
}

func storeContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
}

// spend takes the token ready found.
func (p *pool) spend(l *Limiter) {
	switch {
	case l.shared == nil:
		p.used++
		p.addPending(l)
	case p.held > 0:
		p.held--
	default:
		p.own--
		p.used++
		p.addPending(l)
	}
}

func (p *pool) addPending(l *Limiter) {
	if !p.persist {
		return
	}
	if p.pending == 0 {
		l.markDirty(p.owner)
	}
	p.pending++
}

// remaining is what is left of the counter as this node knows it.
func (p *pool) remaining() int64 { return max(0, p.limit-p.used+p.held+p.own) }

// lease asks Redis for a block; on failure the node grants itself its share
// of what it last knew remained, once per pool.
func (p *pool) lease(ctx context.Context, l *Limiter, now time.Time) {
	nodes := l.nodes.Load()
	want := p.nextSize(now, nodes)
	ctx, cancel := storeContext(ctx)
	defer cancel()
	granted, used, err := l.shared.Lease(ctx, p.name, want, p.limit, p.expiresAt)
	l.storeRequests(1)
	if err != nil {
		l.failed("lease", err)
		if !p.outage {
			p.outage = true
			p.own = shareOf(p.limit-p.used, nodes)
		}
		p.retryAt = now.Add(outageRetry)
		return
	}
	p.held += granted
	p.used = used
	p.leasedAt = now
	if granted < want {
		// The counter is spent: every token left is in some node's block.
		// A quota's may come back (a node closing, a limit raised); a rate
		// window's only end.
		p.retryAt = p.endsAt
		if p.persist {
			p.retryAt = minTime(now.Add(exhaustedRetry), p.endsAt)
		}
	}
}

// nextSize is the size of the next lease: demand-driven, at most half of
// this node's share of what remains, at least 1.
func (p *pool) nextSize(now time.Time, nodes int64) int64 {
	if !p.leasedAt.IsZero() {
		switch since := now.Sub(p.leasedAt); {
		case since < leaseFast:
			p.size *= 2
		case since > leaseSlow:
			p.size /= 2
		}
	}
	p.size = min(max(p.size, 1), maxLease)
	fair := (p.limit - p.used) / (2 * max(nodes, 1))
	return max(1, min(p.size, fair))
}

// shareOf is one node's share of n tokens among nodes, rounded up.
func shareOf(n, nodes int64) int64 {
	if n <= 0 {
		return 0
	}
	nodes = max(nodes, 1)
	return (n + nodes - 1) / nodes
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
