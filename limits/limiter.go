package limits

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/accessauth/caddy-access-auth/store"
)

// Plans reads plans' definitions; *store.Store implements it.
type Plans interface {
	GetPlan(ctx context.Context, name string) (store.Plan, error)
}

// Counts keeps quota counts; *store.Store implements it.
type Counts interface {
	AddCounts(ctx context.Context, deltas []store.CountDelta) error
	Counts(ctx context.Context, names []string) ([]int64, error)
}

// Shared are the counters several nodes share (store/redis).
type Shared interface {
	// Lease adds up to want to the counter name, never taking it beyond
	// limit, and sets its expiry; it returns what it added and the
	// counter's value after; a want of 0 only reads it. One round trip,
	// atomic.
	Lease(ctx context.Context, name string, want, limit int64, expiresAt time.Time) (granted, used int64, err error)
	// Nodes announces this node as alive for ttl and returns how many
	// nodes are.
	Nodes(ctx context.Context, node string, ttl time.Duration) (int64, error)
}

// Config is a Limiter's store access.
type Config struct {
	Plans  Plans  // required
	Counts Counts // nil: counts kept in memory only
	Shared Shared // nil: one node; else the nodes share budgets through it
	// Node names this node among the ones sharing budgets.
	Node string
	// FlushEvery is how often spent quota tokens are added to the store's
	// counters, default (and at most) 1s.
	FlushEvery time.Duration
	// StoreRequests is told of the requests made to Shared (the metric of
	// docs/usage-plans.md); may be nil.
	StoreRequests func(n int)
	// Errors is told of failed store requests; may be nil.
	Errors func(op string, err error)
}

// nodesEvery is how often a node refreshes its presence among the nodes
// sharing budgets; a node is alive for nodesTTL after.
const (
	nodesEvery = 5 * time.Second
	nodesTTL   = 3 * nodesEvery
)

// Budget names what one plan meters: an authorization's own budget (Group
// "") or a binding's.
type Budget struct {
	AuthorizationID string
	Group           string
	Plan            string
}

type budgetKey struct{ authorizationID, group string }

// Verdict is a plan's decision on a request.
type Verdict uint8

// Verdicts, in the order of the checks.
const (
	Allowed Verdict = iota
	RateLimited
	QuotaExceeded
)

// Result is a plan's decision with what the RateLimit headers show: the
// budget closest to running out (the refusing one on a refusal).
type Result struct {
	Applied   bool // a plan governed the request
	Verdict   Verdict
	Limit     int64
	Remaining int64
	// Reset is how many seconds until that budget is whole again.
	Reset int64
	// RetryAfter is how many seconds a refused caller should wait.
	RetryAfter int64
}

// Limiter decides on usage plans. It is safe for concurrent use.
type Limiter struct {
	plans  *planCache
	counts Counts
	shared Shared
	cfg    Config
	nodes  atomic.Int64

	mu      sync.RWMutex
	budgets map[budgetKey]*budget

	dirtyMu sync.Mutex
	dirty   []*budget          // budgets whose quota has pending tokens
	changed chan struct{}      // Changed: plans to read again
	retired []store.CountDelta // pending tokens of pools whose period ended
}

// budget is one budget's state; its mutex guards its pools too.
type budget struct {
	mu          sync.Mutex
	plan        *plan
	bucket      bucket
	window      *pool // several nodes: the rate's current window
	quota       *pool
	quotaPeriod string
	prefix      string // the budget's part of counter names
	usedAt      time.Time
	budgetK     budgetKey
}

// New makes a limiter; Run keeps its counts flowing to the store.
func New(cfg Config) *Limiter {
	if cfg.FlushEvery <= 0 || cfg.FlushEvery > time.Second {
		cfg.FlushEvery = time.Second
	}
	l := &Limiter{plans: newPlanCache(cfg.Plans), counts: cfg.Counts, shared: cfg.Shared, cfg: cfg,
		budgets: make(map[budgetKey]*budget), changed: make(chan struct{}, 1)}
	l.nodes.Store(1)
	return l
}

// Take decides whether the request metered by b may pass at now and spends
// its tokens when it may: the rate first, then the quota. A plan the store
// cannot give (missing, or the store unreachable and the plan never read)
// applies no limit: plans never turn into errors.
func (l *Limiter) Take(ctx context.Context, b Budget, now time.Time) Result {
	return l.decide(ctx, b, now, nil)
}

// Standing is a plan's budgets as Peek finds them (explain shows it).
type Standing struct {
	Result                 // the decision on the next request; Remaining is what it would find
	Rate   *store.PlanRate // nil: the plan has no rate
	Burst  int64
	Quota  *store.PlanQuota // nil: the plan has no quota
	// RateLeft and QuotaLeft are the budgets checked; the quota is not
	// when the rate refuses, as Take does not look at it then.
	RateLeft, QuotaLeft Gauge
}

// Gauge is what is left of one budget.
type Gauge struct {
	Checked   bool
	Remaining int64
	Reset     int64 // seconds until the budget is whole again
}

// Peek is Take's decision on the next request metered by b, spending
// nothing. With several nodes it leases no block; it reads the shared
// counter instead.
func (l *Limiter) Peek(ctx context.Context, b Budget, now time.Time) Standing {
	var st Standing
	st.Result = l.decide(ctx, b, now, &st)
	return st
}

