// Package harness runs real Caddy processes with the access_auth plugin for
// end-to-end measurements: it builds bin/caddy's main package once, starts
// Caddy on free loopback ports with a Caddyfile, sets up keys through the
// admin API and reads the process's CPU time and memory from /proc.
package harness

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
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

// CaddyBinary builds ./cmd/caddy of this module once per process and
// returns its path. moduleDir is the module root (where go.mod is).
func CaddyBinary(t testing.TB, moduleDir string) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "bench-caddy-")
		if err != nil {
			buildErr = err
			return
		}
		binary = filepath.Join(dir, "caddy")
		cmd := exec.Command("go", "build", "-o", binary, "./cmd/caddy")
		cmd.Dir = moduleDir
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("building caddy: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binary
}

// RemoveBinary deletes what CaddyBinary built (call it from TestMain).
func RemoveBinary() {
	if binary != "" {
		os.RemoveAll(filepath.Dir(binary))
	}
}

// Caddy is one running Caddy process.
type Caddy struct {
	Admin string // http://127.0.0.1:<port> of the admin endpoint
	Site  string // http://127.0.0.1:<port> of the site
	cmd   *exec.Cmd
	out   bytes.Buffer // stdout and stderr; read only after the process ended
}

// Start runs binary with a Caddyfile made of the access_auth global option
// block (accessAuth, may be empty) and the site's directives (site). It
// waits until both the admin endpoint and the site answer; the process is
// killed when the test ends.
func Start(t testing.TB, binary, accessAuth, site string) *Caddy {
	t.Helper()
	dir := t.TempDir()
	adminPort, sitePort := FreePort(t), FreePort(t)
	c := &Caddy{Admin: fmt.Sprintf("http://127.0.0.1:%d", adminPort), Site: fmt.Sprintf("http://127.0.0.1:%d", sitePort)}
	caddyfile := fmt.Sprintf("{\n\tadmin 127.0.0.1:%d\n\tpersist_config off\n\tgrace_period 1s\n\taccess_auth {\n%s\n\t}\n}\n\nhttp://:%d {\n\tbind 127.0.0.1\n%s\n}\n",
		adminPort, accessAuth, sitePort, site)
	config := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(config, []byte(caddyfile), 0o600); err != nil {
		t.Fatal(err)
	}
	c.cmd = exec.Command(binary, "run", "--config", config, "--adapter", "caddyfile")
	c.cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir, "HOME="+dir)
	c.cmd.Stdout, c.cmd.Stderr = &c.out, &c.out
	c.cmd.SysProcAttr = procAttr()
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	for deadline := time.Now().Add(30 * time.Second); !c.answers(); {
		if time.Now().After(deadline) {
			c.Stop()
			t.Fatalf("caddy did not come up within 30s:\n%s", c.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return c
}

func (c *Caddy) answers() bool {
	for _, u := range []string{c.Admin + "/config/", c.Site + "/"} {
		resp, err := adminClient.Get(u)
		if err != nil {
			return false
		}
		resp.Body.Close()
	}
	return true
}

// Stop kills the process and waits for it; idempotent.
func (c *Caddy) Stop() {
	if c.cmd.ProcessState != nil {
		return
	}
	_ = c.cmd.Process.Kill()
	_ = c.cmd.Wait()
}

// PID is the process ID.
func (c *Caddy) PID() int { return c.cmd.Process.Pid }

var adminClient = &http.Client{Timeout: 10 * time.Second}

// AdminDo sends a JSON request to the admin endpoint and decodes a JSON
// answer into out (when not nil); a status other than 2xx is an error.
func (c *Caddy) AdminDo(method, path string, body, out any) error {
	var reader io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return err
		}
		reader = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, c.Admin+path, reader)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := adminClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: status %d: %s", method, path, resp.StatusCode, raw)
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

// Key is an access key as the admin API answers its creation.
type Key struct {
	ID        string `json:"id"`
	APIKey    string `json:"api_key"`
	APISecret string `json:"api_secret"`
}

// AuthorizedKey creates group (when missing), a key and an authorization
// binding the key to every environment of group.
func (c *Caddy) AuthorizedKey(t testing.TB, name, group string) Key {
	t.Helper()
	if err := c.AdminDo(http.MethodPost, "/access-auth/groups", map[string]string{"name": group}, nil); err != nil && !strings.Contains(err.Error(), "409") {
		t.Fatal(err)
	}
	var k Key
	if err := c.AdminDo(http.MethodPost, "/access-auth/keys", map[string]string{"name": name}, &k); err != nil {
		t.Fatal(err)
	}
	if err := c.AdminDo(http.MethodPost, "/access-auth/authorizations", map[string]any{
		"access_key_id": k.ID, "bindings": []map[string]string{{"group": group, "environment": "*"}},
	}, nil); err != nil {
		t.Fatal(err)
	}
	return k
}

// CPUTime is the CPU time (user and system) the process has used, to the
// clock tick (10 ms).
func (c *Caddy) CPUTime(t testing.TB) time.Duration {
	t.Helper()
	return ProcessCPUTime(t, c.PID())
}

// ProcessCPUTime is the CPU time (user and system) process pid has used, to
// the clock tick (10 ms).
func ProcessCPUTime(t testing.TB, pid int) time.Duration {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatalf("CPU time needs Linux's /proc: %v", err)
	}
	// The command name in parentheses may hold spaces: fields count from
	// after its closing parenthesis; utime and stime are fields 14 and 15.
	fields := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+1:]))
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("reading /proc/%d/stat: %q", pid, raw)
	}
	const ticksPerSecond = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / ticksPerSecond
}

// RSS is the process's resident memory in bytes.
func (c *Caddy) RSS(t testing.TB) int64 {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.PID()))
	if err != nil {
		t.Fatalf("RSS needs Linux's /proc: %v", err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("VmRSS %q", rest)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc/<pid>/status")
	return 0
}

// FreePort returns a TCP port free on loopback at the time of the call.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// ModuleDir is the module root, found from the caller's source file.
func ModuleDir(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}
