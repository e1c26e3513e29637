package store_test

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/accessauth/caddy-access-auth/store"
	boltstore "github.com/accessauth/caddy-access-auth/store/bolt"
)

var testMasterKey = bytes.Repeat([]byte{7}, store.MasterKeySize)

// openStore opens a Store with testMasterKey over a new bbolt file, closed
// with the test. The rules are tested over the embedded engine here;
// store/storetest holds every engine to the same behavior.
func openStore(t testing.TB, opts store.Options) *store.Store {
	t.Helper()
	backend, err := boltstore.Open(filepath.Join(t.TempDir(), "store.db"))
	if err != nil {
		t.Fatal(err)
	}
	opts.MasterKeys = [][]byte{testMasterKey}
	s, err := store.Open(backend, opts)
	if err != nil {
		backend.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
