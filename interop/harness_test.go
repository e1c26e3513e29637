// Package interop sends requests signed by other vendors' real client libraries
// through a real Caddy binary built with the plugin. It is a separate module so
// that users' builds never pull these libraries.
package interop

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// caddyBinary is built once by TestMain from ../cmd/caddy.
var caddyBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "interop-caddy-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	caddyBinary = filepath.Join(dir, "caddy")
	build := exec.Command("go", "build", "-o", caddyBinary, "./cmd/caddy")
	build.Dir = ".."
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building caddy:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// gateway is one running Caddy process.
type gateway struct {
	t       *testing.T
	admin   string // http://127.0.0.1:port
	site    string // http://127.0.0.1:port
	process *exec.Cmd
	logs    *bytes.Buffer
}

// startGateway runs Caddy with the embedded store in a temporary directory and
// one site whose routes are given as Caddyfile lines; {upstream} in them is
// replaced by upstream.
func startGateway(t *testing.T, routes string) *gateway {
	t.Helper()
	dir := t.TempDir()
	adminPort, sitePort := freePort(t), freePort(t)
	caddyfile := fmt.Sprintf(`{
	admin 127.0.0.1:%d
	persist_config off
	access_auth {
		store file %s
	}
}

http://127.0.0.1:%d {
%s
}
`, adminPort, filepath.Join(dir, "store.db"), sitePort, routes)
	config := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(config, []byte(caddyfile), 0o600); err != nil {
		t.Fatal(err)
	}
	g := &gateway{
		t:     t,
		admin: fmt.Sprintf("http://127.0.0.1:%d", adminPort),
		site:  fmt.Sprintf("http://127.0.0.1:%d", sitePort),
		logs:  &bytes.Buffer{},
	}
	g.process = exec.Command(caddyBinary, "run", "--config", config, "--adapter", "caddyfile")
	g.process.Env = append(os.Environ(), "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir, "HOME="+dir)
	g.process.Stdout, g.process.Stderr = g.logs, g.logs
	if err := g.process.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = g.process.Process.Kill()
		_ = g.process.Wait()
		if t.Failed() {
			t.Logf("caddy output:\n%s", g.logs.String())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(g.admin + "/access-auth/groups")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return g
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("caddy did not come up: %v\n%s", err, g.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// adminJSON calls the admin API and decodes the answer into out (may be nil),
// failing the test unless the status is want.
func (g *gateway) adminJSON(method, path string, body any, want int, out any) {
	g.t.Helper()
	var reader io.Reader
	if body != nil {
		encoded, err := json.Marshal(body)
		if err != nil {
			g.t.Fatal(err)
		}
		reader = bytes.NewReader(encoded)
	}
	req, err := http.NewRequest(method, g.admin+path, reader)
	if err != nil {
		g.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		g.t.Fatalf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, want, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			g.t.Fatalf("%s %s: %v: %s", method, path, err, raw)
		}
	}
}

// credentials are what the admin API answers when a key is created.
type credentials struct {
	ID        string `json:"id"`
	APIKey    string `json:"api_key"`
	APISecret string `json:"api_secret"`
}

// authorize creates (or imports, when apiKey is set) a key and binds it to group.
func (g *gateway) authorize(name, group, apiKey, apiSecret string) credentials {
	g.t.Helper()
	g.ensureGroup(group)
	var key credentials
	body := map[string]any{"name": name}
	if apiKey != "" {
		body["kind"], body["api_key"], body["api_secret"] = "imported", apiKey, apiSecret
	}
	g.adminJSON(http.MethodPost, "/access-auth/keys", body, http.StatusCreated, &key)
	if apiKey != "" {
		key.APISecret = apiSecret
	}
	g.adminJSON(http.MethodPost, "/access-auth/authorizations", map[string]any{
		"access_key_id": key.ID,
		"bindings":      []map[string]string{{"group": group}},
	}, http.StatusCreated, nil)
	return key
}

// waitGroup waits until a route has registered group.
func (g *gateway) waitGroup(group string) {
	g.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(g.admin + "/access-auth/groups/" + group)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("group %s was not registered by its route", group)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ensureGroup waits for the route to register group, creating it if it has
// not yet been registered.
func (g *gateway) ensureGroup(group string) {
	g.t.Helper()
	resp, err := http.Get(g.admin + "/access-auth/groups/" + group)
	if err != nil {
		g.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return
	}
	req, _ := http.NewRequest(http.MethodPost, g.admin+"/access-auth/groups",
		strings.NewReader(`{"name":"`+group+`"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusConflict {
		g.t.Fatalf("creating group %s: status %d", group, resp.StatusCode)
	}
}

// gatewayError is the JSON error body of a refused request.
type gatewayError struct {
	RequestID string `json:"requestId"`
	Error     struct {
		Code    int    `json:"code"`
		Status  string `json:"status"`
		Message string `json:"message"`
		Reason  string `json:"reason"`
	} `json:"error"`
}
