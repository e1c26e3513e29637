// Package gatewaytest runs the real Caddy binary built with the plugin for
// tests and benchmarks that exercise it as it is deployed: it builds
// ./cmd/caddy once per test binary, starts Caddy nodes on free loopback
// ports with a Caddyfile of access_auth global options and site routes,
// talks to their admin API (keys, authorizations, groups, metrics), sends
// requests signed with this module's signature package and reads a node's
// CPU time and resident memory from /proc.
//
// It lies under internal/ of the repository root, so the interop module
// (which replaces this module with ../) may import it too.
package gatewaytest

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/accessauth/caddy-access-auth/internal/testport"
)

// modulePath is the import path of the module whose ./cmd/caddy is built.
const modulePath = "github.com/accessauth/caddy-access-auth"

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

// Binary builds ./cmd/caddy of this module once per test binary and
// returns its path. Main removes it when the tests end.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() { binary, buildErr = build() })
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binary
}

// build compiles ./cmd/caddy into a temporary directory. The module's
// directory comes from the go command, so a test of a module that replaces
// this one (interop) builds the replacement's sources.
func build() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", modulePath).Output()
	if err != nil {
		return "", fmt.Errorf("locating %s: %v %s", modulePath, err, exitStderr(err))
	}
	dir, err := os.MkdirTemp("", "gatewaytest-caddy-")
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "caddy")
	cmd := exec.Command("go", "build", "-o", path, "./cmd/caddy")
	cmd.Dir = strings.TrimSpace(string(out))
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("building caddy: %v\n%s", err, out)
	}
	return path, nil
}

func exitStderr(err error) string {
	if e, ok := err.(*exec.ExitError); ok {
		return string(e.Stderr)
	}
	return ""
}

// Main runs the tests and removes the binary Binary built; call it from
// TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if binary != "" {
		os.RemoveAll(filepath.Dir(binary))
	}
	os.Exit(code)
}

// Client talks to the nodes. Enough idle connections per host stay open
// that every request, also under a benchmark's load, finds a warm one.
var Client = &http.Client{
	Timeout:   10 * time.Second,
	Transport: &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: time.Minute},
}

// startTimeout bounds how long a node may take to serve; a Redis that
// never answers delays the start by its credential check's timeout.
const startTimeout = 30 * time.Second

// Node is one running Caddy process with its admin endpoint and one site on
// free loopback ports. The site answers any Host, so one signed request can
// be sent to several nodes.
type Node struct {
	Name  string // names the node in failure messages
	Admin string // http://127.0.0.1:<port> of the admin endpoint
	Site  string // http://127.0.0.1:<port> of the site

	t         testing.TB
	dir       string // the configuration and data directory
	adminPort int
	sitePort  int
	cmd       *exec.Cmd
	logs      *LogBuffer
}

// Start runs Caddy with accessAuth as the body of the access_auth global
// option (empty: the embedded store in a temporary data directory) and
// routes as the body of the one site. It returns once both the admin
// endpoint and the site answer. The node is stopped when the test ends,
// and when the test failed its output's tail is logged.
func Start(t testing.TB, name, accessAuth, routes string) *Node {
	t.Helper()
	n := launch(t, name, accessAuth, routes)
	n.waitServing()
	return n
}

// StartFails runs Caddy as Start does but expects it to refuse the
// configuration: to exit with an error within the start timeout. It
// returns the process's output.
func StartFails(t testing.TB, name, accessAuth, routes string) string {
	t.Helper()
	n := launch(t, name, accessAuth, routes)
	exited := make(chan error, 1)
	go func() { exited <- n.cmd.Wait() }()
	select {
	case err := <-exited:
		if err == nil {
			t.Fatalf("caddy %s exited without an error:\n%s", name, n.Logs())
		}
	case <-time.After(startTimeout):
		_ = n.cmd.Process.Kill()
		<-exited
		t.Fatalf("caddy %s still runs %v after its start, want it to refuse the configuration:\n%s", name, startTimeout, n.Logs())
	}
	return n.Logs()
}

// launch writes the node's Caddyfile and starts the process.
func launch(t testing.TB, name, accessAuth, routes string) *Node {
	t.Helper()
	n := &Node{Name: name, t: t, dir: t.TempDir(), adminPort: FreePort(t), sitePort: FreePort(t), logs: &LogBuffer{}}
	n.Admin = fmt.Sprintf("http://127.0.0.1:%d", n.adminPort)
	n.Site = fmt.Sprintf("http://127.0.0.1:%d", n.sitePort)
	if err := os.WriteFile(n.configPath(), []byte(n.caddyfile(accessAuth, routes)), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		n.Stop()
		if t.Failed() {
			t.Logf("caddy %s output (tail):\n%s", n.Name, Tail(n.Logs(), 6000))
		}
	})
	n.start()
	return n
}

// Restart runs the node's process again after Stop or Terminate, with the
// same configuration, data directory and ports, and returns once it serves.
func (n *Node) Restart() {
	n.t.Helper()
	n.start()
	n.waitServing()
}

func (n *Node) configPath() string { return filepath.Join(n.dir, "Caddyfile") }

