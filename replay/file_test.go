package replay

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"
)

// The node's table goes to its file when it ends and comes back at the
// next start, once: the file is removed as it is read, so a crash after
// that start finds none. Without a file, or with a damaged one, the table
// refuses requests dated before its start. A resized table on a reload
// takes its predecessor's nonces, and only the last one saves.
func TestLocalNoncesFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "local_nonces")
	logger := zap.NewNop()
	past := time.Now().Add(-time.Minute)
	seen := func(table *LocalNonces, nonce string) bool {
		s, _ := table.Seen(context.Background(), "K", nonce, time.Now(), time.Hour)
		return s
	}
	exists := func() bool {
		_, err := os.Stat(path)
		return err == nil
	}
	crash := func() { clear(liveTables.byPath) } // a new process knows no live table

	saved := NewLocalNonces(WithMaxNonces(1000))
	seen(saved, "before")
	if err := saveLocalNonces(path, saved); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + ".tmp"); !os.IsNotExist(err) {
		t.Fatalf("the temporary file is left: %v", err)
	}

	loaded := OpenLocalNonces(path, 1000, logger)
	if !loaded.VouchesFor(past) || !seen(loaded, "before") || exists() {
		t.Fatalf("after a clean stop: vouches %v, remembers %v, file left %v; want true, true, false",
			loaded.VouchesFor(past), seen(loaded, "before"), exists())
	}

	crash()
	if afterCrash := OpenLocalNonces(path, 1000, logger); afterCrash.VouchesFor(past) {
		t.Fatal("a start after a crash that followed a clean start vouches for requests dated before it")
	}

	crash()
	if err := os.WriteFile(path, []byte("AANONCES torn"), 0o600); err != nil {
		t.Fatal(err)
	}
	if damaged := OpenLocalNonces(path, 1000, logger); damaged.VouchesFor(past) {
		t.Fatal("a damaged file vouches for requests dated before the start")
	}

	crash()
	if err := saveLocalNonces(path, loaded); err != nil {
		t.Fatal(err)
	}
	old := OpenLocalNonces(path, 1000, logger)
	resized := OpenLocalNonces(path, 5000, logger)
	seen(old, "during the reload")
	CloseLocalNonces(path, old, logger)
	if exists() || !seen(resized, "before") || !seen(resized, "during the reload") {
		t.Fatalf("a resizing reload: file %v, nonces kept %v and %v; want false, true, true",
			exists(), seen(resized, "before"), seen(resized, "during the reload"))
	}
	CloseLocalNonces(path, resized, logger)
	if !exists() {
		t.Fatal("the last table did not save")
	}

	// A reload that fails after opening the successor ends it first.
	crash()
	old = OpenLocalNonces(path, 1000, logger)
	failed := OpenLocalNonces(path, 5000, logger)
	seen(failed, "in the failed config")
	CloseLocalNonces(path, failed, logger)
	if exists() || !seen(old, "in the failed config") {
		t.Fatalf("a failed reload: file %v, its nonce handed back %v; want false, true", exists(), seen(old, "in the failed config"))
	}
	CloseLocalNonces(path, old, logger)
	if !exists() {
		t.Fatal("the table left did not save")
	}
}
