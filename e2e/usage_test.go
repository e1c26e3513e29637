package e2e

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/accessauth/caddy-access-auth/internal/gatewaytest"
	"github.com/accessauth/caddy-access-auth/internal/redistest"
)

// usageFlushBound is how long the usage endpoint may take to show a
// request: the recorder flushes every second; the rest is slack for a
// loaded machine.
const usageFlushBound = 3 * time.Second

// TestUsagePerKey sends signed requests through the real binary and reads
// them back from the key's usage (API and CLI): within the flush bound,
// and after a clean stop right after more requests (the stop flushes)
// and a restart, on the embedded store and on Redis.
func TestUsagePerKey(t *testing.T) {
	for _, tc := range bothStores {
		t.Run(tc.name, func(t *testing.T) {
			n := gatewaytest.Start(t, "usage-"+tc.name, tc.store(t), ordersSite)
			n.WaitGroup("orders")
			key := n.AuthorizedKey("alice", "orders")
			for i := range 3 {
				gatewaytest.WantAnswer(t, fmt.Sprint("request ", i), n.Call(key), http.StatusOK, "")
			}
			wantAllowed(t, n, key.ID, 3, usageFlushBound)

			for i := range 2 {
				gatewaytest.WantAnswer(t, fmt.Sprint("request before the stop ", i), n.Call(key), http.StatusOK, "")
			}
			n.Terminate()
			n.Restart()
			wantAllowed(t, n, key.ID, 5, 0)

			today := time.Now().UTC().Format(time.DateOnly)
			runCLICases(t, n, []cliCase{
				{"usage by name", []string{"keys", "usage", "alice"}, true,
					[]string{"Quota budgets: none", "DATE", "ALLOWED", today, "orders", "5"}, []string{"{"}},
				{"usage by ID as JSON", []string{"keys", "usage", key.ID, "--json"}, true,
					[]string{`"budgets": []`, `"allowed": 5`, `"group": "orders"`}, nil},
				{"unknown key", []string{"keys", "usage", "ak-missing"}, false, []string{"not_found: "}, []string{"{"}},
				{"unknown name", []string{"keys", "usage", "nobody"}, false, []string{"not_found: ", "nobody"}, nil},
			})
		})
	}
}

// wantAllowed waits up to within (0: no wait) for the key's usage to show
// want allowed requests to orders today, and nothing else.
func wantAllowed(t *testing.T, n *gatewaytest.Node, keyID string, want int64, within time.Duration) {
	t.Helper()
	type day struct {
		Date             string
		Group            string
		Allowed, Limited int64
	}
	check := func() error {
		var u struct{ Daily []day }
		n.AdminJSON("GET", "/access-auth/keys/"+keyID+"/usage", nil, http.StatusOK, &u)
		today := time.Now().UTC().Format(time.DateOnly)
		if len(u.Daily) != 1 || u.Daily[0] != (day{today, "orders", want, 0}) {
			return fmt.Errorf("daily %+v, want %d allowed to orders on %s", u.Daily, want, today)
		}
		return nil
	}
	if within == 0 {
		if err := check(); err != nil {
			t.Fatal(err)
		}
		return
	}
	gatewaytest.Eventually(t, within, "the usage shows the requests", check)
}

// bothStores are the access_auth options of a node on the embedded store
// and of one on a Redis of its own.
var bothStores = []struct {
	name  string
	store func(t *testing.T) string
}{
	{"embedded", func(*testing.T) string { return "" }},
	{"redis", func(t *testing.T) string {
		srv := redistest.Start(t, redistest.Options{})
		return gatewaytest.RedisOptions(gatewaytest.NewMasterKey(t), "redis://"+srv.Addr)
	}},
}
