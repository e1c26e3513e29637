package replay

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"
)

// A node's local nonce table outlives the process through a file: saved at
// a clean stop, read back and removed at the next start. Removed, because
// from then on only the running table knows what it accepts: should the
// process crash, no file may vouch for it. Without a file (a first start,
// or after a crash) the table starts empty and refuses requests signed
// before it was made (WithVouchesFrom). caddymodule opens the table when
// a config first needs it and closes it when the last one lets it go.

// liveTables holds, by file, the tables of this process that save to it,
// oldest first. A reload that resizes the table opens its successor while
// the old one still serves; whichever ends first hands its nonces over to
// the newest one left, and the last one saves them.
var liveTables = struct {
	sync.Mutex
	byPath map[string][]*LocalNonces
}{byPath: make(map[string][]*LocalNonces)}

// OpenLocalNonces returns the node's table for the file at path, sized for
// size nonces: the successor of the one live in this process, else the one
// saved at the last clean stop, else an empty one.
func OpenLocalNonces(path string, size int, logger *zap.Logger) *LocalNonces {
	liveTables.Lock()
	defer liveTables.Unlock()
	sized := WithMaxNonces(size)
	live := liveTables.byPath[path]
	var t *LocalNonces
	if len(live) > 0 {
		t = live[len(live)-1].Successor(sized)
	} else {
		t = loadLocalNonces(path, sized, logger)
	}
	liveTables.byPath[path] = append(live, t)
	return t
}

// CloseLocalNonces hands t's nonces over to the newest table left live, or
// saves them to path when none is.
func CloseLocalNonces(path string, t *LocalNonces, logger *zap.Logger) {
	liveTables.Lock()
	defer liveTables.Unlock()
	live := slices.DeleteFunc(liveTables.byPath[path], func(l *LocalNonces) bool { return l == t })
	if len(live) > 0 {
		liveTables.byPath[path] = live
		t.HandOver(live[len(live)-1])
		return
	}
	delete(liveTables.byPath, path)
	if err := saveLocalNonces(path, t); err != nil {
		logger.Error("replay protection: saving this node's nonces; at the next start it refuses requests signed before it (date_out_of_range) for up to max_skew",
			zap.String("file", path), zap.Error(err))
	}
}

// loadLocalNonces reads the table saved at path and removes the file.
// Without a file, or with one it cannot read or remove, the table vouches
// only for requests signed from now on.
func loadLocalNonces(path string, sized NonceOption, logger *zap.Logger) *LocalNonces {
	start := time.Now().Truncate(time.Second) // requests' dates are whole seconds
	_ = os.Remove(path + ".tmp")              // a save that did not finish
	t, err := readNonceFile(path, sized)
	const refusal = "requests signed before now are refused as date_out_of_range for up to max_skew"
	switch {
	case err == nil:
		logger.Info("replay protection: loaded the nonces saved at the last clean stop", zap.String("file", path), zap.Int("nonces", t.Len()))
		return t
	case errors.Is(err, fs.ErrNotExist):
		logger.Warn("replay protection: no nonces saved by a clean stop (first start, or the last run crashed); "+refusal, zap.String("file", path))
	default:
		logger.Error("replay protection: loading the saved nonces; "+refusal, zap.String("file", path), zap.Error(err))
	}
	refuseOlder := WithVouchesFrom(start)
	if t != nil { // read, not removed: its nonces still count
		return t.Successor(sized, refuseOlder)
	}
	return NewLocalNonces(sized, refuseOlder)
}

// readNonceFile reads the table saved at path and removes the file. It
// returns the table read also when the file could not be removed.
func readNonceFile(path string, sized NonceOption) (*LocalNonces, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	t, err := ReadLocalNonces(f, sized)
	f.Close()
	if err != nil {
		return nil, err
	}
	return t, removeDurably(path)
}

// removeDurably removes the file at path and syncs its directory, so that
// the file does not come back after a crash.
func removeDurably(path string) error {
	if err := os.Remove(path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// saveLocalNonces writes t to path atomically: to a temporary file, synced,
// then renamed over path and the directory synced.
func saveLocalNonces(path string, t *LocalNonces) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = t.WriteTo(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", tmp, err)
	}
	return syncDir(dir)
}

// syncDir makes a rename or removal in dir durable.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil // directories cannot be synced there
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
