package e2e

import (
	"fmt"
	"math"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/accessauth/caddy-access-auth/internal/redistest"
)

// Bounds of SPEC §7: an admin write reaches every node within 100ms p99,
// and no trial may take longer than maxPropagation.
const (
	propagationP99 = 100 * time.Millisecond
	maxPropagation = 2 * time.Second
	// trialsPerKind is the number of measured writes of each kind.
	trialsPerKind = 100
	// propagationBudget bounds the measuring part of the test.
	propagationBudget = 60 * time.Second
)

// twoNodes starts Redis and two Caddy nodes on it with the orders site.
// Unknown keys stay in the negative cache for a minute, so that only the
// change feed can clear them.
func twoNodes(t *testing.T) (a, b *node, srv *redistest.Server) {
	t.Helper()
	srv = redistest.Start(t, redistest.Options{})
	opts := redisOptions(newMasterKey(t), "redis://"+srv.Addr) + "\ncache {\nnegative_ttl 1m\n}"
	a = startNode(t, "A", opts, ordersSite)
	b = startNode(t, "B", opts, ordersSite)
	a.waitGroup("orders")
	return a, b, srv
}

// TestPropagation measures how long an admin write through node A's admin
// API takes to show at node B: from A's answer to the write until the first
// freshly signed request at B that gets the new outcome. B polls without
// pause; every answer before the new outcome must be the old one.
func TestPropagation(t *testing.T) {
	a, b, _ := twoNodes(t)
	key := a.createKey("prop")
	auth := a.authorize(key.ID, "orders")
	eventually(t, 5*time.Second, "first request at B", func() error {
		if got := b.call(key); got.status != http.StatusOK {
			return fmt.Errorf("%s", got)
		}
		return nil
	})

	passes := answer{status: http.StatusOK}
	disabled := answer{status: http.StatusUnauthorized, reason: "invalid_key"}
	unbound := answer{status: http.StatusForbidden, reason: "not_authorized"}
	samples := map[string][]time.Duration{}
	// measure runs one write at A and polls B until it answers like next
	// (any answer but before or next fails the test).
	measure := func(kind string, write func(), before, next answer, c credentials) {
		t.Helper()
		// B holds the old outcome in its cache when the write happens.
		if got := b.call(c); got.status != before.status || got.reason != before.reason {
			t.Fatalf("%s: before the write B answered %s, want %s", kind, got, before)
		}
		write()
		written := time.Now()
		for {
			got := b.call(c)
			elapsed := time.Since(written)
			if got.status == next.status && got.reason == next.reason {
				samples[kind] = append(samples[kind], elapsed)
				return
			}
			if got.status != before.status || got.reason != before.reason {
				t.Fatalf("%s: B answered %s, want %s or %s", kind, got, before, next)
			}
			if elapsed > maxPropagation {
				t.Fatalf("%s: B still answers %s %v after the write at A", kind, got, elapsed)
			}
		}
	}
	patchKey := func(enabled bool) func() {
		return func() {
			a.adminJSON(http.MethodPatch, "/access-auth/keys/"+key.ID, map[string]any{"enabled": enabled}, http.StatusOK, nil)
		}
	}
	binding := "/access-auth/authorizations/" + auth + "/bindings/orders"
	hitsBefore := b.cacheLookups("hit") + b.cacheLookups("negative_hit")
	start := time.Now()
	for i := 0; i < trialsPerKind && time.Since(start) < propagationBudget; i++ {
		measure("disable", patchKey(false), passes, disabled, key)
		measure("enable", patchKey(true), disabled, passes, key)
		measure("unbind", func() { a.adminJSON(http.MethodDelete, binding, nil, http.StatusNoContent, nil) }, passes, unbound, key)
		measure("bind", func() { a.adminJSON(http.MethodPut, binding, nil, http.StatusOK, nil) }, unbound, passes, key)

		// A key B has been asked for before it exists: creating it at A
		// clears B's negative entry, then authorizing it lets it pass.
		fresh := credentials{APIKey: randomAPIKey(t), APISecret: "secret-" + randomAPIKey(t)}
		want(t, "unknown key at B", b.call(fresh), http.StatusUnauthorized, "invalid_key")
		measure("create", func() {
			fresh = a.importKey(fmt.Sprintf("prop-%d", i), fresh.APIKey, fresh.APISecret)
		}, disabled, unbound, fresh)
		measure("authorize", func() { a.authorize(fresh.ID, "orders") }, unbound, passes, fresh)
	}

	// Each check before a write was answered from B's cache: the change
	// feed, not a reload on every request, made the new outcomes show.
	var trials int
	for _, d := range samples {
		trials += len(d)
	}
	if hits := b.cacheLookups("hit") + b.cacheLookups("negative_hit") - hitsBefore; hits < float64(trials) {
		t.Errorf("B's cache answered %v of the %d checks before the writes", hits, trials)
	}

	var all []time.Duration
	for _, kind := range []string{"disable", "enable", "unbind", "bind", "create", "authorize"} {
		d := samples[kind]
		all = append(all, d...)
		p50, p99 := percentile(d, 0.50), percentile(d, 0.99)
		t.Logf("propagation %-9s n=%d p50=%v p99=%v max=%v", kind, len(d), p50, p99, percentile(d, 1))
		if len(d) < 20 {
			t.Errorf("%s: only %d trials within %v", kind, len(d), propagationBudget)
		}
		if p99 > propagationP99 {
			t.Errorf("%s: propagation p99 %v above %v", kind, p99, propagationP99)
		}
	}
	t.Logf("propagation all       n=%d p50=%v p99=%v", len(all), percentile(all, 0.50), percentile(all, 0.99))
}

// percentile is the nearest-rank percentile of samples (p in (0, 1]).
func percentile(samples []time.Duration, p float64) time.Duration {
	if len(samples) == 0 {
		return 0
	}
	sorted := slices.Clone(samples)
	slices.Sort(sorted)
	rank := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(rank, 0)]
}
