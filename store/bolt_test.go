package store_test

import (
	"path/filepath"
	"testing"

	"github.com/accessauth/caddy-access-auth/store"
	"github.com/accessauth/caddy-access-auth/store/storetest"
)

func newBolt(t *testing.T) store.Backend {
	t.Helper()
	b, err := store.OpenBolt(filepath.Join(t.TempDir(), "data", "store.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestBoltConformance(t *testing.T) {
	storetest.Run(t, newBolt)
}
