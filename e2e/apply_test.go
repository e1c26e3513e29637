package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/accessauth/caddy-access-auth/internal/gatewaytest"
)

// applyYAML is the file of TestApply: the route's group, a plan, a
// generated and an imported key, and their authorizations. %s is the
// imported key's api_key, %s the description of the group.
const applyYAML = `# the state of the orders API's callers
groups:
  - name: orders
    description: %s
plans:
  - name: gold
    rate: {requests: 100, per: 1s}
keys:
  - name: alice
  - name: partner
    api_key: %s
    api_secret: partner-secret
authorizations:
  - key: alice
    plan: gold
    bindings:
      - group: orders
  - key: partner
    bindings:
      - group: orders
`

// state is what an apply may change, read through the admin API: the
// whole data set (without its export time) and the audit log.
func state(t *testing.T, n *gatewaytest.Node) string {
	t.Helper()
	var exp map[string]any
	n.AdminJSON(http.MethodGet, "/access-auth/export", nil, http.StatusOK, &exp)
	delete(exp, "exported_at")
	_, audit := n.Request(http.MethodGet, "/access-auth/audit?limit=500", nil)
	raw, err := json.Marshal(exp)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw) + "\n" + string(audit)
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

var printedSecret = regexp.MustCompile(`(?m)^  alice  id=(\S+)  api_key=(\S+)  api_secret=(\S+)$`)

// TestApply runs caddy access-auth apply against a running node: the first
// run creates and prints the diff and the generated secret, which then
// signs a request the gateway lets through; a second run prints no change
// and leaves the audit log as it was; a dry run and a bad file change
// nothing, the bad file's error naming the path of the bad entry; --prune
// deletes what the file leaves out.
func TestApply(t *testing.T) {
	n := gatewaytest.Start(t, "apply", "", ordersSite)
	n.WaitGroup("orders")
	partnerKey := gatewaytest.RandomAPIKey(t)
	file := writeFile(t, "state.yaml", fmt.Sprintf(applyYAML, "Orders API", partnerKey))

	out, ok := cli(t, n, "apply", "-f", file)
	for _, want := range []string{"~ group orders (description)", "+ plan gold", "+ key alice", "+ key partner",
		"+ authorization alice", "+ authorization partner", "5 created, 1 changed, 0 deleted", "shown this once"} {
		if !ok || !strings.Contains(out, want) {
			t.Fatalf("apply (exited zero: %v) does not print %q:\n%s", ok, want, out)
		}
	}
	if strings.Contains(out, "partner-secret") {
		t.Fatalf("apply printed an imported secret:\n%s", out)
	}
	m := printedSecret.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("apply printed no secret for alice:\n%s", out)
	}
	aliceID, aliceKey, aliceSecret := m[1], m[2], m[3]
	runCLICases(t, n, []cliCase{
		{"alice signs", []string{"curl", "--key", aliceKey, "--secret", aliceSecret, n.Site + "/"}, true, []string{"ok " + aliceID}, nil},
		{"partner signs", []string{"curl", "--key", partnerKey, "--secret", "partner-secret", n.Site + "/"}, true, []string{"ok ak-"}, nil},
	})

	before := state(t, n)
	runCLICases(t, n, []cliCase{
		{"second apply", []string{"apply", "-f", file}, true, []string{"no change"}, []string{"+ ", "~ ", "shown this once"}},
	})
	if after := state(t, n); after != before {
		t.Fatalf("a second apply changed the store or its audit log:\nbefore %s\nafter  %s", before, after)
	}

	changed := writeFile(t, "changed.yaml", fmt.Sprintf(applyYAML, "Orders API, v2", partnerKey)+"  - key: bob\n")
	withBob := writeFile(t, "bob.yaml", strings.Replace(fmt.Sprintf(applyYAML, "Orders API, v2", partnerKey),
		"keys:\n", "keys:\n  - name: bob\n", 1))
	bad := writeFile(t, "bad.yaml", fmt.Sprintf(applyYAML, "Orders API, v2", partnerKey)+"      - group: pay\n")
	unknownField := writeFile(t, "unknown.json", `{"keys":[{"name":"bob","secret":"x"}]}`)
	runCLICases(t, n, []cliCase{
		{"dry run", []string{"apply", "-f", withBob, "--dry-run"}, true,
			[]string{"~ group orders (description)", "+ key bob", "dry run: 1 to create, 1 to change, 0 to delete; nothing was changed"},
			[]string{"shown this once"}},
		{"missing key", []string{"apply", "-f", changed}, false,
			[]string{`invalid_argument: authorizations[2].key: access key "bob" is neither in the file nor in the store`}, []string{"{"}},
		{"missing group", []string{"apply", "-f", bad}, false,
			[]string{`authorizations[1].bindings[1].group: group "pay" is neither in the file nor in the store`}, nil},
		{"unknown field", []string{"apply", "-f", unknownField}, false,
			[]string{"keys[0].secret: is not a field here"}, nil},
		{"no file", []string{"apply"}, false, []string{"--file (-f) is required"}, nil},
		{"missing file", []string{"apply", "-f", file + ".missing"}, false, []string{"no such file"}, nil},
	})
	if after := state(t, n); after != before {
		t.Fatalf("a dry run or a refused file changed the store:\nbefore %s\nafter  %s", before, after)
	}

	// Prune: a key made outside the file goes, with its authorization.
	stray := n.AuthorizedKey("stray", "orders")
	runCLICases(t, n, []cliCase{
		{"without prune", []string{"apply", "-f", file}, true, []string{"no change"}, []string{"stray"}},
		{"prune dry run", []string{"apply", "-f", file, "--prune", "--dry-run"}, true,
			[]string{"- authorization stray", "- key stray", "0 to create, 0 to change, 2 to delete"}, nil},
		{"prune", []string{"apply", "-f", file, "--prune"}, true,
			[]string{"- authorization stray\n- key stray\n0 created, 0 changed, 2 deleted"}, nil},
		{"stray is gone", []string{"curl", "--key", stray.APIKey, "--secret", stray.APISecret, n.Site + "/"}, false, []string{"401"}, nil},
		{"prune again", []string{"apply", "-f", file, "--prune"}, true, []string{"no change"}, nil},
		{"--json", []string{"apply", "-f", file, "--json"}, true, []string{`"dry_run": false`, `"changes": []`, `"secrets": []`}, nil},
	})
}

