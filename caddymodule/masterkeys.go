package caddymodule

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/accessauth/caddy-access-auth/internal/keyedwindow"
	"github.com/accessauth/caddy-access-auth/store"
)

// masterKeys are the keys that seal the store's API secrets: the configured
// ones or, for the file store without any, the key of master.key beside
// the database.
type masterKeys struct {
	keys [][]byte
	// file is the file store's key file when no master_key is configured.
	file string
	// missing: file does not exist; keys holds a new key, written to file
	// only once the store has shown it holds no secret sealed under another.
	missing bool
}

func (a *App) loadMasterKeys() (masterKeys, error) {
	if len(a.masterKeys) > 0 {
		return masterKeys{keys: a.masterKeys}, nil
	}
	mk := masterKeys{file: filepath.Join(filepath.Dir(a.Store.Path), store.MasterKeyFileName)}
	key, err := store.ReadMasterKeyFile(mk.file)
	if errors.Is(err, fs.ErrNotExist) {
		mk.missing = true
		key, err = store.GenerateMasterKey()
	}
	if err != nil {
		return masterKeys{}, fmt.Errorf("access_auth: %w", err)
	}
	mk.keys = [][]byte{key}
	return mk, nil
}

// masterKeyCheckTimeout bounds the start's check of the master keys, so
// that a Redis that does not answer delays start-up only briefly.
const masterKeyCheckTimeout = 5 * time.Second

// checkMasterKeys refuses a store that holds secrets the master keys do not
// open: starting anyway would answer every such key as unknown, and a new
// master.key would hide that the old one is lost. Only then is a missing
// master.key written. A Redis that cannot be reached is not checked (an
// unreachable Redis must not keep Caddy from starting); its writes still
// record their sealing key, and a secret that cannot be opened is logged
// when a request needs it.
func (a *App) checkMasterKeys(st *store.Store, mk masterKeys) error {
	ctx, cancel := context.WithTimeout(context.Background(), masterKeyCheckTimeout)
	defer cancel()
	err := st.CheckMasterKeys(ctx)
	var mismatch *store.MasterKeyMismatchError
	switch {
	case errors.As(err, &mismatch):
		return fmt.Errorf("access_auth: %w; %s", err, a.restoreAdvice(mk, mismatch.Configured))
	case err != nil && a.isRedis() && errors.Is(err, store.ErrUnavailable):
		a.logger.Warn("could not check the master keys against the store, which is unreachable; "+
			"a secret they do not open is logged when a request needs it", zap.Error(err))
		return nil
	case err != nil:
		return fmt.Errorf("access_auth: checking the master keys against the store: %w", err)
	case mk.missing:
		kept, err := store.CreateMasterKeyFile(mk.file, mk.keys[0])
		if err != nil {
			return fmt.Errorf("access_auth: %w", err)
		}
		if !bytes.Equal(kept, mk.keys[0]) {
			// Another process wrote it meanwhile: this store would seal
			// under a key the file does not hold.
			return fmt.Errorf("access_auth: the master key file %s appeared while Caddy started; start it again", mk.file)
		}
	}
	return nil
}

// restoreAdvice says where the master key that sealed the store's secrets
// should come from.
func (a *App) restoreAdvice(mk masterKeys, configured []string) string {
	const keep = "Caddy will not start without it, since every access key sealed under it would be refused; " +
		"if that key is lost for good, so are those secrets: move the store aside and create the keys again"
	switch {
	case mk.missing:
		return fmt.Sprintf("the master key file %s, which holds the key that seals the secrets of %s, is missing: "+
			"restore it from the backup of the store (back them up together), or give its key as master_key. %s",
			mk.file, a.Store.Path, keep)
	case mk.file != "":
		return fmt.Sprintf("the master key file %s holds another key (%s): restore the one backed up with %s, "+
			"or give the old key as a master_key (several may be given: the first seals, all open). %s",
			mk.file, configured[0], a.Store.Path, keep)
	}
	return fmt.Sprintf("the configured master keys are %s: configure the master key that sealed them as a master_key too "+
		"(several may be given: the first seals new secrets, all open old ones). %s", strings.Join(configured, ", "), keep)
}

// unsealableSecrets counts the credential loads whose secret no configured
// master key opens.
var unsealableSecrets = prometheus.NewCounter(prometheus.CounterOpts{
	Namespace: "caddy",
	Subsystem: "access_auth",
	Name:      "unsealable_secrets_total",
	Help:      "Loads of an access key whose secret no configured master key opens; its requests are refused as invalid_key.",
})

// unsealableLogWindow is how often one access key's unsealable secret is
// logged again; unsealableLogKeys bounds how many keys are remembered.
const (
	unsealableLogWindow = 10 * time.Minute
	unsealableLogKeys   = 4096
)

// unsealLoader loads credentials for the cache, answering a secret that no
// configured master key opens as an unknown key (invalid_key): the key
// cannot be verified, and the store is not down, so 503 would mislead.
type unsealLoader struct {
	store  *store.Store
	logged *keyedwindow.Counter
	logger *zap.Logger
}

func newUnsealLoader(st *store.Store, logger *zap.Logger) unsealLoader {
	return unsealLoader{store: st, logged: keyedwindow.New(unsealableLogWindow, unsealableLogKeys), logger: logger}
}

func (l unsealLoader) LoadCredential(ctx context.Context, apiKey string) (*store.Credential, error) {
	cred, err := l.store.LoadCredential(ctx, apiKey)
	if !errors.Is(err, store.ErrUnsealable) {
		return cred, err
	}
	unsealableSecrets.Inc()
	if l.logged.Add(apiKey, time.Now()) == 1 {
		l.logger.Error("no configured master key opens the secret of an access key; its requests are refused as invalid_key "+
			"(was the master key changed or master.key replaced?)",
			zap.String("api_key", apiKey), zap.Error(err))
	}
	return nil, store.ErrNotFound
}
