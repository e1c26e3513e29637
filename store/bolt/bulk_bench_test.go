package boltstore_test

import (
	"bytes"
	"os"
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
	path := filepath.Join(b.TempDir(), "store.db")
	backend, err := boltstore.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	s, err := store.Open(backend, store.Options{MasterKeys: [][]byte{masterKey}})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	bulkgen.BenchmarkImport(b, s, masterKey)
	if info, err := os.Stat(path); err == nil {
		b.ReportMetric(float64(info.Size())/float64(b.N), "file-B/key")
	}
}
