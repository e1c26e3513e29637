package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accessauth/caddy-access-auth/signature"
	"github.com/accessauth/caddy-access-auth/store"
)

// caddyBinary is built once by TestMain from ../cmd/caddy.
var caddyBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "e2e-caddy-")
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

// httpClient talks to the nodes. Enough idle connections per host stay
// open that every request, also under the benchmark's load, finds a warm
// one.
var httpClient = &http.Client{
	Timeout:   10 * time.Second,
	Transport: &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: time.Minute},
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// newMasterKey returns a fresh base64 master key for a Redis store.
func newMasterKey(t testing.TB) string {
	t.Helper()
	k, err := store.GenerateMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	return store.EncodeMasterKey(k)
}

// redisOptions is the access_auth global option block for a store on
// the given Redis URLs.
func redisOptions(masterKey string, urls ...string) string {
	return "store redis " + strings.Join(urls, " ") + "\nmaster_key " + masterKey
}

// logBuffer collects a process's output; the process writes while the
// test reads.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// node is one running Caddy process with its admin endpoint and one site
// on free loopback ports. The site answers any Host, so one signed request
// can be sent to several nodes.
type node struct {
	t         testing.TB
	name      string
	admin     string // http://127.0.0.1:port
	site      string // http://127.0.0.1:port
	adminPort int
	sitePort  int
	dir       string
	cmd       *exec.Cmd
	logs      *logBuffer
}

