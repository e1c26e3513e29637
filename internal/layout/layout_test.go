package layout

import (
	"maps"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const (
	module = "github.com/accessauth/caddy-access-auth"
	caddy  = "github.com/caddyserver/caddy/"
)

// mayImportCaddy tells whether a package of this module may depend on Caddy:
// only the plugin's root (which registers it), caddymodule/ (the adapter) and
// cmd/ (the binary). The rest — enforcement, signature, store, cache, admin,
// the test helpers — must build and test without Caddy.
func mayImportCaddy(pkg string) bool {
	if pkg == module {
		return true
	}
	for _, room := range []string{module + "/caddymodule", module + "/cmd"} {
		if pkg == room || strings.HasPrefix(pkg, room+"/") {
			return true
		}
	}
	return false
}

// TestOnlyTheEdgeImportsCaddy lists every package of the module with its
// test variants and fails for each one outside the edge that depends on
// Caddy, directly or through another package.
func TestOnlyTheEdgeImportsCaddy(t *testing.T) {
	deps := listDeps(t)
	if len(deps[module+"/caddymodule"]) == 0 {
		t.Fatalf("go list shows no dependencies of caddymodule; the check would pass on anything")
	}
	if firstCaddyDep(deps[module+"/caddymodule"]) == "" {
		t.Fatalf("caddymodule does not seem to depend on Caddy: the check reads go list wrongly")
	}
	for _, pkg := range slices.Sorted(maps.Keys(deps)) {
		if mayImportCaddy(pkg) {
			continue
		}
		if dep := firstCaddyDep(deps[pkg]); dep != "" {
			t.Errorf("%s depends on %s: only caddymodule/ and cmd/ may import Caddy (docs/architecture.md)", pkg, dep)
		}
	}
}

func TestMayImportCaddy(t *testing.T) {
	for _, tc := range []struct {
		pkg  string
		want bool
	}{
		{module, true},
		{module + "/caddymodule", true},
		{module + "/cmd/caddy", true},
		{module + "/caddymodulex", false},
		{module + "/enforcement", false},
		{module + "/store", false},
		{module + "/internal/gatewaytest", false},
	} {
		if got := mayImportCaddy(tc.pkg); got != tc.want {
			t.Errorf("mayImportCaddy(%q) = %v, want %v", tc.pkg, got, tc.want)
		}
	}
}

// listDeps runs go list over the whole module, test variants included
// ("p [p.test]", "p_test [p.test]", "p.test"), and returns each package's
// transitive dependencies under the package's own import path.
func listDeps(t *testing.T) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", "list", "-test", "-f", "{{.ImportPath}}\t{{join .Deps \" \"}}", "./...")
	cmd.Dir = moduleRoot(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -test ./...: %v", err)
	}
	deps := make(map[string][]string)
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		path, list, _ := strings.Cut(line, "\t")
		pkg := ownPath(path)
		deps[pkg] = append(deps[pkg], strings.Fields(list)...)
	}
	return deps
}

// ownPath names a test variant after the package it tests.
func ownPath(importPath string) string {
	pkg, _, _ := strings.Cut(importPath, " ")
	pkg = strings.TrimSuffix(pkg, ".test")
	return strings.TrimSuffix(pkg, "_test")
}

func firstCaddyDep(deps []string) string {
	for _, dep := range deps {
		if strings.HasPrefix(dep, caddy) {
			return dep
		}
	}
	return ""
}

func TestOwnPath(t *testing.T) {
	for _, tc := range []struct{ importPath, want string }{
		{module + "/store", module + "/store"},
		{module + "/store [" + module + "/store.test]", module + "/store"},
		{module + "/store_test [" + module + "/store.test]", module + "/store"},
		{module + "/store.test", module + "/store"},
	} {
		if got := ownPath(tc.importPath); got != tc.want {
			t.Errorf("ownPath(%q) = %q, want %q", tc.importPath, got, tc.want)
		}
	}
}
