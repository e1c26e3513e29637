package caddymodule

import (
	"bytes"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// runCLI runs `caddy access-auth <args>` against the test Caddy's admin
// endpoint and returns what it printed.
func runCLI(t *testing.T, args ...string) string {
	t.Helper()
	root := &cobra.Command{Use: "access-auth"}
	root.PersistentFlags().String("address", "", "")
	root.PersistentFlags().String("config", "", "")
	root.PersistentFlags().String("adapter", "", "")
	root.AddCommand(keysCommand(), authorizationsCommand(), groupsCommand())
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(append([]string{"--address", strings.TrimPrefix(adminURL, "http://")}, args...))
	if err := root.Execute(); err != nil {
		t.Fatalf("caddy access-auth %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

func TestCLIBindAndUnbind(t *testing.T) {
	startCaddy(t, "access_auth {\nstore file "+filepath.Join(t.TempDir(), "store.db")+"\n}",
		"http://localhost:9080 {\naccess_auth orders\nrespond ok\n}")
	waitGroupConfigured(t, "orders")
	_, auth := newAuthorizedKey(t, "cli", nil)
	bindings := func() []string {
		var a struct {
			Bindings []struct{ Group, Environment string }
		}
		adminDo(t, "GET", "/access-auth/authorizations/"+auth.ID, nil, http.StatusOK, &a)
		var got []string
		for _, b := range a.Bindings {
			got = append(got, b.Group+"/"+b.Environment)
		}
		return got
	}

	runCLI(t, "authorizations", "bind", auth.ID, "orders")
	runCLI(t, "authorizations", "bind", auth.ID, "orders", "--environment", "online")
	if got := strings.Join(bindings(), " "); got != "orders/* orders/online" {
		t.Fatalf("after bind: %s, want orders/* orders/online", got)
	}
	runCLI(t, "authorizations", "unbind", auth.ID, "orders", "--environment", "online")
	if got := strings.Join(bindings(), " "); got != "orders/*" {
		t.Fatalf("after unbinding online: %s, want orders/*", got)
	}
	// Without --environment the key loses the group in every environment.
	runCLI(t, "authorizations", "bind", auth.ID, "orders", "--environment", "online")
	runCLI(t, "authorizations", "unbind", auth.ID, "orders")
	if got := bindings(); len(got) != 0 {
		t.Errorf("after unbinding the group: %v, want none", got)
	}
}
