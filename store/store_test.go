package store_test

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/accessauth/caddy-access-auth/store"
	boltstore "github.com/accessauth/caddy-access-auth/store/bolt"
)

// The rules are tested over the embedded engine; store/storetest holds
// them to the same behavior on every engine.

var testMasterKey = bytes.Repeat([]byte{7}, store.MasterKeySize)

func newBolt(t testing.TB) *boltstore.Backend {
	t.Helper()
	b, err := boltstore.Open(filepath.Join(t.TempDir(), "data", "store.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}