// startNode runs Caddy with accessAuth as the body of the access_auth
// global option and routes as the body of the one site.
func startNode(t testing.TB, name, accessAuth, routes string) *node {
	t.Helper()
	n := &node{t: t, name: name, dir: t.TempDir(), adminPort: freePort(t), sitePort: freePort(t), logs: &logBuffer{}}
	n.admin = fmt.Sprintf("http://127.0.0.1:%d", n.adminPort)
	n.site = fmt.Sprintf("http://127.0.0.1:%d", n.sitePort)
	config := filepath.Join(n.dir, "Caddyfile")
	if err := os.WriteFile(config, []byte(n.caddyfile(accessAuth, routes)), 0o600); err != nil {
		t.Fatal(err)
	}
	n.cmd = exec.Command(caddyBinary, "run", "--config", config, "--adapter", "caddyfile")
	n.cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+n.dir, "XDG_CONFIG_HOME="+n.dir, "HOME="+n.dir)
	n.cmd.Stdout, n.cmd.Stderr = n.logs, n.logs
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		n.stop()
		if t.Failed() {
			t.Logf("caddy %s output (tail):\n%s", n.name, tail(n.logs.String(), 6000))
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for !n.serving() {
		if time.Now().After(deadline) {
			t.Fatalf("caddy %s did not come up:\n%s", name, n.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return n
}

func (n *node) caddyfile(accessAuth, routes string) string {
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
func (n *node) serving() bool {
	for _, u := range []string{n.admin + "/config/", n.site + "/"} {
		resp, err := httpClient.Get(u)
		if err != nil {
			return false
		}
		resp.Body.Close()
	}
	return true
}

// reload loads a new Caddyfile through the admin endpoint's /load, as
// `caddy reload` does.
func (n *node) reload(accessAuth, routes string) {
	n.t.Helper()
	req, err := http.NewRequest(http.MethodPost, n.admin+"/load", strings.NewReader(n.caddyfile(accessAuth, routes)))
	if err != nil {
		n.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "text/caddyfile")
	resp, err := httpClient.Do(req)
	if err != nil {
		n.t.Fatalf("reload %s: %v", n.name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		n.t.Fatalf("reload %s: status %d: %s", n.name, resp.StatusCode, body)
	}
	// The old config's server closes its connections as it stops.
	httpClient.CloseIdleConnections()
}

// stop kills the process; idempotent.
func (n *node) stop() {
	if n.cmd.ProcessState != nil {
		return
	}
	_ = n.cmd.Process.Kill()
	_ = n.cmd.Wait()
}

func tail(s string, max int) string {
	if len(s) > max {
		return s[len(s)-max:]
	}
	return s
}

// request sends an admin API request and returns the status and body.
func (n *node) request(method, path string, body any) (int, []byte) {
	n.t.Helper()
	var reader io.Reader
	if body != nil {
		encoded, err := json.Marshal(body)
		if err != nil {
			n.t.Fatal(err)
		}
		reader = bytes.NewReader(encoded)
	}
	req, err := http.NewRequest(method, n.admin+path, reader)
	if err != nil {
		n.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := httpClient.Do(req)
	if err != nil {
		n.t.Fatalf("%s %s on %s: %v", method, path, n.name, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		n.t.Fatal(err)
	}
	return resp.StatusCode, raw
}

// adminJSON calls the admin API and decodes the answer into out (may be
// nil), failing the test unless the status is want.
func (n *node) adminJSON(method, path string, body any, want int, out any) {
	n.t.Helper()
	status, raw := n.request(method, path, body)
	if status != want {
		n.t.Fatalf("%s %s on %s: status %d, want %d: %s", method, path, n.name, status, want, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			n.t.Fatalf("%s %s on %s: %v: %s", method, path, n.name, err, raw)
		}
	}
}

// credentials are what the admin API answers when a key is created.
type credentials struct {
	ID        string `json:"id"`
	APIKey    string `json:"api_key"`
	APISecret string `json:"api_secret"`
}

// createKey creates a generated key.
func (n *node) createKey(name string) credentials {
	n.t.Helper()
	var c credentials
	n.adminJSON(http.MethodPost, "/access-auth/keys", map[string]any{"name": name}, http.StatusCreated, &c)
	if c.APIKey == "" || c.APISecret == "" {
		n.t.Fatalf("created key without api_key or api_secret: %+v", c)
	}
	return c
}

// importKey imports a key with the given APIKey and secret.
func (n *node) importKey(name, apiKey, secret string) credentials {
	n.t.Helper()
	var c credentials
	n.adminJSON(http.MethodPost, "/access-auth/keys", map[string]any{
		"name": name, "kind": "imported", "api_key": apiKey, "api_secret": secret,
	}, http.StatusCreated, &c)
	c.APISecret = secret
	return c
}

// authorize creates the key's authorization bound to groups (every
// environment) and returns its ID.
func (n *node) authorize(keyID string, groups ...string) string {
	n.t.Helper()
	bindings := []map[string]string{}
	for _, g := range groups {
		bindings = append(bindings, map[string]string{"group": g})
	}
	var a struct {
		ID string `json:"id"`
	}
	n.adminJSON(http.MethodPost, "/access-auth/authorizations", map[string]any{
		"access_key_id": keyID, "bindings": bindings,
	}, http.StatusCreated, &a)
	return a.ID
}

// waitGroup waits until a route of the node has registered group with the
// store (asynchronously after start).
func (n *node) waitGroup(group string) {
	n.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if status, _ := n.request(http.MethodGet, "/access-auth/groups/"+group, nil); status == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("group %s was not registered by the routes of %s", group, n.name)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// answer is a site's answer to a signed request: the status and, for a
// refusal, the reason of its JSON envelope.
type answer struct {
	status int
	reason string
	body   string
}

func (a answer) String() string {
	if a.reason != "" {
		return fmt.Sprintf("%d %s", a.status, a.reason)
	}
	return fmt.Sprintf("%d %q", a.status, tail(a.body, 200))
}

// signedRequest builds a GET of path on the node's site, signed with
// JDCLOUD2 and a fresh nonce unless opts say otherwise.
func (n *node) signedRequest(path string, c credentials, opts ...signature.Option) *http.Request {
	n.t.Helper()
	req, err := http.NewRequest(http.MethodGet, n.site+path, nil)
	if err != nil {
		n.t.Fatal(err)
	}
	if err := signature.Sign(req, signature.JDCloud2, c.APIKey, c.APISecret, opts...); err != nil {
		n.t.Fatal(err)
	}
	return req
}

// call sends a freshly signed GET /x to the node's site.
func (n *node) call(c credentials) answer {
	n.t.Helper()
	return n.send(n.signedRequest("/x", c))
}

// send sends a request to a site and reads the answer.
func (n *node) send(req *http.Request) answer {
	n.t.Helper()
	a, err := sendRequest(req)
	if err != nil {
		n.t.Fatalf("%s %s on %s: %v", req.Method, req.URL, n.name, err)
	}
	return a
}

func sendRequest(req *http.Request) (answer, error) {
	resp, err := httpClient.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, err
	}
	a := answer{status: resp.StatusCode, body: string(raw)}
	if resp.StatusCode != http.StatusOK {
		var envelope struct {
			Error struct {
				Reason string `json:"reason"`
			} `json:"error"`
		}
		if json.Unmarshal(raw, &envelope) == nil {
			a.reason = envelope.Error.Reason
		}
	}
	return a, nil
}

// want fails the test unless the answer has the status and reason ("" for
// a pass).
func want(t testing.TB, step string, a answer, status int, reason string) {
	t.Helper()
	if a.status != status || a.reason != reason {
		t.Fatalf("%s: got %s, want %d %s", step, a, status, reason)
	}
}

// eventually polls check every 20ms until it returns nil, failing the test
// with its last error after timeout.
func eventually(t testing.TB, timeout time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// randomAPIKey returns an API key in the generated form (32 upper-case hex).
func randomAPIKey(t testing.TB) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return strings.ToUpper(hex.EncodeToString(b))
}

// ordersSite is the site every node serves: group orders, and the key's
// ID in the answer.
const ordersSite = `	access_auth orders
	respond "ok {http.auth.user.id}"`

// metric reads one sample from the node's /metrics: the line of name with
// exactly labels (e.g. `result="hit"`).
func (n *node) metric(name, labels string) float64 {
	n.t.Helper()
	resp, err := httpClient.Get(n.admin + "/metrics")
	if err != nil {
		n.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		n.t.Fatal(err)
	}
	prefix := name + "{" + labels + "} "
	for line := range strings.Lines(string(raw)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), prefix); ok {
			var f float64
			if _, err := fmt.Sscan(v, &f); err != nil {
				n.t.Fatalf("metric %s: %q: %v", prefix, v, err)
			}
			return f
		}
	}
	n.t.Fatalf("metric %s{%s} not on %s's /metrics", name, labels, n.name)
	return 0
}

// cacheLookups reads the node's credential cache counter of one result.
func (n *node) cacheLookups(result string) float64 {
	n.t.Helper()
	return n.metric("caddy_access_auth_cache_lookups_total", `result="`+result+`"`)
}

// warm calls the node with c until a call is answered from its cache
// (the cache admits entries asynchronously, so the first load may not be
// there yet for the next request).
func (n *node) warm(c credentials) {
	n.t.Helper()
	eventually(n.t, 5*time.Second, "key "+c.ID+" cached at "+n.name, func() error {
		hits := n.cacheLookups("hit")
		if got := n.call(c); got.status != http.StatusOK {
			return fmt.Errorf("answer %s", got)
		}
		if n.cacheLookups("hit") == hits {
			return fmt.Errorf("answered by a load, not the cache")
		}
		return nil
	})
}

func jsonInto(raw []byte, out any) error {
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("decoding %s: %w", tail(string(raw), 200), err)
	}
	return nil
}
