package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/accessauth/caddy-access-auth/enforcement"
	"github.com/accessauth/caddy-access-auth/internal/gatewaytest"
	"github.com/accessauth/caddy-access-auth/store"
)

// quietSite serves /quiet with rate_limit_headers off beside the orders
// route with the defaults.
const quietSite = `	handle /quiet {
		access_auth orders {
			rate_limit_headers off
		}
		respond "quiet"
	}
	handle {
		access_auth orders
		respond "ok {http.auth.user.id}"
	}`

// planAnswer is an answer with the headers a plan sets.
type planAnswer struct {
	gatewaytest.Answer
	header http.Header
}

// sendPlanned sends req and reads the answer with its headers.
func sendPlanned(t *testing.T, req *http.Request) planAnswer {
	t.Helper()
	resp, err := gatewaytest.Client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := planAnswer{Answer: gatewaytest.Answer{Status: resp.StatusCode, Body: string(raw)}, header: resp.Header}
	if resp.StatusCode != http.StatusOK {
		var e enforcement.DenialBody
		if gatewaytest.DecodeJSON(raw, &e) == nil {
			a.Reason = e.Error.Reason
		}
	}
	return a
}

// planned creates a plan and a key whose authorization names it, bound to
// orders.
func planned(t *testing.T, n *gatewaytest.Node, name string, plan map[string]any) (gatewaytest.Credentials, store.Authorization) {
	t.Helper()
	plan["name"] = name
	n.AdminJSON(http.MethodPost, "/access-auth/plans", plan, http.StatusCreated, nil)
	key := n.CreateKey("key-" + name)
	var auth store.Authorization
	n.AdminJSON(http.MethodPost, "/access-auth/authorizations", map[string]any{
		"access_key_id": key.ID, "plan": name, "bindings": []map[string]any{{"group": "orders"}},
	}, http.StatusCreated, &auth)
	return key, auth
}