// TestApplyThousandKeys applies a JSON file of 1,000 generated keys with
// their authorizations through the CLI, and again; it logs how long each
// run takes (the figures of docs/apply.md; store's BenchmarkApply1000Keys
// measures the store alone).
func TestApplyThousandKeys(t *testing.T) {
	n := gatewaytest.Start(t, "apply-1000", "", ordersSite)
	n.WaitGroup("orders")
	type entry = map[string]any
	d := entry{"groups": []entry{{"name": "orders"}}}
	var keys, auths []entry
	for i := range 1000 {
		name := fmt.Sprintf("caller-%04d", i)
		keys = append(keys, entry{"name": name})
		auths = append(auths, entry{"key": name, "bindings": []entry{{"group": "orders"}}})
	}
	d["keys"], d["authorizations"] = keys, auths
	raw, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	file := writeFile(t, "thousand.json", string(raw))

	start := time.Now()
	out, ok := cli(t, n, "apply", "-f", file)
	first := time.Since(start)
	if !ok || strings.Count(out, "+ key caller-") != 1000 || strings.Count(out, "api_secret=") != 1000 ||
		!strings.Contains(out, "2000 created, 0 changed, 0 deleted") {
		t.Fatalf("apply of 1,000 keys (exited zero: %v):\n%s", ok, gatewaytest.Tail(out, 2000))
	}
	start = time.Now()
	out, ok = cli(t, n, "apply", "-f", file)
	second := time.Since(start)
	if !ok || !strings.Contains(out, "no change") {
		t.Fatalf("second apply of 1,000 keys (exited zero: %v):\n%s", ok, out)
	}
	var page struct {
		Items []json.RawMessage `json:"items"`
	}
	n.AdminJSON(http.MethodGet, "/access-auth/groups/orders/authorizations?limit=500", nil, http.StatusOK, &page)
	if len(page.Items) != 500 {
		t.Errorf("orders lists %d authorizations on its first page, want 500", len(page.Items))
	}
	t.Logf("apply of 1,000 keys with their authorizations through the CLI: %v; again, unchanged: %v", first, second)
}

// TestApplyExample applies examples/apply.yaml as docs/apply.md shows it:
// everything is created, the generated key's secret printed, and a second
// run changes nothing.
func TestApplyExample(t *testing.T) {
	n := gatewaytest.Start(t, "apply-example", "", ordersSite)
	runCLICases(t, n, []cliCase{
		{"dry run", []string{"apply", "-f", "../examples/apply.yaml", "--dry-run"}, true,
			[]string{"dry run: 6 to create, 0 to change, 0 to delete"}, nil},
		{"apply", []string{"apply", "-f", "../examples/apply.yaml"}, true,
			[]string{"+ group shop\n+ plan partner\n+ key shop-web\n+ key acme\n+ authorization shop-web\n+ authorization acme\n6 created",
				"  shop-web  id=ak-"}, []string{"acme  id="}},
		{"again", []string{"apply", "-f", "../examples/apply.yaml"}, true, []string{"no change"}, nil},
	})
}
