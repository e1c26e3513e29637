package caddymodule

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// The example dashboard charts the module's metrics, all of them, and
// nothing else of its own.
func TestDashboardChartsTheMetrics(t *testing.T) {
	raw, err := os.ReadFile("../examples/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dashboard struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dashboard); err != nil {
		t.Fatalf("examples/grafana-dashboard.json: %v", err)
	}

	registered := map[string]bool{}
	fqName := regexp.MustCompile(`fqName: "([^"]+)"`)
	for _, c := range collectors() {
		descs := make(chan *prometheus.Desc, 16)
		c.Describe(descs)
		close(descs)
		for d := range descs {
			registered[fqName.FindStringSubmatch(d.String())[1]] = true
		}
	}
	// The eight of the product contract and its two of usage plans,
	// local_nonces_displaced_total, the three of the body buffer and
	// unsealable_secrets_total.
	if len(registered) != 15 {
		t.Fatalf("%d metrics registered, want the contract's 8 and 2 of plans, local_nonces_displaced_total, body_buffer_* and unsealable_secrets_total: %v", len(registered), registered)
	}

	charted := map[string]bool{}
	metric := regexp.MustCompile(`caddy_access_auth_[a-z_]+`)
	for _, p := range dashboard.Panels {
		for _, target := range p.Targets {
			for _, name := range metric.FindAllString(target.Expr, -1) {
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					if base, ok := strings.CutSuffix(name, suffix); ok && registered[base] {
						name = base
					}
				}
				if !registered[name] {
					t.Errorf("panel %q charts %s, which the module does not register", p.Title, name)
				}
				charted[name] = true
			}
		}
	}
	for name := range registered {
		if !charted[name] {
			t.Errorf("the dashboard charts no %s", name)
		}
	}
}
