package interop

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/accessauth/caddy-access-auth/enforcement"
	"github.com/accessauth/caddy-access-auth/internal/gatewaytest"
)

// TestQuickstart runs the README's quickstart with the CLI of the built binary
// against a running gateway: create a key, authorize it for the route's group,
// a signed request passes, an unsigned one is refused, a disabled key is refused.
func TestQuickstart(t *testing.T) {
	g := gatewaytest.Start(t, "gateway", "", "\trespond /healthz \"ok\"\n\thandle /api/* {\n\t\taccess_auth demo\n\t\trespond \"Hello {http.auth.user.id}\"\n\t}")
	// run runs the CLI and returns its output and whether it exited 0.
	run := func(args ...string) (string, bool) {
		cmd := exec.Command(gatewaytest.Binary(t), append([]string{"access-auth", "--address", strings.TrimPrefix(g.Admin, "http://")}, args...)...)
		cmd.Env = os.Environ()
		out, err := cmd.CombinedOutput()
		return string(out), err == nil
	}
	cli := func(args ...string) string {
		t.Helper()
		out, ok := run(args...)
		if !ok {
			t.Fatalf("caddy access-auth %s failed:\n%s", strings.Join(args, " "), out)
		}
		return out
	}
	g.WaitGroup("demo")

	var key gatewaytest.Credentials
	if out := cli("keys", "create", "--name", "alice"); json.Unmarshal([]byte(out), &key) != nil || key.APISecret == "" {
		t.Fatalf("keys create answered %q", out)
	}
	cli("authorizations", "create", "--access-key-id", key.ID, "--bind", "demo")

	out := cli("curl", "-i", "--key", key.APIKey, "--secret", key.APISecret, g.Site+"/api/hello")
	if !strings.Contains(out, " 200 ") || !strings.Contains(out, "Hello "+key.ID) {
		t.Fatalf("signed request:\n%s", out)
	}

	resp, err := http.Get(g.Site + "/api/hello")
	if err != nil {
		t.Fatal(err)
	}
	var denied enforcement.DenialBody
	_ = json.NewDecoder(resp.Body).Decode(&denied)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || denied.Error.Reason != "missing_credentials" {
		t.Fatalf("unsigned request: %d %+v", resp.StatusCode, denied)
	}

	cli("keys", "update", key.ID, "--enabled=false")
	// Like curl --fail, the CLI exits non-zero on a 401, and still shows it.
	out, ok := run("curl", "-i", "--key", key.APIKey, "--secret", key.APISecret, g.Site+"/api/hello")
	if ok || !strings.Contains(out, " 401 ") || !strings.Contains(out, `"invalid_key"`) {
		t.Fatalf("disabled key (exited 0: %v):\n%s", ok, out)
	}
}
