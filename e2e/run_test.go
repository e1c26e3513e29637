package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/accessauth/caddy-access-auth/internal/gatewaytest"
)

// TestMakeRun runs what `make run` runs (scripts/run.sh with the real binary
// and Caddyfile.example, moved to free ports) in a fresh folder: the first
// run makes .data/admin.token (0600) and prints it with the console's URL,
// the URL answers the console's page, and the printed token opens the admin
// API there; the next run keeps that token; $ACCESS_AUTH_ADMIN_TOKEN
// replaces it.
func TestMakeRun(t *testing.T) {
	dir := t.TempDir()
	adminPort, sitePort := gatewaytest.FreePort(t), gatewaytest.FreePort(t)
	example, err := os.ReadFile("../Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	config := strings.NewReplacer("localhost:2019", fmt.Sprintf("127.0.0.1:%d", adminPort),
		":8080 {", fmt.Sprintf("http://127.0.0.1:%d {", sitePort)).Replace(string(example))
	if config == string(example) {
		t.Fatal("Caddyfile.example no longer names localhost:2019 and :8080")
	}
	if err := os.WriteFile(filepath.Join(dir, "Caddyfile"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	site := fmt.Sprintf("http://127.0.0.1:%d", sitePort)
	consoleURL := site + "/access-auth/console/"
	const envToken = "token-from-the-environment-0123456789abcdef"

	var generated string
	for _, tc := range []struct {
		name      string
		env       string // $ACCESS_AUTH_ADMIN_TOKEN
		wantFrom  string
		wantToken func() string // "" for the first run: any new token
	}{
		{"first run makes a token", "", ".data/admin.token", func() string { return "" }},
		{"next run keeps it", "", ".data/admin.token", func() string { return generated }},
		{"the environment's token wins", envToken, "$ACCESS_AUTH_ADMIN_TOKEN", func() string { return envToken }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			token, from := startRun(t, dir, consoleURL, tc.env)
			if from != tc.wantFrom {
				t.Errorf("token printed as from %q, want %q", from, tc.wantFrom)
			}
			if want := tc.wantToken(); want != "" && token != want {
				t.Errorf("token %q, want %q", token, want)
			}
			if generated == "" {
				generated = token
				if len(token) != 64 {
					t.Errorf("generated token %q: want 64 hex digits", token)
				}
			}
			info, err := os.Stat(filepath.Join(dir, ".data", "admin.token"))
			if err != nil || info.Mode().Perm() != 0o600 {
				t.Fatalf(".data/admin.token: %v, mode %v; want 0600", err, info.Mode().Perm())
			}
			if status, body := get(t, consoleURL, ""); status != http.StatusOK || !strings.Contains(body, "<title>Access authorization console</title>") {
				t.Errorf("GET %s: %d %.200s", consoleURL, status, body)
			}
			for _, c := range []struct {
				token string
				want  int
			}{{token, http.StatusOK}, {"", http.StatusUnauthorized}, {"wrong-token-0123456789abcdef0123456789", http.StatusUnauthorized}} {
				if status, body := get(t, site+"/access-auth/keys", c.token); status != c.want {
					t.Errorf("GET /access-auth/keys with token %q: %d %s, want %d", c.token, status, body, c.want)
				}
			}
		})
	}
}

// startRun starts scripts/run.sh in dir, waits until the console answers,
// and returns the token it printed and where it said the token came from.
// The server stops when the test ends.
func startRun(t *testing.T, dir, consoleURL, envToken string) (token, from string) {
	t.Helper()
	script, err := filepath.Abs("../scripts/run.sh")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CADDY="+gatewaytest.Binary(t), "CADDYFILE=Caddyfile", "CONSOLE_URL="+consoleURL,
		"ACCESS_AUTH_ADMIN_TOKEN="+envToken, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir, "HOME="+dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var logs gatewaytest.LogBuffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	lines := bufio.NewScanner(stdout)
	var printedURL string
	for lines.Scan() && (printedURL == "" || token == "") {
		if rest, ok := strings.CutPrefix(lines.Text(), "Web console: "); ok {
			printedURL = strings.TrimSpace(rest)
		}
		if rest, ok := strings.CutPrefix(lines.Text(), "Admin token: "); ok {
			token, from, _ = strings.Cut(strings.TrimSpace(rest), "  (from ")
			from = strings.TrimSuffix(from, ")")
		}
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	if printedURL != consoleURL || token == "" {
		t.Fatalf("run.sh printed URL %q and token %q; want %s and a token; stderr:\n%s", printedURL, token, consoleURL, logs.String())
	}
	gatewaytest.Eventually(t, 20*time.Second, "the console to answer", func() error {
		status, _ := get(t, consoleURL, "")
		if status != http.StatusOK {
			return fmt.Errorf("status %d; caddy's log:\n%s", status, gatewaytest.Tail(logs.String(), 2000))
		}
		return nil
	})
	return token, from
}

// get sends GET url with a bearer token (none when empty); 0 when nothing answers.
func get(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := gatewaytest.Client.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}
