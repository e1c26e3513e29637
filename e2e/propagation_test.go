package e2e

import (
	"fmt"
	"math"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/accessauth/caddy-access-auth/internal/gatewaytest"
	"github.com/accessauth/caddy-access-auth/internal/redistest"
)

// Bounds of docs/coherence.md: an admin write reaches every node within 100ms p99,
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
func twoNodes(t *testing.T) (a, b *gatewaytest.Node, srv *redistest.Server) {
	t.Helper()
	return twoNodesServing(t, ordersSite)
}

// twoNodesServing is twoNodes with another site.
func twoNodesServing(t *testing.T, site string) (a, b *gatewaytest.Node, srv *redistest.Server) {
	t.Helper()
	srv = redistest.Start(t, redistest.Options{})
	opts := gatewaytest.RedisOptions(gatewaytest.NewMasterKey(t), "redis://"+srv.Addr) + "\ncache {\nnegative_ttl 1m\n}"
	a = gatewaytest.Start(t, "A", opts, site)
	b = gatewaytest.Start(t, "B", opts, site)
	a.WaitGroup("orders")
	return a, b, srv
}

// TestPropagation measures how long an admin write through node A's admin
// API takes to show at node B: from A's answer to the write until the first
// freshly signed request at B that gets the new outcome. B polls without
// pause; every answer before the new outcome must be the old one.
func TestPropagation(t *testing.T) {
	a, b, _ := twoNodes(t)
	key := a.CreateKey("prop")
	auth := a.Authorize(key.ID, "orders")
	gatewaytest.Eventually(t, 5*time.Second, "first request at B", func() error {
		if got := b.Call(key); got.Status != http.StatusOK {
			return fmt.Errorf("%s", got)
		}
		return nil
	})

	passes := gatewaytest.Answer{Status: http.StatusOK}
	disabled := gatewaytest.Answer{Status: http.StatusUnauthorized, Reason: "invalid_key"}
	unbound := gatewaytest.Answer{Status: http.StatusForbidden, Reason: "not_authorized"}
	samples := map[string][]time.Duration{}
	// measure runs one write at A and polls B until it answers like next
	// (any answer but before or next fails the test).
	measure := func(kind string, write func(), before, next gatewaytest.Answer, c gatewaytest.Credentials) {
		t.Helper()
		// B holds the old outcome in its cache when the write happens.
		if got := b.Call(c); got.Status != before.Status || got.Reason != before.Reason {
			t.Fatalf("%s: before the write B answered %s, want %s", kind, got, before)
		}
		write()
		written := time.Now()
		for {
			got := b.Call(c)
			elapsed := time.Since(written)
			if got.Status == next.Status && got.Reason == next.Reason {
				samples[kind] = append(samples[kind], elapsed)
				return
			}
			if got.Status != before.Status || got.Reason != before.Reason {
				t.Fatalf("%s: B answered %s, want %s or %s", kind, got, before, next)
			}
			if elapsed > maxPropagation {
				t.Fatalf("%s: B still answers %s %v after the write at A", kind, got, elapsed)
			}
		}
	}
	patchKey := func(enabled bool) func() {
		return func() {
			a.AdminJSON(http.MethodPatch, "/access-auth/keys/"+key.ID, map[string]any{"enabled": enabled}, http.StatusOK, nil)
		}
	}
	binding := "/access-auth/authorizations/" + auth + "/bindings/orders"
	hitsBefore := b.CacheLookups("hit") + b.CacheLookups("negative_hit")
	start := time.Now()
	for i := 0; i < trialsPerKind && time.Since(start) < propagationBudget; i++ {
		measure("disable", patchKey(false), passes, disabled, key)
		measure("enable", patchKey(true), disabled, passes, key)
		measure("unbind", func() { a.AdminJSON(http.MethodDelete, binding, nil, http.StatusNoContent, nil) }, passes, unbound, key)
		measure("bind", func() { a.AdminJSON(http.MethodPut, binding, nil, http.StatusOK, nil) }, unbound, passes, key)

		// A key B has been asked for before it exists: creating it at A
		// clears B's negative entry, then authorizing it lets it pass.
		fresh := gatewaytest.Credentials{APIKey: gatewaytest.RandomAPIKey(t), APISecret: "secret-" + gatewaytest.RandomAPIKey(t)}
		gatewaytest.WantAnswer(t, "unknown key at B", b.Call(fresh), http.StatusUnauthorized, "invalid_key")
		measure("create", func() {
			fresh = a.ImportKey(fmt.Sprintf("prop-%d", i), fresh.APIKey, fresh.APISecret)
		}, disabled, unbound, fresh)
		measure("authorize", func() { a.Authorize(fresh.ID, "orders") }, unbound, passes, fresh)
	}

	// Each check before a write was answered from B's cache: the change
	// feed, not a reload on every request, made the new outcomes show.
	var trials int
	for _, d := range samples {
		trials += len(d)
	}
	if hits := b.CacheLookups("hit") + b.CacheLookups("negative_hit") - hitsBefore; hits < float64(trials) {
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
