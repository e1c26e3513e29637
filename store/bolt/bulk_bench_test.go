package boltstore_test

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/accessauth/caddy-access-auth/internal/bulkgen"
	"github.com/accessauth/caddy-access-auth/store"
	boltstore "github.com/accessauth/caddy-access-auth/store/bolt"
)

// BenchmarkImportFrom: a bulk import into a new embedded store (keys/s,
// heap added; docs/operations.md).
func BenchmarkImportFrom(b *testing.B) {
	masterKey := bytes.Repeat([]byte{3}, store.MasterKeySize)
	backend, err := boltstore.Open(filepath.Join(b.TempDir(), "store.db"))
	if err != nil {
		b.Fatal(err)
	}
	s, err := store.Open(backend, store.Options{MasterKeys: [][]byte{masterKey}})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	bulkgen.BenchmarkImport(b, s, masterKey)
}
