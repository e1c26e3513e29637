package caddymodule

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/accessauth/caddy-access-auth/internal/redistest"
	"github.com/accessauth/caddy-access-auth/signature"
)

// observabilitySites has a route per group; the global options log
// everything at DEBUG to a file the test reads.
const observabilitySites = `
http://localhost:9080 {
	handle /api/* {
		access_auth orders
		respond "{RESPOND}"
	}
	handle /billing/* {
		access_auth billing
		respond "{RESPOND}"
	}
}
`

// TestMetricsAndLogs scrapes the admin endpoint's /metrics after allowed
// and denied requests (docs/operations.md: names, labels, counts, no key material in
// labels), reloads the config and checks the collectors still count, then
// reads the captured logs: each denial at INFO with its reason, key, group
// and remote IP; a store failure at ERROR; no secret or signature anywhere.
func TestMetricsAndLogs(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	logFile := filepath.Join(t.TempDir(), "caddy.log")
	options := `log {
		output file ` + logFile + `
		format json
		level DEBUG
	}
	access_auth {
		store redis redis://` + srv.Addr + `
		master_key {env.CADDYMODULE_TEST_MASTER_KEY}
	}`
	sites := func(respond string) string { return strings.ReplaceAll(observabilitySites, "{RESPOND}", respond) }
	startCaddy(t, options, sites("ok"))
	waitGroupConfigured(t, "orders")
	waitGroupConfigured(t, "billing")
	alice, _ := newAuthorizedKey(t, "metrics-alice", nil, [2]string{"orders", "online"})
	const unknownKey = "0123456789ABCDEF0123456789ABCDEF"

	before := scrape(t)
	var sent []*http.Request // every signed request, for the log check
	do := func(req *http.Request, wantStatus int) {
		t.Helper()
		sent = append(sent, req)
		if a := send(t, req); a.status != wantStatus {
			t.Fatalf("%s %s: status %d, want %d: %s", req.Method, req.URL, a.status, wantStatus, a.body)
		}
	}
	jd2 := signature.JDCloud2
	for range 3 {
		do(signed(t, "GET", siteURL+"/api/x", "", jd2, alice.APIKey, alice.APISecret), http.StatusOK)
	}
	do(signed(t, "GET", siteURL+"/api/x", "", signature.SigV4, alice.APIKey, "wrong-secret"), http.StatusUnauthorized)
	do(signed(t, "GET", siteURL+"/api/x", "", signature.Aliyun, alice.APIKey, "wrong-secret"), http.StatusUnauthorized)
	do(signed(t, "GET", siteURL+"/billing/x", "", jd2, alice.APIKey, alice.APISecret), http.StatusForbidden)
	do(signed(t, "GET", siteURL+"/api/x", "", jd2, unknownKey, "whatever"), http.StatusUnauthorized)
	unsigned, _ := http.NewRequest("GET", siteURL+"/api/x", nil)
	do(unsigned, http.StatusUnauthorized)

	// The feed delivers the key's and authorization's commits asynchronously.
	var after metricFamilies
	for deadline := time.Now().Add(5 * time.Second); ; {
		after = scrape(t)
		if after.count("caddy_access_auth_propagation_lag_seconds", nil) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	delta := func(name string, labels map[string]string) float64 {
		return after.value(name, labels) - before.value(name, labels)
	}
	requests := func(group, result, reason string) map[string]string {
		return map[string]string{"group": group, "result": result, "reason": reason}
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"caddy_access_auth_requests_total", requests("orders", "allowed", "allowed"), 3},
		{"caddy_access_auth_requests_total", requests("orders", "denied", "signature_mismatch"), 2},
		{"caddy_access_auth_requests_total", requests("billing", "denied", "not_authorized"), 1},
		{"caddy_access_auth_requests_total", requests("orders", "denied", "invalid_key"), 1},
		{"caddy_access_auth_requests_total", requests("orders", "denied", "missing_credentials"), 1},
		{"caddy_access_auth_requests_total", requests("orders", "denied", "replayed_nonce"), 0},
		// A valid signature reaches the replay check, in Redis: 3 allowed and the billing one.
		{"caddy_access_auth_store_requests_total", map[string]string{"op": "nonce", "result": "ok"}, 4},
		{"caddy_access_auth_store_requests_total", map[string]string{"op": "nonce", "result": "error"}, 0},
	} {
		if got := delta(c.name, c.labels); got != c.want {
			t.Errorf("%s%v grew by %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	lookups := 0.0
	for _, result := range []string{"hit", "negative_hit", "miss", "stale", "unavailable"} {
		lookups += delta("caddy_access_auth_cache_lookups_total", map[string]string{"result": result})
	}
	// Every request with credentials looks its key up once: 3 + 2 + 1 + 1.
	// Five of them hit, unless the feed's news of the key's creation landed
	// after its first request and dropped it once more.
	if lookups != 7 || delta("caddy_access_auth_cache_lookups_total", map[string]string{"result": "hit"}) < 4 {
		t.Errorf("cache lookups grew by %v (hits %v), want 7 with at least 4 hits", lookups,
			delta("caddy_access_auth_cache_lookups_total", map[string]string{"result": "hit"}))
	}
	if got := after.count("caddy_access_auth_decision_duration_seconds", nil) - before.count("caddy_access_auth_decision_duration_seconds", nil); got != 8 {
		t.Errorf("decision_duration_seconds counted %d decisions, want 8", got)
	}
	// The key's first request and the unknown key each cost a store read;
	// creating the key and its authorization were writes.
	if got := after.value("caddy_access_auth_store_requests_total", map[string]string{"op": "get", "result": "ok"}); got < 2 {
		t.Errorf("store gets: %v, want at least 2", got)
	}
	if got := after.value("caddy_access_auth_store_requests_total", map[string]string{"op": "update", "result": "ok"}); got < 2 {
		t.Errorf("store updates: %v, want at least 2", got)
	}
	if got := after.count("caddy_access_auth_store_request_duration_seconds", map[string]string{"op": "get"}); got < 2 {
		t.Errorf("store get durations: %d, want at least 2", got)
	}
	if got := after.count("caddy_access_auth_propagation_lag_seconds", nil); got < 1 {
		t.Errorf("propagation lags observed: %d, want at least 1", got)
	}
	if got := after.value("caddy_access_auth_store_up", nil); got != 1 {
		t.Errorf("store_up %v, want 1", got)
	}
	for _, name := range []string{"caddy_access_auth_invalidations_total"} {
		if _, ok := after[name]; !ok {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	for _, narrowing := range []string{"true", "false"} {
		m := after.find("caddy_access_auth_local_nonces_displaced_total", map[string]string{"narrowing": narrowing})
		if m == nil || m.Counter == nil || m.Counter.GetValue() != 0 {
			t.Errorf("local_nonces_displaced_total{narrowing=%q}: %v, want a counter at 0", narrowing, m)
		}
	}
	after.noLabelHolds(t, alice.ID, alice.APIKey, alice.APISecret, unknownKey)

	// A reload re-registers the same collectors in the new registry: no
	// panic, no reset, still counting.
	startCaddy(t, options, sites("reloaded"))
	do(signed(t, "GET", siteURL+"/api/x", "", jd2, alice.APIKey, alice.APISecret), http.StatusOK)
	reloaded := scrape(t)
	if got := reloaded.value("caddy_access_auth_requests_total", requests("orders", "allowed", "allowed")) -
		after.value("caddy_access_auth_requests_total", requests("orders", "allowed", "allowed")); got != 1 {
		t.Errorf("after a reload allowed requests grew by %v, want 1", got)
	}
	reloaded.noLabelHolds(t, alice.ID, alice.APIKey, alice.APISecret, unknownKey)

	// Redis gone: a key not cached cannot be looked up.
	srv.Stop()
	do(signed(t, "GET", siteURL+"/api/x", "", jd2, "FEDCBA9876543210FEDCBA9876543210", "whatever"), http.StatusServiceUnavailable)
	if got := scrape(t).value("caddy_access_auth_store_requests_total", map[string]string{"op": "get", "result": "error"}); got < 1 {
		t.Errorf("failed store gets: %v, want at least 1", got)
	}

	entries := readLog(t, logFile)
	for _, want := range []map[string]string{
		{"reason": "signature_mismatch", "group": "orders", "access_key_id": alice.ID},
		{"reason": "not_authorized", "group": "billing", "access_key_id": alice.ID, "api_key": alice.APIKey},
		{"reason": "invalid_key", "group": "orders", "api_key": unknownKey},
		{"reason": "missing_credentials", "group": "orders"},
		{"reason": "store_unavailable", "group": "orders", "api_key": "FEDCBA9876543210FEDCBA9876543210"},
	} {
		want["msg"], want["level"], want["remote_ip"] = "request refused", "info", "127.0.0.1"
		if !entries.has(want) {
			t.Errorf("no log entry %v", want)
		}
	}
	if !entries.has(map[string]string{"level": "error", "logger": "access_auth.store", "msg": "store request failed", "op": "get"}) {
		t.Error("the store failure was not logged at ERROR")
	}

	// Nothing secret in the logs: not the secret, not a signature, not an
	// Authorization header.
	raw, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	secrets := []string{alice.APISecret}
	for _, req := range sent {
		if auth := req.Header.Get("Authorization"); auth != "" {
			_, sig, _ := strings.Cut(auth, "Signature=")
			secrets = append(secrets, auth, sig)
		}
		if sig := req.Header.Get("X-Ca-Signature"); sig != "" {
			secrets = append(secrets, sig)
		}
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(string(raw), s) {
			t.Errorf("the log holds %q", s)
		}
	}
}

// metricFamilies is one scrape of /metrics.
type metricFamilies map[string]*dto.MetricFamily

func scrape(t *testing.T) metricFamilies {
	t.Helper()
	resp, err := client.Get(adminURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	return families
}

// find returns the metric of family name whose labels include labels.
func (f metricFamilies) find(name string, labels map[string]string) *dto.Metric {
	family, ok := f[name]
	if !ok {
		return nil
	}
	for _, m := range family.Metric {
		matched := 0
		for _, l := range m.Label {
			if v, ok := labels[l.GetName()]; ok && v == l.GetValue() {
				matched++
			}
		}
		if matched == len(labels) {
			return m
		}
	}
	return nil
}

// value is a counter's or gauge's value, 0 when absent.
func (f metricFamilies) value(name string, labels map[string]string) float64 {
	m := f.find(name, labels)
	switch {
	case m == nil:
		return 0
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return 0
}

// count is a histogram's sample count, 0 when absent.
func (f metricFamilies) count(name string, labels map[string]string) uint64 {
	if m := f.find(name, labels); m != nil && m.Histogram != nil {
		return m.Histogram.GetSampleCount()
	}
	return 0
}

// noLabelHolds fails when a label of the module's metrics holds one of values.
func (f metricFamilies) noLabelHolds(t *testing.T, values ...string) {
	t.Helper()
	for name, family := range f {
		if !strings.HasPrefix(name, "caddy_access_auth_") {
			continue
		}
		for _, m := range family.Metric {
			for _, l := range m.Label {
				for _, v := range values {
					if strings.Contains(l.GetValue(), v) {
						t.Errorf("%s label %s holds %q", name, l.GetName(), v)
					}
				}
			}
		}
	}
}

// logEntries are the JSON lines of a log file, string fields only.
type logEntries []map[string]any

func readLog(t *testing.T, path string) logEntries {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var entries logEntries
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e map[string]any
		if json.Unmarshal(sc.Bytes(), &e) == nil {
			entries = append(entries, e)
		}
	}
	return entries
}

// has reports whether an entry has every field of want.
func (l logEntries) has(want map[string]string) bool {
	for _, e := range l {
		matched := true
		for k, v := range want {
			if s, _ := e[k].(string); s != v {
				matched = false
				break
			}
		}
		if matched {
			return true
		}
	}
	return false
}
