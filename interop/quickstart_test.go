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
	cli := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(gatewaytest.Binary(t), append([]string{"access-auth", "--address", strings.TrimPrefix(g.Admin, "http://")}, args...)...)
		cmd.Env = os.Environ()
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("caddy access-auth %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
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
	out = cli("curl", "-i", "--key", key.APIKey, "--secret", key.APISecret, g.Site+"/api/hello")
	if !strings.Contains(out, " 401 ") || !strings.Contains(out, `"invalid_key"`) {
		t.Fatalf("disabled key:\n%s", out)
	}
}
