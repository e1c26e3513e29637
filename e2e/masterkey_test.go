package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/accessauth/caddy-access-auth/internal/gatewaytest"
	"github.com/accessauth/caddy-access-auth/internal/redistest"
)

// TestLostMasterKeyFileRefusesToStart: a file store whose master.key was
// deleted or replaced holds secrets no key opens. Caddy must refuse to
// start, saying which file to restore, rather than make a new key and
// answer every access key 503.
func TestLostMasterKeyFileRefusesToStart(t *testing.T) {
	dir := t.TempDir()
	options := "store file " + filepath.Join(dir, "store.db")
	keyFile := filepath.Join(dir, "master.key")
	n := gatewaytest.Start(t, "first", options, ordersSite)
	n.WaitGroup("orders")
	key := n.AuthorizedKey("alice", "orders")
	gatewaytest.WantAnswer(t, "before", n.Call(key), http.StatusOK, "")
	n.Stop()
	saved, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name    string
		prepare func() error
		want    []string
	}{
		{"deleted", func() error { return os.Remove(keyFile) },
			[]string{keyFile, "is missing", "restore it from the backup", "1 under master key"}},
		{"replaced", func() error { return os.WriteFile(keyFile, []byte(gatewaytest.NewMasterKey(t)+"\n"), 0o600) },
			[]string{keyFile, "holds another key", "1 under master key"}},
	} {
		if err := tc.prepare(); err != nil {
			t.Fatal(err)
		}
		out := gatewaytest.StartFails(t, tc.name, options, ordersSite)
		for _, want := range tc.want {
			if !strings.Contains(out, want) {
				t.Errorf("master.key %s: the refusal does not say %q:\n%s", tc.name, want, gatewaytest.Tail(out, 3000))
			}
		}
		if tc.name == "deleted" {
			if _, err := os.Stat(keyFile); !os.IsNotExist(err) {
				t.Errorf("master.key deleted: a start wrote a new one (%v)", err)
			}
		}
		if err := os.WriteFile(keyFile, saved, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	restored := gatewaytest.Start(t, "restored", options, ordersSite)
	gatewaytest.WantAnswer(t, "after master.key was restored", restored.Call(key), http.StatusOK, "")
}

// TestRedisMasterKeyMismatch: a Redis node whose master keys open none of
// the stored secrets refuses to start; one that met such a secret at run
// time (it started before the secret was written) answers invalid_key,
// logs why at ERROR and counts it, and does not report the store down.
func TestRedisMasterKeyMismatch(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	url := "redis://" + srv.Addr
	right, wrong := gatewaytest.NewMasterKey(t), gatewaytest.NewMasterKey(t)
	early := gatewaytest.Start(t, "wrong key, started first", gatewaytest.RedisOptions(wrong, url), ordersSite)
	n := gatewaytest.Start(t, "right key", gatewaytest.RedisOptions(right, url), ordersSite)
	n.WaitGroup("orders")
	key := n.AuthorizedKey("alice", "orders")
	gatewaytest.WantAnswer(t, "node with the sealing key", n.Call(key), http.StatusOK, "")

	for range 2 {
		gatewaytest.WantAnswer(t, "node without the sealing key", early.Call(key), http.StatusUnauthorized, "invalid_key")
	}
	if got := early.Metric("caddy_access_auth_unsealable_secrets_total", ""); got != 1 {
		t.Errorf("unsealable_secrets_total = %v, want 1 (the second call hit the cache)", got)
	}
	if got := early.Metric("caddy_access_auth_store_up", ""); got != 1 {
		t.Errorf("store_up = %v, want 1: the store answers", got)
	}
	logs := early.Logs()
	if c := strings.Count(logs, "no configured master key opens the secret"); c != 1 || !strings.Contains(logs, "not configured") {
		t.Errorf("want one ERROR line naming the cause, got %d:\n%s", c, gatewaytest.Tail(logs, 3000))
	}

	out := gatewaytest.StartFails(t, "wrong key", gatewaytest.RedisOptions(wrong, url), ordersSite)
	for _, want := range []string{"1 under master key", "configure the master key that sealed them"} {
		if !strings.Contains(out, want) {
			t.Errorf("the refusal does not say %q:\n%s", want, gatewaytest.Tail(out, 3000))
		}
	}
	rotated := gatewaytest.Start(t, "rotated", gatewaytest.RedisOptions(wrong+" "+right, url), ordersSite)
	gatewaytest.WantAnswer(t, "node with the old key second", rotated.Call(key), http.StatusOK, "")
}

// TestUnreachableRedisSkipsTheMasterKeyCheck: a node whose Redis cannot be
// reached at start still starts (the check waits for no one) and says that
// it could not check its master keys.
func TestUnreachableRedisSkipsTheMasterKeyCheck(t *testing.T) {
	url := fmt.Sprintf("redis://127.0.0.1:%d", gatewaytest.FreePort(t))
	n := gatewaytest.Start(t, "redis down", gatewaytest.RedisOptions(gatewaytest.NewMasterKey(t), url), ordersSite)
	if !strings.Contains(n.Logs(), "could not check the master keys") {
		t.Errorf("no warning that the master keys went unchecked:\n%s", gatewaytest.Tail(n.Logs(), 3000))
	}
}
