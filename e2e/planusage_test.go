package e2e

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/accessauth/caddy-access-auth/internal/gatewaytest"
)

// dailyCounts is a key's usage to orders today: allowed and limited.
type dailyCounts struct{ allowed, limited int64 }

// wantDaily waits up to within for the key's usage to show want for orders
// today, and nothing else.
func wantDaily(t *testing.T, n *gatewaytest.Node, keyID string, want dailyCounts, within time.Duration) {
	t.Helper()
	gatewaytest.Eventually(t, within, "the usage shows the requests", func() error {
		var u struct {
			Daily []struct {
				Date, Group      string
				Allowed, Limited int64
			}
		}
		n.AdminJSON(http.MethodGet, "/access-auth/keys/"+keyID+"/usage", nil, http.StatusOK, &u)
		today := time.Now().UTC().Format(time.DateOnly)
		if len(u.Daily) != 1 || u.Daily[0].Date != today || u.Daily[0].Group != "orders" ||
			(dailyCounts{u.Daily[0].Allowed, u.Daily[0].Limited}) != want {
			return fmt.Errorf("daily %+v, want %d allowed and %d limited to orders on %s", u.Daily, want.allowed, want.limited, today)
		}
		return nil
	})
}

// explainArgs are the CLI's arguments explaining req for group orders.
func explainArgs(req *http.Request) []string {
	args := []string{"explain", req.URL.String(), "--group", "orders"}
	for name, values := range req.Header {
		for _, v := range values {
			args = append(args, "-H", name+": "+v)
		}
	}
	return args
}

// TestExplainSpendsNoPlanBudget: with a plan of 2 requests a day, explain
// says allowed with the whole quota left (asked three times); the two
// signed requests then pass, explain now says quota_exceeded, the third
// request is refused so; the daily usage counts the real requests alone.
// On the embedded store and on Redis, where explain must lease nothing.
func TestExplainSpendsNoPlanBudget(t *testing.T) {
	for _, tc := range bothStores {
		t.Run(tc.name, func(t *testing.T) {
			n := gatewaytest.Start(t, "planexplain-"+tc.name, tc.store(t), ordersSite)
			n.WaitGroup("orders")
			key, _ := planned(t, n, "two", map[string]any{"quota": map[string]any{"requests": 2, "period": "day"}})

			for i := range 3 {
				out, ok := cli(t, n, explainArgs(n.SignedRequest("/x", key))...)
				if !ok || !strings.Contains(out, "decision: allowed") ||
					!regexp.MustCompile(`(?m)^  ok +usage_plan +plan "two", the authorization's`).MatchString(out) ||
					!strings.Contains(out, "quota 2 per day: 2 of 2 left") {
					t.Fatalf("explain %d before any request: exited zero = %v, want allowed with the whole quota:\n%s", i, ok, out)
				}
			}
			for i := range 2 {
				gatewaytest.WantAnswer(t, fmt.Sprint("request ", i), n.Call(key), http.StatusOK, "")
			}
			out, ok := cli(t, n, explainArgs(n.SignedRequest("/x", key))...)
			if ok || !strings.Contains(out, "decision: quota_exceeded") ||
				!regexp.MustCompile(`(?m)^  FAIL +usage_plan +quota_exceeded: `).MatchString(out) || !strings.Contains(out, "0 of 2 left") {
				t.Fatalf("explain after the quota was spent: exited zero = %v, want quota_exceeded:\n%s", ok, out)
			}
			wantQuotaExceeded(t, "the third request", sendPlanned(t, n.SignedRequest("/x", key)))
			wantDaily(t, n, key.ID, dailyCounts{allowed: 2, limited: 1}, usageFlushBound)
		})
	}
}

// TestPlanRefusalsCountAsLimited: three requests sent at once under a rate
// of 1/s with no burst: one passes, two are refused 429 by the plan, and
// the key's daily usage shows 1 allowed and 2 limited.
func TestPlanRefusalsCountAsLimited(t *testing.T) {
	n := gatewaytest.Start(t, "planlimited", "", ordersSite)
	n.WaitGroup("orders")
	key, _ := planned(t, n, "one", map[string]any{"rate": map[string]any{"requests": 1, "per": "1s"}, "burst": 0})
	reqs := make([]*http.Request, 3)
	for i := range reqs {
		reqs[i] = n.SignedRequest("/x", key)
	}
	// Connections opened beforehand (unsigned requests, refused before the
	// plan, not counted), so the signed ones leave together.
	sendAtOnce(t, make([]*http.Request, len(reqs)), func(int) *http.Request {
		req, _ := http.NewRequest(http.MethodGet, n.Site+"/x", nil)
		return req
	})
	var got dailyCounts
	for _, a := range sendAtOnce(t, reqs, nil) {
		switch {
		case a.Status == http.StatusOK:
			got.allowed++
		case a.Status == http.StatusTooManyRequests && a.Reason == "rate_limited":
			got.limited++
		default:
			t.Errorf("answer %s, want 200 or 429 rate_limited", a.Answer)
		}
	}
	if want := (dailyCounts{allowed: 1, limited: 2}); got != want {
		t.Fatalf("answers: %d allowed, %d rate_limited; want 1 and 2", got.allowed, got.limited)
	}
	wantDaily(t, n, key.ID, got, usageFlushBound)
}
