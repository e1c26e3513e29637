package caddymodule

import (
	"context"
	"crypto/tls"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/accessauth/caddy-access-auth/cache"
	"github.com/accessauth/caddy-access-auth/enforcement"
	"github.com/accessauth/caddy-access-auth/store"
)

// Two pools keep the app's resources alive across config reloads. Backends
// are keyed by what they connect to, so configs that change only the cache
// or the master keys reuse the open bbolt file (whose lock a second open in
// this process would wait on) or the Redis connections. States are keyed by
// the whole store and cache configuration.
var (
	backends = caddy.NewUsagePool()
	states   = caddy.NewUsagePool()
)

// current is the app of the running config: the admin API serves its store.
var current atomic.Pointer[App]

// sharedBackend is one open backend, with what lives as long as it does.
type sharedBackend struct {
	backend store.Backend
	// nonces is the store's nonce set (Redis, with this node's memory
	// while Redis is unreachable), nil for the file store.
	nonces enforcement.NonceStore
	// localNonces is the in-process nonce set that every route using
	// local replay protection shares, so a nonce is seen once per node.
	localNonces *enforcement.LocalNonces
	// errors logs the backend's failures (metered with its requests).
	errors *storeErrorLog
	// stopWatch stops watchNonceTables; watchDone is closed when it returned.
	stopWatch context.CancelFunc
	watchDone chan struct{}
}

// nonceTables are the backend's local nonce tables: the routes' and, with
// Redis, the one that stands in for it while it is unreachable.
func (b *sharedBackend) nonceTables() []*enforcement.LocalNonces {
	tables := []*enforcement.LocalNonces{b.localNonces}
	if f, ok := b.nonces.(*fallbackNonces); ok {
		if local, ok := f.local.(*enforcement.LocalNonces); ok {
			tables = append(tables, local)
		}
	}
	return tables
}

// Destruct closes the backend once no state uses it.
func (b *sharedBackend) Destruct() error {
	b.stopWatch()
	<-b.watchDone
	return b.backend.Close()
}

// sharedState is the store, cache and change feed of one configuration.
type sharedState struct {
	key        string
	backendKey string
	backend    *sharedBackend
	store      *store.Store
	cache      *cache.Cache
	usage      *usage // when keys were let through, for last_used_at
	stopFollow context.CancelFunc
	followDone chan struct{}
	usageDone  chan struct{}
}

// Destruct stops the change feed and writes the last uses of keys, closes
// the cache, then releases the backend (the store is only rules over it:
// closing the store would close the backend that another state may share).
func (s *sharedState) Destruct() error {
	s.stopFollow()
	<-s.followDone
	<-s.usageDone
	s.cache.Close()
	_, err := backends.Delete(s.backendKey)
	return err
}

// acquireState returns the shared state of a's configuration, opening it
// when no running config shares it.
func acquireState(a *App) (*sharedState, error) {
	v, _, err := states.LoadOrNew(a.stateKey, func() (caddy.Destructor, error) {
		return openState(a)
	})
	if err != nil {
		return nil, err
	}
	return v.(*sharedState), nil
}

// releaseState drops one use of the state; the last use closes it.
func releaseState(s *sharedState) {
	if _, err := states.Delete(s.key); err != nil {
		caddy.Log().Named("access_auth").Error("closing the store", zap.Error(err))
	}
}

func openState(a *App) (*sharedState, error) {
	bkey := a.backendKey()
	v, _, err := backends.LoadOrNew(bkey, func() (caddy.Destructor, error) {
		return openBackend(a)
	})
	if err != nil {
		return nil, err
	}
	b := v.(*sharedBackend)
	fail := func(err error) (*sharedState, error) {
		_, _ = backends.Delete(bkey)
		return nil, err
	}
	masterKeys := a.masterKeys
	if len(masterKeys) == 0 {
		key, err := store.LoadOrCreateMasterKeyFile(filepath.Join(filepath.Dir(a.Store.Path), "master.key"))
		if err != nil {
			return fail(fmt.Errorf("access_auth: %w", err))
		}
		masterKeys = [][]byte{key}
	}
	// A write through this node drops its entries before it answers, so the
	// next request here sees it; the feed carries it to the other nodes.
	var c *cache.Cache
	st, err := store.Open(meteredBackend{b.backend, b.errors}, store.Options{
		MasterKeys: masterKeys,
		Committed:  func(apiKeys []string) { c.Invalidate(apiKeys...) },
	})
	if err != nil {
		return fail(fmt.Errorf("access_auth: %w", err))
	}
	c, err = cache.New(cache.Config{
		MaxEntries:  int64(a.Cache.MaxEntries),
		TTL:         time.Duration(a.Cache.TTL),
		NegativeTTL: time.Duration(a.Cache.NegativeTTL),
		MaxStale:    time.Duration(a.MaxStale),
	}, st)
	if err != nil {
		return fail(fmt.Errorf("access_auth: %w", err))
	}
	// Subscribe before the first request can fill the cache, so no change
	// committed after a fill goes unseen.
	ctx, cancel := context.WithCancel(context.Background())
	feed := observePropagation(ctx, st.Subscribe(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Follow(ctx, feed)
	}()
	used, usageDone := newUsage(), make(chan struct{})
	go flushUsage(ctx, st, used, a.logger, usageDone)
	return &sharedState{key: a.stateKey, backendKey: bkey, backend: b, store: st, cache: c, usage: used,
		stopFollow: cancel, followDone: done, usageDone: usageDone}, nil
}

// openBackend connects the configured backend. Opening Redis makes no
// round trip: an unreachable Redis must not keep Caddy from starting.
func openBackend(a *App) (*sharedBackend, error) {
	b := &sharedBackend{localNonces: enforcement.NewLocalNonces(), errors: new(storeErrorLog)}
	switch a.Store.Type {
	case StoreRedis:
		r, err := openRedis(a)
		if err != nil {
			return nil, err
		}
		b.backend, b.nonces = r, newFallbackNonces(meteredNonces{r.Nonces(), b.errors})
	default:
		bolt, err := store.OpenBolt(a.Store.Path)
		if err != nil {
			return nil, fmt.Errorf("access_auth: %w", err)
		}
		b.backend = bolt
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.stopWatch, b.watchDone = cancel, make(chan struct{})
	go func() {
		defer close(b.watchDone)
		watchNonceTables(ctx, a.logger, nonceTableCheckInterval, b.nonceTables()...)
	}()
	return b, nil
}

// redisOpenTimeout bounds the credential check of opening Redis, so that a
// Redis that does not answer delays start-up only briefly.
const redisOpenTimeout = 5 * time.Second

func openRedis(a *App) (*store.RedisBackend, error) {
	s := a.Store
	opts := store.RedisOptions{
		URLs:       s.URLs,
		Addrs:      s.Addrs,
		MasterName: s.MasterName,
		Username:   s.Username,
		Password:   s.Password,
		DB:         s.DB,
		KeyPrefix:  a.KeyPrefix,
	}
	if s.TLS {
		opts.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	ctx, cancel := context.WithTimeout(context.Background(), redisOpenTimeout)
	defer cancel()
	r, err := store.OpenRedis(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("access_auth: store redis: %w", err)
	}
	return r, nil
}
