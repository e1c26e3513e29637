package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"

	"github.com/accessauth/caddy-access-auth/enforcement"
	"github.com/accessauth/caddy-access-auth/store"
)

// provisionApp makes an access_auth app from its JSON as Caddy would.
func provisionApp(t *testing.T, raw string) *App {
	t.Helper()
	a := new(App)
	if err := json.Unmarshal([]byte(raw), a); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	if err := a.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Validate(); err != nil {
		t.Fatal(err)
	}
	return a
}

// TestAppLifecycle follows the shared state through the order Caddy uses
// on a reload: the new config starts before the old one stops.
func TestAppLifecycle(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	cfg := `{"store":{"type":"file","path":"` + path + `"}}`

	old := provisionApp(t, cfg)
	// The http app may start (and serve) before this app starts.
	early, err := old.acquire()
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Start(); err != nil {
		t.Fatal(err)
	}
	if st, _ := old.acquire(); st != early {
		t.Fatal("Start acquired a second state")
	}
	if current.Load() != old {
		t.Fatal("the running app is not current")
	}

	reloaded := provisionApp(t, cfg)
	if err := reloaded.Start(); err != nil {
		t.Fatal(err)
	}
	if st, _ := reloaded.acquire(); st != early {
		t.Fatal("an unchanged config did not keep the state")
	}
	old.Stop()
	old.Cleanup() // Caddy cancels the old context after Stop: no double release
	if _, err := old.acquire(); !errors.Is(err, errAppStopped) {
		t.Fatalf("a stopped app handed out state: %v", err)
	}
	if current.Load() != reloaded {
		t.Fatal("stopping the old app unset the running one")
	}
	// The state is still open for the new config.
	if _, _, err := early.store.ListGroups(context.Background(), store.Page{Limit: 1}); err != nil {
		t.Fatalf("state closed while in use: %v", err)
	}

	// Other cache settings: a new state over the same open backend.
	changed := provisionApp(t, `{"store":{"type":"file","path":"`+path+`"},"cache":{"ttl":"1m"}}`)
	if err := changed.Start(); err != nil {
		t.Fatal(err)
	}
	st, _ := changed.acquire()
	if st == early || st.backend != early.backend {
		t.Fatal("a changed cache config must get a new state over the same backend")
	}
	reloaded.Stop()
	if _, _, err := st.store.ListGroups(context.Background(), store.Page{Limit: 1}); err != nil {
		t.Fatalf("backend closed while a state uses it: %v", err)
	}
	changed.Stop()
	if _, _, err := st.store.ListGroups(context.Background(), store.Page{Limit: 1}); err == nil {
		t.Fatal("the backend stayed open after the last config stopped")
	}
	if current.Load() != nil {
		t.Fatal("no app runs, yet one is current")
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(path), "master.key")); err != nil {
		t.Fatalf("no master.key beside the store: %v", err)
	}
}

// TestExampleCaddyfile: the shipped example adapts.
func TestExampleCaddyfile(t *testing.T) {
	raw, err := os.ReadFile("../Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := caddyconfig.GetAdapter("caddyfile").Adapt(raw, map[string]any{"filename": "Caddyfile.example"}); err != nil {
		t.Fatalf("Caddyfile.example: %v", err)
	}
}

// local_nonces sizes the node's nonce tables (a default when unset) and is
// part of the state's identity: a config that changes it gets a new table.
func TestAppLocalNonces(t *testing.T) {
	dir := t.TempDir()
	cfg := func(extra string) string {
		return `{"store":{"type":"file","path":"` + filepath.Join(dir, "store.db") + `"}` + extra + `}`
	}
	def, sized := provisionApp(t, cfg("")), provisionApp(t, cfg(`,"local_nonces":1000`))
	if def.LocalNonces != DefaultLocalNonces || sized.LocalNonces != 1000 {
		t.Fatalf("local_nonces %d and %d, want %d and 1000", def.LocalNonces, sized.LocalNonces, DefaultLocalNonces)
	}
	if def.stateKey == sized.stateKey {
		t.Fatal("configs of different table sizes share a state")
	}
	bad := new(App)
	if err := json.Unmarshal([]byte(cfg(`,"local_nonces":-1`)), bad); err != nil {
		t.Fatal(err)
	}
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "local_nonces") {
		t.Fatalf("Validate of a negative local_nonces: %v", err)
	}
}

// body_buffer sizes the node's budget for bodies read before their
// signature (defaults when unset); Validate names a bad value's directive.
func TestAppBodyBuffer(t *testing.T) {
	dir := t.TempDir()
	cfg := func(extra string) string {
		return `{"store":{"type":"file","path":"` + filepath.Join(dir, "store.db") + `"}` + extra + `}`
	}
	def, sized := provisionApp(t, cfg("")), provisionApp(t, cfg(`,"body_buffer":{"max_bodies":8}`))
	if *def.BodyBuffer != (BodyBufferConfig{MaxBytes: enforcement.DefaultBodyBufferBytes, MaxBodies: enforcement.DefaultBodyBufferBodies}) ||
		*sized.BodyBuffer != (BodyBufferConfig{MaxBytes: enforcement.DefaultBodyBufferBytes, MaxBodies: 8}) {
		t.Fatalf("body_buffer %+v and %+v", *def.BodyBuffer, *sized.BodyBuffer)
	}
	for _, bad := range []string{`{"max_bytes":-1}`, `{"max_bodies":-1}`} {
		a := new(App)
		if err := json.Unmarshal([]byte(cfg(`,"body_buffer":`+bad)), a); err != nil {
			t.Fatal(err)
		}
		if err := a.Validate(); err == nil || !strings.Contains(err.Error(), "body_buffer: max_") {
			t.Fatalf("Validate of body_buffer %s: %v", bad, err)
		}
	}
}

// A rule that both the Caddyfile adapter and the JSON check enforce is
// worded once: a user reads the same error whichever way they configure.
func TestStoreRuleWordedOnce(t *testing.T) {
	for _, tc := range []struct {
		name, caddyfile, json, want string
	}{
		{"no server", "store redis", `{"type":"redis"}`, errRedisNoServer.Error()},
		{"urls and block", "store redis redis://a {\naddrs a:1\n}", `{"type":"redis","urls":["redis://a"],"addrs":["a:1"]}`, errRedisURLsAndBlock.Error()},
		{"negative db", "store redis {\naddrs a:1\ndb -1\n}", `{"type":"redis","addrs":["a:1"],"db":-1}`, "store redis: db: expected a database number >= 0, got"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte("{\n\taccess_auth {\n"+tc.caddyfile+"\n}\n}\n"), nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Caddyfile: %v, want it to contain %q", err, tc.want)
			}
			a := new(App)
			if err := json.Unmarshal([]byte(`{"master_key":["k"],"store":`+tc.json+`}`), a); err != nil {
				t.Fatal(err)
			}
			if err := a.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("JSON: %v, want it to contain %q", err, tc.want)
			}
		})
	}
}
