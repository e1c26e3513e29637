package caddymodule

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/accessauth/caddy-access-auth/replay"
	"github.com/accessauth/caddy-access-auth/store"
)

// Store operations, the op label of the store metrics.
const (
	opGet    = "get"    // one record: a cache miss
	opView   = "view"   // a read transaction (admin API)
	opUpdate = "update" // a write transaction (admin API, route registration)
	opNonce  = "nonce"  // replay protection in the store
	opCount  = "count"  // counters: quota budgets and daily usage
)

var (
	storeRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy",
		Subsystem: "access_auth",
		Name:      "store_requests_total",
		Help:      "Requests to the store by operation (get, view, update, nonce, count) and result (ok, error: the store failed or could not be reached).",
	}, []string{"op", "result"})

	storeDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "caddy",
		Subsystem: "access_auth",
		Name:      "store_request_duration_seconds",
		Help:      "Time the store took to answer, by operation.",
		Buckets:   prometheus.ExponentialBuckets(25e-6, 2, 17), // 25 µs … ~1.6 s
	}, []string{"op"})

	propagationLag = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "caddy",
		Subsystem: "access_auth",
		Name:      "propagation_lag_seconds",
		Help:      "Time from a store commit to this node's cache hearing of it (Redis: from the server's clock, to the millisecond).",
		Buckets:   prometheus.ExponentialBuckets(5e-4, 2, 15), // 0.5 ms … ~8 s
	})
)

// storeOpMetrics are one operation's collectors, resolved once.
type storeOpMetrics struct {
	ok, failed prometheus.Counter
	duration   prometheus.Observer
}

var storeOps = func() map[string]*storeOpMetrics {
	m := make(map[string]*storeOpMetrics)
	for _, op := range []string{opGet, opView, opUpdate, opNonce, opCount} {
		m[op] = &storeOpMetrics{
			ok:       storeRequests.WithLabelValues(op, "ok"),
			failed:   storeRequests.WithLabelValues(op, "error"),
			duration: storeDuration.WithLabelValues(op),
		}
	}
	return m
}()

// storeErrorLogInterval spaces the ERROR lines of a failing store: while
// Redis is down every cache miss fails, and one line a second says as much.
const storeErrorLogInterval = time.Second

// storeErrorLog logs one backend's failures at ERROR, at most one line per
// operation and interval, with the number of that operation's failures it
// did not log: a background operation failing (a usage flush, a route's
// registration) does not hide the failures of requests' lookups.
type storeErrorLog struct {
	mu         sync.Mutex
	last       map[string]time.Time // by op: when its last line was written
	suppressed map[string]int64     // by op: failures since that line
}

func (l *storeErrorLog) log(op string, err error) {
	if notLogged, ok := l.admit(op, time.Now()); ok {
		caddy.Log().Named("access_auth.store").Error("store request failed",
			zap.String("op", op), zap.Error(err), zap.Int64("failures_not_logged", notLogged))
	}
}

// admit reports whether a failure of op at now gets a line, and how many of
// op's failures went unlogged since its last one.
func (l *storeErrorLog) admit(op string, now time.Time) (notLogged int64, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.last[op]) < storeErrorLogInterval {
		l.suppressed[op]++
		return 0, false
	}
	if l.last == nil {
		l.last, l.suppressed = make(map[string]time.Time), make(map[string]int64)
	}
	l.last[op] = now
	notLogged = l.suppressed[op]
	l.suppressed[op] = 0
	return notLogged, true
}

// observe counts one store request of op that started at start, and logs
// its failure.
func (l *storeErrorLog) observe(op string, start time.Time, err error) {
	m := storeOps[op]
	m.duration.Observe(time.Since(start).Seconds())
	if storeFailed(err) {
		m.failed.Inc()
		l.log(op, err)
		return
	}
	m.ok.Inc()
}

// storeFailed reports whether err means the store failed, as opposed to
// an answer of the store's rules (not found, name taken, invalid argument),
// which the caller reports as such.
func storeFailed(err error) bool {
	if err == nil {
		return false
	}
	var invalid *store.InvalidArgumentError
	for _, answer := range []error{store.ErrNotFound, store.ErrGroupNotFound, store.ErrNameTaken, store.ErrAuthorizationExists, store.ErrKeyInUse} {
		if errors.Is(err, answer) {
			return false
		}
	}
	return !errors.As(err, &invalid)
}