// start starts the process.
func (n *Node) start() {
	n.t.Helper()
	n.cmd = command(n.t, n.dir, "run", "--config", n.configPath(), "--adapter", "caddyfile")
	n.cmd.Stdout, n.cmd.Stderr = n.logs, n.logs
	n.cmd.SysProcAttr = procAttr()
	if err := n.cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
}

// waitServing returns once the node serves, and fails the test when it
// does not within the start timeout.
func (n *Node) waitServing() {
	n.t.Helper()
	for deadline := time.Now().Add(startTimeout); !n.serving(); {
		if time.Now().After(deadline) {
			n.Stop()
			n.t.Fatalf("caddy %s did not come up within %v:\n%s", n.Name, startTimeout, n.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (n *Node) caddyfile(accessAuth, routes string) string {
	return fmt.Sprintf(`{
	admin 127.0.0.1:%d
	persist_config off
	grace_period 1s
	access_auth {
%s
	}
}

http://:%d {
	bind 127.0.0.1
%s
}
`, n.adminPort, accessAuth, n.sitePort, routes)
}

// serving reports whether both the admin endpoint and the site answer.
func (n *Node) serving() bool {
	for _, u := range []string{n.Admin + "/config/", n.Site + "/"} {
		resp, err := Client.Get(u)
		if err != nil {
			return false
		}
		resp.Body.Close()
	}
	return true
}

// Reload loads a new Caddyfile through the admin endpoint's /load, as
// `caddy reload` does; the ports stay.
func (n *Node) Reload(accessAuth, routes string) {
	n.t.Helper()
	req, err := http.NewRequest(http.MethodPost, n.Admin+"/load", strings.NewReader(n.caddyfile(accessAuth, routes)))
	if err != nil {
		n.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "text/caddyfile")
	status, body := n.do(req)
	if status != http.StatusOK {
		n.t.Fatalf("reload %s: status %d: %s", n.Name, status, body)
	}
	// The old config's server closes its connections as it stops, and a
	// connection opened at the switch may still be taken and closed by it:
	// return once the site answers on a fresh connection.
	Client.CloseIdleConnections()
	for deadline := time.Now().Add(startTimeout); !n.serving(); {
		if time.Now().After(deadline) {
			n.t.Fatalf("caddy %s did not serve within %v of a reload", n.Name, startTimeout)
		}
		Client.CloseIdleConnections()
		time.Sleep(10 * time.Millisecond)
	}
}

// Stop kills the process (SIGKILL, as a crash would end it) and waits for
// it; idempotent.
func (n *Node) Stop() {
	if n.cmd.ProcessState != nil {
		return
	}
	_ = n.cmd.Process.Kill()
	_ = n.cmd.Wait()
}

// stopTimeout bounds how long a node may take to exit cleanly.
const stopTimeout = 30 * time.Second

// Terminate stops the process cleanly, as a service manager or `caddy
// stop` does: on SIGTERM Caddy stops its apps, then exits.
func (n *Node) Terminate() {
	n.t.Helper()
	if err := n.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		n.t.Fatalf("SIGTERM to caddy %s: %v", n.Name, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- n.cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			n.t.Fatalf("caddy %s exited on SIGTERM with %v", n.Name, err)
		}
	case <-time.After(stopTimeout):
		_ = n.cmd.Process.Kill()
		<-exited
		n.t.Fatalf("caddy %s did not exit within %v of SIGTERM", n.Name, stopTimeout)
	}
}

// PID is the process ID.
func (n *Node) PID() int { return n.cmd.Process.Pid }

// Logs is what the process has written to stdout and stderr so far.
func (n *Node) Logs() string { return n.logs.String() }

// LogBuffer collects a process's output (an exec.Cmd's Stdout or Stderr);
// the process writes while the test reads.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Tail is the last max bytes of s.
func Tail(s string, max int) string {
	if len(s) > max {
		return s[len(s)-max:]
	}
	return s
}

// FreePort returns a loopback port reserved for t (see testport.Free).
func FreePort(t testing.TB) int {
	t.Helper()
	return testport.Free(t)
}

// Validate runs `caddy validate` on a Caddyfile with accessAuth as the body
// of the access_auth global option and routes as the body of one site, in
// a temporary data directory, with env added to the environment. It
// returns the command's output and whether it accepted the configuration.
func Validate(t testing.TB, accessAuth, routes string, env ...string) (string, bool) {
	t.Helper()
	dir := t.TempDir()
	n := &Node{adminPort: FreePort(t), sitePort: FreePort(t)}
	config := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(config, []byte(n.caddyfile(accessAuth, routes)), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := command(t, dir, "validate", "--config", config, "--adapter", "caddyfile")
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	return string(out), err == nil
}

// Command returns the Caddy binary's command with args, with its data and
// configuration in a temporary directory; add to its Env to set variables.
func Command(t testing.TB, args ...string) *exec.Cmd {
	t.Helper()
	return command(t, t.TempDir(), args...)
}

func command(t testing.TB, dir string, args ...string) *exec.Cmd {
	cmd := exec.Command(Binary(t), args...)
	cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir, "HOME="+dir)
	return cmd
}
