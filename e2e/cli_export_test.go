package e2e

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/accessauth/caddy-access-auth/internal/gatewaytest"
	"github.com/accessauth/caddy-access-auth/store"
)

// TestCLIExportImportStream: `caddy access-auth export` writes the data set
// as the node streams it and `import FILE` streams it into another node,
// whose keys then pass.
func TestCLIExportImportStream(t *testing.T) {
	fromDir, toDir := t.TempDir(), t.TempDir()
	from := gatewaytest.Start(t, "cli-export", "store file "+filepath.Join(fromDir, "store.db"), ordersSite)
	from.WaitGroup("orders")
	key := from.AuthorizedKey("alice", "orders")
	var exp store.Export
	cliJSON(t, from, &exp, "export")
	if len(exp.Keys) != 1 || exp.Keys[0].SealedSecret == "" || len(exp.Authorizations) != 1 {
		t.Fatalf("export: %+v", exp)
	}
	out, ok := cli(t, from, "export")
	if !ok {
		t.Fatalf("export: %s", out)
	}
	file := filepath.Join(t.TempDir(), "data.json")
	if err := os.WriteFile(file, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}

	// Another node's embedded store, with the first one's master key beside
	// it, so the sealed secrets open.
	masterKey, err := os.ReadFile(filepath.Join(fromDir, store.MasterKeyFileName))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(toDir, store.MasterKeyFileName), masterKey, 0o600); err != nil {
		t.Fatal(err)
	}
	to := gatewaytest.Start(t, "cli-import", "store file "+filepath.Join(toDir, "store.db"), ordersSite)
	var sum store.ImportSummary
	cliJSON(t, to, &sum, "import", file)
	if sum != (store.ImportSummary{Keys: 1, Authorizations: 1, Groups: 1}) {
		t.Errorf("import summary %+v", sum)
	}
	gatewaytest.WantAnswer(t, "the imported key", to.Call(key), 200, "")
}
