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
