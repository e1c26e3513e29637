//go:build linux

package bench

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/accessauth/caddy-access-auth/bench/loadgen"
	"github.com/accessauth/caddy-access-auth/internal/gatewaytest"
	"github.com/accessauth/caddy-access-auth/internal/redistest"
	"github.com/accessauth/caddy-access-auth/signature"
	"github.com/accessauth/caddy-access-auth/store"
)

// attachPlan puts a plan the load never reaches (a rate and a quota) on the
// authorization of key, so every request goes through both budgets.
func attachPlan(b *testing.B, c *gatewaytest.Node, key gatewaytest.Credentials) {
	c.AdminJSON(http.MethodPost, "/access-auth/plans", map[string]any{
		"name":  "bench",
		"rate":  map[string]any{"requests": 1_000_000_000, "per": "1s"},
		"quota": map[string]any{"requests": int64(1_000_000_000_000), "period": "month"},
	}, http.StatusCreated, nil)
	var auths struct{ Items []store.Authorization }
	c.AdminJSON(http.MethodGet, "/access-auth/authorizations?access_key_id="+key.ID, nil, http.StatusOK, &auths)
	if len(auths.Items) != 1 {
		b.Fatalf("%d authorizations of the bench key", len(auths.Items))
	}
	c.AdminJSON(http.MethodPatch, "/access-auth/authorizations/"+auths.Items[0].ID, map[string]any{"plan": "bench"}, http.StatusOK, nil)
}

// BenchmarkThroughputLocalReplayPlan is BenchmarkThroughputLocalReplay
// with a usage plan on the key: the table prints its ratio beside the one
// without, the plan's cost in situ.
func BenchmarkThroughputLocalReplayPlan(b *testing.B) {
	c := gatewaytest.Start(b, "plan", "", throughputSite("local", ""))
	key := c.AuthorizedKey("bench", "bench")
	attachPlan(b, c, key)
	measureOverhead(b, c, key, nil, false)
}

// BenchmarkPlanRedisCommands is the ≤ 0.1 target: Redis commands made for
// plans per request (limit_store_requests_total: leases, flushes,
// heartbeats) under saturating signed load on a node of a Redis store.
func BenchmarkPlanRedisCommands(b *testing.B) {
	srv := redistest.Start(b, redistest.Options{})
	c := gatewaytest.Start(b, "planredis", redisStore(b, srv.Addr), throughputSite("store", ""))
	key := c.AuthorizedKey("bench", "bench")
	attachPlan(b, c, key)
	before := c.Metric("caddy_access_auth_limit_store_requests_total", "")
	res, err := loadgen.Run(context.Background(), loadgen.Options{
		URL: c.Site + "/checked/x", Scheme: signature.JDCloud2, APIKey: key.APIKey, APISecret: key.APISecret,
		Workers: loadWorkers, Duration: 5 * time.Second,
	})
	if err != nil {
		b.Fatal(err)
	}
	commands := c.Metric("caddy_access_auth_limit_store_requests_total", "") - before
	b.ReportMetric(commands/float64(res.Requests), "plan-redis-cmds/req")
	b.ReportMetric(float64(res.Requests), "requests")
}
