package caddymodule

import (
	"context"
	"errors"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/accessauth/caddy-access-auth/enforcement"
	"github.com/accessauth/caddy-access-auth/limits"
	redisstore "github.com/accessauth/caddy-access-auth/store/redis"
)

// The collectors are made once: Caddy hands every config load a new
// registry, and each Provision registers these same collectors in it.
// No label ever holds a key ID, an API key or a secret.
var (
	requestsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy",
		Subsystem: "access_auth",
		Name:      "requests_total",
		Help:      "Requests checked by access_auth, by API group, result (allowed or denied) and reason.",
	}, []string{"group", "result", "reason"})

	decisionDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "caddy",
		Subsystem: "access_auth",
		Name:      "decision_duration_seconds",
		Help:      "Time access_auth took to decide on a request.",
		Buckets:   prometheus.ExponentialBuckets(1e-6, 4, 12), // 1 µs … ~4 s
	})

	planDecisions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy",
		Subsystem: "access_auth",
		Name:      "plan_decisions_total",
		Help:      "Requests a usage plan governed, by API group and result (allowed, rate_limited, quota_exceeded).",
	}, []string{"group", "result"})

	limitStoreRequests = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "caddy",
		Subsystem: "access_auth",
		Name:      "limit_store_requests_total",
		Help:      "Redis commands made for usage plans (leases of budget, count flushes, node heartbeats).",
	})

	cacheMetrics = new(stateCollector)
)

// collectors are the module's collectors, listed in docs/operations.md.
func collectors() []prometheus.Collector {
	return []prometheus.Collector{requestsTotal, decisionDuration, cacheMetrics, storeRequests, storeDuration, propagationLag,
		bodyBufferBytes, bodyBufferBodies, bodyBufferRefused, unsealableSecrets, planDecisions, limitStoreRequests}
}

// registerMetrics adds the collectors to the registry of ctx's config.
func registerMetrics(ctx caddy.Context) error {
	registry := ctx.GetMetricsRegistry()
	if registry == nil {
		return nil
	}
	for _, c := range collectors() {
		if err := registry.Register(c); err != nil && !errors.As(err, new(prometheus.AlreadyRegisteredError)) {
			return err
		}
	}
	return nil
}

// routeMetrics holds one route's counters, resolved once so that a request
// costs no label lookup.
type routeMetrics struct {
	byReason [enforcement.Overloaded + 1]prometheus.Counter
	byPlan   [limits.QuotaExceeded + 1]prometheus.Counter
}

func newRouteMetrics(group string) *routeMetrics {
	m := new(routeMetrics)
	for r := range m.byReason {
		reason := enforcement.Reason(r)
		result := "denied"
		if reason == enforcement.Allowed {
			result = "allowed"
		}
		m.byReason[r] = requestsTotal.WithLabelValues(group, result, reason.String())
	}
	for v, result := range [...]string{limits.Allowed: "allowed", limits.RateLimited: "rate_limited", limits.QuotaExceeded: "quota_exceeded"} {
		m.byPlan[v] = planDecisions.WithLabelValues(group, result)
	}
	return m
}

// observePlan counts a decision of a usage plan.
func (m *routeMetrics) observePlan(v limits.Verdict) {
	if int(v) < len(m.byPlan) {
		m.byPlan[v].Inc()
	}
}

func (m *routeMetrics) observe(reason enforcement.Reason, took time.Duration) {
	if int(reason) < len(m.byReason) {
		m.byReason[reason].Inc()
	}
	decisionDuration.Observe(took.Seconds())
}

// stateCollector reports the running app's credential cache and store,
// read at scrape time.
type stateCollector struct{}

var (
	cacheLookupsDesc = prometheus.NewDesc("caddy_access_auth_cache_lookups_total",
		"Credential cache lookups by result: hit, negative_hit, miss, stale (served while the store failed), unavailable.",
		[]string{"result"}, nil)
	invalidationsDesc = prometheus.NewDesc("caddy_access_auth_invalidations_total",
		"API keys dropped from the credential cache by the store's change feed.", nil, nil)
	storeUpDesc = prometheus.NewDesc("caddy_access_auth_store_up",
		"1 when the store answers, else 0.", nil, nil)
	noncesDisplacedDesc = prometheus.NewDesc("caddy_access_auth_local_nonces_displaced_total",
		"Nonces this node's replay protection table dropped before they expired, for want of room; by whether that narrowed the dates it accepts (dropped in the first half of their time: requests signed as long ago are refused as date_out_of_range).",
		[]string{"narrowing"}, nil)
)

// storePingTimeout bounds the store check of one scrape.
const storePingTimeout = time.Second

// Describe implements prometheus.Collector.
func (stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- cacheLookupsDesc
	ch <- invalidationsDesc
	ch <- storeUpDesc
	ch <- noncesDisplacedDesc
}

// Collect implements prometheus.Collector.
func (stateCollector) Collect(ch chan<- prometheus.Metric) {
	app := current.Load()
	if app == nil {
		return
	}
	st := app.runningState()
	if st == nil {
		return
	}
	s := st.cache.Stats()
	for result, n := range map[string]uint64{
		"hit": s.Hits, "negative_hit": s.NegativeHits, "miss": s.Misses, "stale": s.Stale, "unavailable": s.Unavailable,
	} {
		ch <- prometheus.MustNewConstMetric(cacheLookupsDesc, prometheus.CounterValue, float64(n), result)
	}
	ch <- prometheus.MustNewConstMetric(invalidationsDesc, prometheus.CounterValue, float64(s.Invalidations))
	up := 1.0
	if r, ok := st.backend.backend.(*redisstore.Backend); ok {
		ctx, cancel := context.WithTimeout(context.Background(), storePingTimeout)
		if r.Ping(ctx) != nil {
			up = 0
		}
		cancel()
	}
	ch <- prometheus.MustNewConstMetric(storeUpDesc, prometheus.GaugeValue, up)
	var displaced, narrowed uint64
	for _, t := range st.replay.tables() {
		displaced, narrowed = displaced+t.Displaced(), narrowed+t.Narrowed()
	}
	ch <- prometheus.MustNewConstMetric(noncesDisplacedDesc, prometheus.CounterValue, float64(narrowed), "true")
	ch <- prometheus.MustNewConstMetric(noncesDisplacedDesc, prometheus.CounterValue, float64(displaced-narrowed), "false")
}

// runningState is the app's shared state, nil when it has none (yet).
func (a *App) runningState() *sharedState {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.state
}