// TestPlansOnOneNode holds the single-node figures through the
// real binary on the embedded store: a rate of 5/s with burst 0 admits 5
// of 20 requests sent at once, the rest 429 rate_limited with Retry-After
// and the RateLimit headers; a quota of 10 a day admits exactly 10, the
// 11th is quota_exceeded, and still after a clean restart and after a
// crash; a plan's change and its detaching take effect within 100 ms.
func TestPlansOnOneNode(t *testing.T) {
	accessAuth := "store file " + filepath.Join(t.TempDir(), "store.db")
	n := gatewaytest.Start(t, "plans", accessAuth, quietSite)
	n.WaitGroup("orders")

	t.Run("rate", func(t *testing.T) {
		key, _ := planned(t, n, "five", map[string]any{"rate": map[string]any{"requests": 5, "per": "1s"}})
		reqs := make([]*http.Request, 20)
		for i := range reqs {
			reqs[i] = n.SignedRequest("/x", key)
		}
		// "At once": 20 connections opened beforehand (unsigned requests,
		// refused before the plan), so the signed ones leave together.
		sendAtOnce(t, make([]*http.Request, len(reqs)), func(int) *http.Request {
			req, _ := http.NewRequest(http.MethodGet, n.Site+"/x", nil)
			return req
		})
		answers := sendAtOnce(t, reqs, nil)
		allowed := 0
		for _, a := range answers {
			switch {
			case a.Status == http.StatusOK:
				allowed++
				if a.header.Get("RateLimit-Limit") != "5" || a.header.Get("RateLimit-Remaining") == "" {
					t.Errorf("allowed answer's headers %v, want RateLimit-Limit 5 and RateLimit-Remaining", a.header)
				}
			case a.Status == http.StatusTooManyRequests && a.Reason == "rate_limited":
				if ra, err := strconv.Atoi(a.header.Get("Retry-After")); err != nil || ra < 1 {
					t.Errorf("Retry-After %q, want whole seconds ≥ 1", a.header.Get("Retry-After"))
				}
				if a.header.Get("RateLimit-Limit") != "5" || a.header.Get("RateLimit-Remaining") != "0" || a.header.Get("RateLimit-Reset") == "" {
					t.Errorf("429's RateLimit headers %v, want limit 5, remaining 0 and a reset", a.header)
				}
				if !strings.Contains(a.Body, `"status":"HTTP_TOO_MANY_REQUESTS"`) || !strings.Contains(a.Body, "request rate limit exceeded") {
					t.Errorf("429 body %s", a.Body)
				}
			default:
				t.Errorf("answer %s, want 200 or 429 rate_limited", a.Answer)
			}
		}
		if allowed != 5 {
			t.Errorf("%d of 20 sent at once admitted, want 5", allowed)
		}
		time.Sleep(time.Second) // the bucket is full again
		quiet := sendPlanned(t, n.SignedRequest("/quiet", key))
		if quiet.Status != http.StatusOK || quiet.header.Get("RateLimit-Limit") != "" {
			t.Errorf("rate_limit_headers off: %s with RateLimit-Limit %q, want 200 without", quiet.Answer, quiet.header.Get("RateLimit-Limit"))
		}
	})

	key, auth := planned(t, n, "ten", map[string]any{"quota": map[string]any{"requests": 10, "period": "day"}})
	t.Run("quota", func(t *testing.T) {
		for i := range 10 {
			a := sendPlanned(t, n.SignedRequest("/x", key))
			if a.Status != http.StatusOK || a.header.Get("RateLimit-Remaining") != strconv.Itoa(9-i) {
				t.Fatalf("request %d: %s, RateLimit-Remaining %q; want 200 and %d", i+1, a.Answer, a.header.Get("RateLimit-Remaining"), 9-i)
			}
		}
		eleventh := sendPlanned(t, n.SignedRequest("/x", key))
		wantQuotaExceeded(t, "the 11th", eleventh)

		n.Terminate()
		n.Restart()
		wantQuotaExceeded(t, "after a clean restart", sendPlanned(t, n.SignedRequest("/x", key)))
		time.Sleep(1500 * time.Millisecond) // past one flush
		n.Stop()                            // SIGKILL
		n.Restart()
		wantQuotaExceeded(t, "after a crash", sendPlanned(t, n.SignedRequest("/x", key)))
	})

	t.Run("change and detach within 100ms", func(t *testing.T) {
		n.AdminJSON(http.MethodPatch, "/access-auth/plans/ten", map[string]any{"quota": map[string]any{"requests": 11, "period": "day"}}, http.StatusOK, nil)
		admittedWithin(t, n, key, "raising the quota to 11")
		wantQuotaExceeded(t, "the 12th", sendPlanned(t, n.SignedRequest("/x", key)))
		n.AdminJSON(http.MethodPatch, "/access-auth/authorizations/"+auth.ID, map[string]any{"plan": nil}, http.StatusOK, nil)
		admittedWithin(t, n, key, "detaching the plan")
		if a := sendPlanned(t, n.SignedRequest("/x", key)); a.Status != http.StatusOK || a.header.Get("RateLimit-Limit") != "" {
			t.Errorf("without a plan: %s, RateLimit-Limit %q; want 200 without RateLimit headers", a.Answer, a.header.Get("RateLimit-Limit"))
		}
	})
	if got := n.Metric("caddy_access_auth_plan_decisions_total", `group="orders",result="quota_exceeded"`); got < 1 {
		t.Errorf("plan_decisions_total{result=quota_exceeded} = %v, want ≥ 1", got)
	}
}

// sendAtOnce sends every request (or, where nil, build's) from its own
// goroutine, released together, and returns the answers in order.
func sendAtOnce(t *testing.T, reqs []*http.Request, build func(int) *http.Request) []planAnswer {
	t.Helper()
	answers := make([]planAnswer, len(reqs))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, req := range reqs {
		if req == nil {
			req = build(i)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			answers[i] = sendPlanned(t, req)
		}()
	}
	close(start)
	wg.Wait()
	return answers
}

func wantQuotaExceeded(t *testing.T, step string, a planAnswer) {
	t.Helper()
	if a.Status != http.StatusTooManyRequests || a.Reason != "quota_exceeded" {
		t.Fatalf("%s: %s, want 429 quota_exceeded", step, a.Answer)
	}
	ra, err := strconv.Atoi(a.header.Get("Retry-After"))
	if untilMidnight := time.Until(time.Now().UTC().Truncate(24 * time.Hour).Add(24 * time.Hour)); err != nil || ra < 1 ||
		time.Duration(ra)*time.Second > untilMidnight+2*time.Second {
		t.Errorf("%s: Retry-After %q, want the seconds until the day ends (%s)", step, a.header.Get("Retry-After"), untilMidnight)
	}
}

