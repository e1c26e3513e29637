package gatewaytest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/accessauth/caddy-access-auth/enforcement"
	"github.com/accessauth/caddy-access-auth/signature"
	"github.com/accessauth/caddy-access-auth/store"
)

// Request sends an admin API request with body encoded as JSON (none when
// nil) and returns the status and body.
func (n *Node) Request(method, path string, body any) (int, []byte) {
	n.t.Helper()
	var reader io.Reader
	if body != nil {
		encoded, err := json.Marshal(body)
		if err != nil {
			n.t.Fatal(err)
		}
		reader = bytes.NewReader(encoded)
	}
	req, err := http.NewRequest(method, n.Admin+path, reader)
	if err != nil {
		n.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	return n.do(req)
}

// do sends req and reads the answer, failing the test when it gets none.
func (n *Node) do(req *http.Request) (int, []byte) {
	n.t.Helper()
	resp, err := Client.Do(req)
	if err != nil {
		n.t.Fatalf("%s %s on %s: %v", req.Method, req.URL.Path, n.Name, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		n.t.Fatal(err)
	}
	return resp.StatusCode, raw
}

// AdminJSON calls the admin API and decodes the answer into out (may be
// nil), failing the test unless the status is want.
func (n *Node) AdminJSON(method, path string, body any, want int, out any) {
	n.t.Helper()
	status, raw := n.Request(method, path, body)
	if status != want {
		n.t.Fatalf("%s %s on %s: status %d, want %d: %s", method, path, n.Name, status, want, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			n.t.Fatalf("%s %s on %s: %v: %s", method, path, n.Name, err, raw)
		}
	}
}

// Credentials are what the admin API answers when a key is created.
type Credentials struct {
	ID        string `json:"id"`
	APIKey    string `json:"api_key"`
	APISecret string `json:"api_secret"`
}

// CreateKey creates a generated key.
func (n *Node) CreateKey(name string) Credentials {
	n.t.Helper()
	var c Credentials
	n.AdminJSON(http.MethodPost, "/access-auth/keys", map[string]any{"name": name}, http.StatusCreated, &c)
	if c.APIKey == "" || c.APISecret == "" {
		n.t.Fatalf("created key without api_key or api_secret: %+v", c)
	}
	return c
}

// ImportKey imports a key with the given APIKey and secret.
func (n *Node) ImportKey(name, apiKey, secret string) Credentials {
	n.t.Helper()
	var c Credentials
	n.AdminJSON(http.MethodPost, "/access-auth/keys", map[string]any{
		"name": name, "kind": "imported", "api_key": apiKey, "api_secret": secret,
	}, http.StatusCreated, &c)
	c.APISecret = secret
	return c
}

// Authorize creates the key's authorization bound to groups (every
// environment) and returns its ID.
func (n *Node) Authorize(keyID string, groups ...string) string {
	n.t.Helper()
	bindings := []map[string]string{}
	for _, g := range groups {
		bindings = append(bindings, map[string]string{"group": g})
	}
	var a struct {
		ID string `json:"id"`
	}
	n.AdminJSON(http.MethodPost, "/access-auth/authorizations", map[string]any{
		"access_key_id": keyID, "bindings": bindings,
	}, http.StatusCreated, &a)
	return a.ID
}

// EnsureGroup creates group unless it exists (a route may have registered
// it already, or may register it any moment).
func (n *Node) EnsureGroup(group string) {
	n.t.Helper()
	status, raw := n.Request(http.MethodPost, "/access-auth/groups", map[string]string{"name": group})
	if status != http.StatusCreated && status != http.StatusConflict {
		n.t.Fatalf("creating group %s on %s: status %d: %s", group, n.Name, status, raw)
	}
}

// AuthorizedKey creates group (when missing), a key and an authorization
// binding the key to every environment of group.
func (n *Node) AuthorizedKey(name, group string) Credentials {
	n.t.Helper()
	n.EnsureGroup(group)
	c := n.CreateKey(name)
	n.Authorize(c.ID, group)
	return c
}

// WaitGroup waits until a route of the node has registered group with the
// store (asynchronously after start).
func (n *Node) WaitGroup(group string) {
	n.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if status, _ := n.Request(http.MethodGet, "/access-auth/groups/"+group, nil); status == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("group %s was not registered by the routes of %s", group, n.Name)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// NewMasterKey returns a fresh base64 master key for a Redis store.
func NewMasterKey(t testing.TB) string {
	t.Helper()
	k, err := store.GenerateMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	return store.EncodeMasterKey(k)
}

// RedisOptions is the access_auth global option block for a store on the
// given Redis URLs.
func RedisOptions(masterKey string, urls ...string) string {
	return "store redis " + strings.Join(urls, " ") + "\nmaster_key " + masterKey
}

// RandomAPIKey returns an API key in the generated form (32 upper-case
// hex).
func RandomAPIKey(t testing.TB) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return strings.ToUpper(hex.EncodeToString(b))
}

// DecodeJSON decodes raw into out; its error quotes the end of raw.
func DecodeJSON(raw []byte, out any) error {
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("decoding %s: %w", Tail(string(raw), 200), err)
	}
	return nil
}

// Answer is a site's answer to a request: the status and, for a refusal,
// the reason of its JSON error body.
type Answer struct {
	Status int
	Reason string
	Body   string
}

func (a Answer) String() string {
	if a.Reason != "" {
		return fmt.Sprintf("%d %s", a.Status, a.Reason)
	}
	return fmt.Sprintf("%d %q", a.Status, Tail(a.Body, 200))
}

// SignedRequest builds a GET of path on the node's site, signed with
// JDCLOUD2 and a fresh nonce unless opts say otherwise.
func (n *Node) SignedRequest(path string, c Credentials, opts ...signature.Option) *http.Request {
	n.t.Helper()
	req, err := http.NewRequest(http.MethodGet, n.Site+path, nil)
	if err != nil {
		n.t.Fatal(err)
	}
	if err := signature.Sign(req, signature.JDCloud2, c.APIKey, c.APISecret, opts...); err != nil {
		n.t.Fatal(err)
	}
	return req
}

// Call sends a freshly signed GET /x to the node's site.
func (n *Node) Call(c Credentials) Answer {
	n.t.Helper()
	return n.Send(n.SignedRequest("/x", c))
}

// Send sends a request to a site and reads the answer, failing the test
// when it gets none.
func (n *Node) Send(req *http.Request) Answer {
	n.t.Helper()
	a, err := SendRequest(req)
	if err != nil {
		n.t.Fatalf("%s %s on %s: %v", req.Method, req.URL, n.Name, err)
	}
	return a
}

// SendRequest sends a request with Client and reads the answer.
func SendRequest(req *http.Request) (Answer, error) {
	resp, err := Client.Do(req)
	if err != nil {
		return Answer{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return Answer{}, err
	}
	a := Answer{Status: resp.StatusCode, Body: string(raw)}
	if resp.StatusCode != http.StatusOK {
		var e enforcement.DenialBody
		if json.Unmarshal(raw, &e) == nil {
			a.Reason = e.Error.Reason
		}
	}
	return a, nil
}

// WantAnswer fails the test unless the answer has the status and reason
// ("" for a pass).
func WantAnswer(t testing.TB, step string, a Answer, status int, reason string) {
	t.Helper()
	if a.Status != status || a.Reason != reason {
		t.Fatalf("%s: got %s, want %d %s", step, a, status, reason)
	}
}

// Eventually polls check every 20ms until it returns nil, failing the test
// with its last error after timeout.
func Eventually(t testing.TB, timeout time.Duration, what string, check func() error) {
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

// Metric reads one sample from the node's /metrics: the line of name with
// exactly labels (e.g. `result="hit"`; "" for a metric without labels).
func (n *Node) Metric(name, labels string) float64 {
	n.t.Helper()
	status, raw := n.Request(http.MethodGet, "/metrics", nil)
	if status != http.StatusOK {
		n.t.Fatalf("GET /metrics on %s: status %d", n.Name, status)
	}
	prefix := name + " "
	if labels != "" {
		prefix = name + "{" + labels + "} "
	}
	for line := range strings.Lines(string(raw)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), prefix); ok {
			var f float64
			if _, err := fmt.Sscan(v, &f); err != nil {
				n.t.Fatalf("metric %s: %q: %v", prefix, v, err)
			}
			return f
		}
	}
	n.t.Fatalf("metric %s{%s} not on %s's /metrics", name, labels, n.Name)
	return 0
}

// CacheLookups reads the node's credential cache counter of one result
// (hit, miss, negative_hit, stale, …).
func (n *Node) CacheLookups(result string) float64 {
	n.t.Helper()
	return n.Metric("caddy_access_auth_cache_lookups_total", `result="`+result+`"`)
}

// Warm calls the node with c until a call is answered from its cache (the
// cache admits entries asynchronously, so the first load may not be there
// yet for the next request).
func (n *Node) Warm(c Credentials) {
	n.t.Helper()
	Eventually(n.t, 5*time.Second, "key "+c.ID+" cached at "+n.Name, func() error {
		hits := n.CacheLookups("hit")
		if got := n.Call(c); got.Status != http.StatusOK {
			return fmt.Errorf("answer %s", got)
		}
		if n.CacheLookups("hit") == hits {
			return fmt.Errorf("answered by a load, not the cache")
		}
		return nil
	})
}
