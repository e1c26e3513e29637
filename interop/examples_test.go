package interop

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/accessauth/caddy-access-auth/internal/gatewaytest"
)

// TestExamples runs every client of ../examples (and the JD Cloud SDK one
// of ./examples) against a real Caddy: each gets through with the right
// secret and is refused with a wrong one. The plugin's CLI
// `caddy access-auth curl` is run the same way for every scheme.
func TestExamples(t *testing.T) {
	g := gatewaytest.Start(t, "gateway", "", "\taccess_auth interop\n\treverse_proxy "+echoUpstream(t).Listener.Addr().String())
	key := g.AuthorizedKey("examples", "interop")
	dir := t.TempDir()
	goClient := filepath.Join(dir, "go-client")
	build := exec.Command("go", "build", "-o", goClient, "./examples/go-client")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building examples/go-client: %v\n%s", err, out)
	}
	nodeModules, err := filepath.Abs("node/node_modules") // the interop client's install serves the example too
	if err != nil {
		t.Fatal(err)
	}

	type example struct {
		name string
		cmd  func(secret string) *exec.Cmd
	}
	withKey := func(cmd *exec.Cmd, secret string) *exec.Cmd {
		cmd.Env = append(os.Environ(), "API_KEY="+key.APIKey, "API_SECRET="+secret, "NODE_PATH="+nodeModules)
		return cmd
	}
	examples := []example{
		{"curl-sigv4.sh", func(secret string) *exec.Cmd {
			return withKey(exec.Command("sh", "../examples/curl-sigv4.sh", g.Site+"/api/hello"), secret)
		}},
		{"node-aliyun", func(secret string) *exec.Cmd {
			return withKey(exec.Command("node", "../examples/node-aliyun/index.js", g.Site+"/api/hello"), secret)
		}},
		{"jdcloud-sdk", func(secret string) *exec.Cmd {
			return withKey(exec.Command("go", "run", "./examples/jdcloud-sdk", g.Site+"/api/hello"), secret)
		}},
	}
	// Distinct paths: SigV4 has no nonce, so two identical requests signed
	// in the same second carry the same signature and the second is a replay.
	for _, scheme := range []string{"jdcloud2", "jdcloud3", "sigv4", "aliyun"} {
		examples = append(examples,
			example{"go-client/" + scheme, func(secret string) *exec.Cmd {
				return withKey(exec.Command(goClient, "-scheme", scheme, "-d", `{"a":1}`, g.Site+"/api/go-client"), secret)
			}},
			example{"caddy access-auth curl/" + scheme, func(secret string) *exec.Cmd {
				return exec.Command(gatewaytest.Binary(t), "access-auth", "curl", "--key", key.APIKey, "--secret", secret,
					"--scheme", scheme, "-i", "-d", `{"a":1}`, "-H", "Content-Type: application/json", g.Site+"/api/cli")
			}})
	}
	for _, ex := range examples {
		t.Run(ex.name, func(t *testing.T) {
			out, err := ex.cmd(key.APISecret).CombinedOutput()
			if err != nil || !strings.Contains(string(out), `"access_key_id":"`+key.ID+`"`) {
				t.Fatalf("right secret: %v\n%s", err, out)
			}
			out, _ = ex.cmd(key.APISecret + "x").CombinedOutput()
			if !strings.Contains(string(out), "sign result is not same") || strings.Contains(string(out), key.ID) {
				t.Fatalf("wrong secret was not refused:\n%s", out)
			}
		})
	}

	t.Run("Caddyfile.schemes adapts", func(t *testing.T) {
		out, err := exec.Command(gatewaytest.Binary(t), "adapt", "--config", "../examples/Caddyfile.schemes", "--adapter", "caddyfile").CombinedOutput()
		if err != nil || !strings.Contains(string(out), `"region":"us-east-1"`) || !strings.Contains(string(out), `"allow_unsigned_payload":true`) {
			t.Fatalf("caddy adapt: %v\n%s", err, out)
		}
	})
}