// admittedWithin polls the node from the admin write's answer on until the
// key is admitted; it must be within 100 ms (docs/coherence.md).
func admittedWithin(t *testing.T, n *gatewaytest.Node, key gatewaytest.Credentials, what string) {
	t.Helper()
	written := time.Now()
	for {
		a := sendPlanned(t, n.SignedRequest("/x", key))
		if a.Status == http.StatusOK {
			break
		}
		if a.Reason != "quota_exceeded" || time.Since(written) > 2*time.Second {
			t.Fatalf("after %s: %s", what, a.Answer)
		}
	}
	if took := time.Since(written); took > 100*time.Millisecond {
		t.Errorf("after %s the key was admitted after %s, want within 100ms", what, took)
	}
}

// planLoad sends requests signed with key to the nodes in turn from
// workers, paced at perSecond for d (0: as fast as they go, total
// requests), and counts the answers by status and reason.
func planLoad(t *testing.T, nodes []*gatewaytest.Node, key gatewaytest.Credentials, total int, perSecond int, d time.Duration) map[string]int {
	t.Helper()
	const workers = 24
	jobs := make(chan int, workers)
	var mu sync.Mutex
	counts := map[string]int{}
	var wg sync.WaitGroup
	var failed atomic.Bool
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				n := nodes[i%len(nodes)]
				req := n.SignedRequest("/x", key)
				a, err := gatewaytest.SendRequest(req)
				if err != nil {
					failed.Store(true)
					continue
				}
				mu.Lock()
				counts[fmt.Sprintf("%d %s", a.Status, a.Reason)]++
				mu.Unlock()
			}
		}()
	}
	if perSecond == 0 {
		for i := range total {
			jobs <- i
		}
	} else {
		gap := time.Second / time.Duration(perSecond)
		start := time.Now()
		for i := 0; time.Since(start) < d; i++ {
			jobs <- i
			if sleep := time.Duration(i+1)*gap - time.Since(start); sleep > 0 {
				time.Sleep(sleep)
			}
		}
	}
	close(jobs)
	wg.Wait()
	if failed.Load() {
		t.Error("some requests got no answer")
	}
	return counts
}

// scriptCalls is how many scripts the Redis server has run (EVALSHA and
// EVAL): the plans' leases and heartbeats, nothing else on the hot path.
func scriptCalls(t *testing.T, rdb *redis.Client) int64 {
	t.Helper()
	info, err := rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for line := range strings.Lines(info) {
		for _, cmd := range []string{"cmdstat_evalsha:calls=", "cmdstat_eval:calls="} {
			if rest, ok := strings.CutPrefix(line, cmd); ok {
				n, _ := strconv.ParseInt(rest[:strings.IndexByte(rest, ',')], 10, 64)
				total += n
			}
		}
	}
	return total
}