// decide is Take when st is nil; else it spends nothing and notes the
// budgets in st (Peek).
func (l *Limiter) decide(ctx context.Context, b Budget, now time.Time, st *Standing) Result {
	p := l.plans.get(ctx, b.Plan, now)
	if p == nil {
		return Result{}
	}
	spend := st == nil
	if !spend {
		st.Rate, st.Burst, st.Quota = p.rate, p.burst, p.quota
	}
	bu := l.budget(b)
	bu.mu.Lock()
	defer bu.mu.Unlock()
	if spend {
		bu.usedAt = now // a peek keeps no idle budget alive
	}
	if bu.plan != p {
		bu.adopt(p, now)
	}

	res := Result{Applied: true, Remaining: -1}
	if p.rate != nil {
		ok, wait := bu.bucket.ready(now)
		if ok && l.shared != nil {
			bu.rollWindow(now)
			if !bu.window.ready(ctx, l, now, spend) {
				ok, wait = false, bu.window.endsAt.Sub(now) // the next window starts afresh
			}
		}
		if !ok {
			st.note(rateGauge, 0, seconds(bu.bucket.untilFull()))
			return Result{Applied: true, Verdict: RateLimited, Limit: p.capacity(), Remaining: 0,
				Reset: seconds(bu.bucket.untilFull()), RetryAfter: max(1, seconds(wait))}
		}
		st.note(rateGauge, bu.bucket.remaining(), seconds(bu.bucket.untilFull()))
	}
	if p.quota != nil {
		bu.rollQuota(l, now)
		q := bu.quota
		if !q.ready(ctx, l, now, spend) {
			wait := q.endsAt.Sub(now)
			st.note(quotaGauge, 0, seconds(wait))
			return Result{Applied: true, Verdict: QuotaExceeded, Limit: q.limit, Remaining: 0,
				Reset: seconds(wait), RetryAfter: max(1, seconds(wait))}
		}
		if spend {
			q.spend(l)
		}
		res.Limit, res.Remaining, res.Reset = q.limit, q.remaining(), seconds(q.endsAt.Sub(now))
		st.note(quotaGauge, res.Remaining, res.Reset)
	}
	if p.rate != nil {
		if spend {
			bu.bucket.take()
			if l.shared != nil {
				bu.window.spend(l)
			}
		}
		if left := bu.bucket.remaining(); res.Remaining < 0 || left < res.Remaining {
			res.Limit, res.Remaining, res.Reset = p.capacity(), left, seconds(bu.bucket.untilFull())
		}
	}
	return res
}

// The gauges of a Standing.
const (
	rateGauge = iota
	quotaGauge
)

// note sets one of st's gauges when st is a Peek's; Take's st is nil.
func (st *Standing) note(gauge int, remaining, reset int64) {
	if st == nil {
		return
	}
	g := Gauge{Checked: true, Remaining: remaining, Reset: reset}
	if gauge == rateGauge {
		st.RateLeft = g
	} else {
		st.QuotaLeft = g
	}
}

// budget returns b's state, made on first use.
func (l *Limiter) budget(b Budget) *budget {
	k := budgetKey{b.AuthorizationID, b.Group}
	l.mu.RLock()
	bu := l.budgets[k]
	l.mu.RUnlock()
	if bu != nil {
		return bu
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if bu = l.budgets[k]; bu == nil {
		prefix := b.AuthorizationID
		if b.Group != "" {
			prefix += "/" + b.Group
		}
		bu = &budget{prefix: prefix, budgetK: k}
		l.budgets[k] = bu
	}
	return bu
}

// adopt puts plan p in force: the bucket takes its shape (keeping its
// tokens), the quota keeps its count, a rate window starts over.
func (bu *budget) adopt(p *plan, now time.Time) {
	bu.plan = p
	if p.rate != nil {
		bu.bucket.reshape(float64(p.capacity()), p.interval, now)
	}
	bu.window = nil
}

// rollWindow makes sure the budget's rate window (several nodes) is the
// one holding now.
func (bu *budget) rollWindow(now time.Time) {
	if bu.window != nil && now.Before(bu.window.endsAt) {
		return
	}
	p := bu.plan
	start := now.Truncate(p.per)
	end := start.Add(p.per)
	bu.window = newPool(bu, RateWindowCounter(bu.prefix, p.rate.Per, start), p.rate.Requests, end, end.Add(p.per), false)
}

// rollQuota makes sure the budget's quota pool is the period's holding now;
// the spent tokens of the period that ended still reach the store.
func (bu *budget) rollQuota(l *Limiter, now time.Time) {
	q := *bu.plan.quota
	if old := bu.quota; old != nil && now.Before(old.endsAt) && bu.quotaPeriod == q.Period {
		old.limit = q.Requests // a plan's new limit keeps the count
		return
	}
	if old := bu.quota; old != nil && old.pending > 0 {
		l.retire(store.CountDelta{Name: old.name, Delta: old.pending, ExpiresAt: old.expiresAt})
		old.pending = 0
	}
	bu.quotaPeriod = q.Period
	name, resetsAt := store.QuotaCounter(bu.budgetK.authorizationID, bu.budgetK.group, q, now)
	bu.quota = newPool(bu, name, q.Requests, resetsAt, resetsAt.Add(24*time.Hour), true)
}

// RateWindowCounter names the counter of one window of a rate shared by
// several nodes: budget is the authorization's ID, with "/<group>" for a
// binding's budget.
func RateWindowCounter(budget, per string, start time.Time) string {
	return "rate/" + budget + "/" + per + "/" + strconv.FormatInt(start.Unix(), 10)
}

// seconds rounds d up to whole seconds.
func seconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

func (l *Limiter) storeRequests(n int) {
	if l.cfg.StoreRequests != nil {
		l.cfg.StoreRequests(n)
	}
}

func (l *Limiter) failed(op string, err error) {
	if l.cfg.Errors != nil {
		l.cfg.Errors(op, err)
	}
}