// meteredBackend counts and times the requests to a Backend and logs its
// failures.
type meteredBackend struct {
	store.Backend
	errors *storeErrorLog
}

func (b meteredBackend) View(ctx context.Context, fn func(store.Tx) error) error {
	start := time.Now()
	err := b.Backend.View(ctx, fn)
	b.errors.observe(opView, start, err)
	return err
}

func (b meteredBackend) Update(ctx context.Context, fn func(store.Tx) error) error {
	start := time.Now()
	err := b.Backend.Update(ctx, fn)
	b.errors.observe(opUpdate, start, err)
	return err
}

// UpdateStaged passes store.StagedUpdater on, metered as an Update.
func (b meteredBackend) UpdateStaged(ctx context.Context, fn func(store.Tx) error, visible func()) error {
	start := time.Now()
	err := store.UpdateStaged(ctx, b.Backend, fn, visible)
	b.errors.observe(opUpdate, start, err)
	return err
}

// UpdateAhead passes store.AheadUpdater on, metered as an Update: the wait
// for ready (the write before) is not the store's time, and its failure is
// the write before's, metered there.
func (b meteredBackend) UpdateAhead(ctx context.Context, fn func(store.Tx) error, ready func() error, visible func()) error {
	start := time.Now()
	var waited time.Duration
	var readyErr error
	err := store.UpdateAhead(ctx, b.Backend, fn, func() error {
		began := time.Now()
		readyErr = ready()
		waited = time.Since(began)
		return readyErr
	}, visible)
	if readyErr == nil {
		b.errors.observe(opUpdate, start.Add(waited), err)
	}
	return err
}

func (b meteredBackend) Get(ctx context.Context, table, id string) ([]byte, error) {
	start := time.Now()
	v, err := b.Backend.Get(ctx, table, id)
	b.errors.observe(opGet, start, err)
	return v, err
}

// AddCounts passes store.Counters on, metered; a backend without them
// answers store.ErrNoCounters.
func (b meteredBackend) AddCounts(ctx context.Context, deltas []store.CountDelta) error {
	c, ok := b.Backend.(store.Counters)
	if !ok {
		return store.ErrNoCounters
	}
	start := time.Now()
	err := c.AddCounts(ctx, deltas)
	b.errors.observe(opCount, start, err)
	return err
}

// Counts passes store.Counters on, metered.
func (b meteredBackend) Counts(ctx context.Context, names []string) ([]int64, error) {
	c, ok := b.Backend.(store.Counters)
	if !ok {
		return nil, store.ErrNoCounters
	}
	start := time.Now()
	values, err := c.Counts(ctx, names)
	b.errors.observe(opCount, start, err)
	return values, err
}

// meteredNonces counts and times replay checks in the store.
type meteredNonces struct {
	replay.Seer
	errors *storeErrorLog
}

func (n meteredNonces) Seen(ctx context.Context, apiKey, nonce string, date time.Time, ttl time.Duration) (bool, error) {
	start := time.Now()
	seen, err := n.Seer.Seen(ctx, apiKey, nonce, date, ttl)
	n.errors.observe(opNonce, start, err)
	return seen, err
}

func (n meteredNonces) Recorded(ctx context.Context, apiKey, nonce string, date time.Time) (bool, error) {
	start := time.Now()
	seen, err := n.Seer.Recorded(ctx, apiKey, nonce, date)
	n.errors.observe(opNonce, start, err)
	return seen, err
}

// observePropagation passes the change feed on, observing for each change
// how long after its commit it arrived and telling each of tell of it (the
// usage-plan limiter reads its plans again). The returned channel closes
// when feed does or ctx ends.
func observePropagation(ctx context.Context, feed <-chan store.Change, tell ...func()) <-chan store.Change {
	out := make(chan store.Change)
	go func() {
		defer close(out)
		for {
			select {
			case <-ctx.Done():
				return
			case c, ok := <-feed:
				if !ok {
					return
				}
				if !c.At.IsZero() {
					propagationLag.Observe(max(time.Since(c.At), 0).Seconds())
				}
				for _, f := range tell {
					f()
				}
				select {
				case out <- c:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out
}

// Interface guards: the metered backend passes on what the engines offer.
var (
	_ store.Backend       = meteredBackend{}
	_ store.StagedUpdater = meteredBackend{}
	_ store.AheadUpdater  = meteredBackend{}
	_ store.Counters      = meteredBackend{}
)