// TestPlansAcrossNodes holds the figures for two Caddy nodes on
// one redis-server: a quota of 1,000 against 3,000 requests over both
// admits 1,000..1,010, and a rate of 200/s held for 10 s under ~1,000/s of
// offered load admits 1,800..2,200 — each with at most 0.1 Redis commands
// per request for plans, counted by the server (INFO commandstats) and by
// the nodes' limit_store_requests_total.
func TestPlansAcrossNodes(t *testing.T) {
	// Nonces stay in each node, so the scripts Redis runs are the plans'
	// alone (nonces in Redis are batched into scripts too).
	a, b, srv := twoNodesServing(t, `	access_auth orders {
		replay_protection local
	}
	respond "ok {http.auth.user.id}"`)
	nodes := []*gatewaytest.Node{a, b}
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()
	limitRequests := func() float64 {
		return a.Metric("caddy_access_auth_limit_store_requests_total", "") + b.Metric("caddy_access_auth_limit_store_requests_total", "")
	}
	perRequest := func(what string, total int, scripts int64, metric float64) {
		t.Logf("%s: %d scripts run by Redis, %v commands counted by the nodes, for %d requests", what, scripts, metric, total)
		if float64(scripts)/float64(total) > 0.1 || metric/float64(total) > 0.1 {
			t.Errorf("%s: %d scripts / %v commands for %d requests, want ≤ 0.1 a request", what, scripts, metric, total)
		}
	}

	t.Run("quota", func(t *testing.T) {
		key, _ := planned(t, a, "thousand", map[string]any{"quota": map[string]any{"requests": 1000, "period": "day"}})
		scripts, metric := scriptCalls(t, rdb), limitRequests()
		counts := planLoad(t, nodes, key, 3000, 0, 0)
		allowed := counts["200 "]
		t.Logf("quota of 1000, 3000 requests over two nodes: %v", counts)
		if allowed < 1000 || allowed > 1010 || allowed+counts["429 quota_exceeded"] != 3000 {
			t.Errorf("answers %v: want 1000..1010 allowed, the rest 429 quota_exceeded", counts)
		}
		perRequest("quota", 3000, scriptCalls(t, rdb)-scripts, limitRequests()-metric)
	})

	t.Run("rate", func(t *testing.T) {
		key, _ := planned(t, a, "twohundred", map[string]any{"rate": map[string]any{"requests": 200, "per": "1s"}})
		// Across nodes the rate is counted per window of its period (1s,
		// on the wall clock): start 100 ms into a second, so 10 s of load
		// touch 11 windows, the last one for 100 ms.
		time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(1100 * time.Millisecond)))
		scripts, metric := scriptCalls(t, rdb), limitRequests()
		start := time.Now()
		counts := planLoad(t, nodes, key, 0, 1000, 10*time.Second)
		// A loaded machine may stretch the load into one more window.
		windows := int(time.Now().Truncate(time.Second).Sub(start.Truncate(time.Second))/time.Second) + 1
		total := 0
		for _, n := range counts {
			total += n
		}
		allowed := counts["200 "]
		t.Logf("rate of 200/s, offered %d requests in 10 s (%d/s) over %d windows: %v", total, total/10, windows, counts)
		if allowed < 1800 || allowed > 200*windows || allowed+counts["429 rate_limited"] != total {
			t.Errorf("answers %v: want 1800..%d allowed (200 in each of %d windows), the rest 429 rate_limited", counts, 200*windows, windows)
		}
		perRequest("rate", total, scriptCalls(t, rdb)-scripts, limitRequests()-metric)
	})
}

// TestPlansWhileRedisIsDown: a Redis outage never turns plans into 5xx; a
// node admits its share of the quota it last knew remained (the live node
// count divides it), not all of it, and not nothing.
func TestPlansWhileRedisIsDown(t *testing.T) {
	a, b, srv := twoNodes(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()
	key, _ := planned(t, a, "hundred", map[string]any{"quota": map[string]any{"requests": 100, "period": "day"}})
	gatewaytest.Eventually(t, 15*time.Second, "both nodes counted live", func() error {
		if n := rdb.ZCard(context.Background(), "access_auth:nodes").Val(); n != 2 {
			return fmt.Errorf("%d nodes", n)
		}
		return nil
	})
	// The node that announced itself first learns of the second at its
	// next heartbeat.
	time.Sleep(6 * time.Second)
	for _, n := range []*gatewaytest.Node{a, b} {
		for range 10 {
			gatewaytest.WantAnswer(t, "before the outage", n.Call(key), http.StatusOK, "")
		}
	}
	srv.Stop()
	counts := planLoad(t, []*gatewaytest.Node{a}, key, 150, 0, 0)
	allowed := counts["200 "]
	t.Logf("150 requests to one of two nodes while Redis is down: %v", counts)
	if allowed+counts["429 quota_exceeded"] != 150 {
		t.Errorf("answers while Redis is down %v, want only 200 and 429 quota_exceeded", counts)
	}
	// 80 remained; A's share is half of what it knew remained, with the
	// block it held: more than nothing, less than all.
	if allowed < 30 || allowed >= 80 {
		t.Errorf("%d admitted by one of two nodes while Redis was down, want its share of the 80 left (30..79)", allowed)
	}
}
