package caddymodule

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/accessauth/caddy-access-auth/cache"
	"github.com/accessauth/caddy-access-auth/limits"
	"github.com/accessauth/caddy-access-auth/replay"
	"github.com/accessauth/caddy-access-auth/store"
	boltstore "github.com/accessauth/caddy-access-auth/store/bolt"
	redisstore "github.com/accessauth/caddy-access-auth/store/redis"
	dailyusage "github.com/accessauth/caddy-access-auth/usage"
)

// Three pools keep the app's resources alive across config reloads.
// Backends are keyed by what they connect to, so configs that change only
// the cache or the master keys reuse the open bbolt file (whose lock a
// second open in this process would wait on) or the Redis connections.
// Replay states (the node's nonce tables) are keyed by their backend and
// size, states by the whole configuration.
var (
	backends = caddy.NewUsagePool()
	replays  = caddy.NewUsagePool()
	states   = caddy.NewUsagePool()
)

// current is the app of the running config: the admin API serves its store.
var current atomic.Pointer[App]

// sharedBackend is one open backend, with what lives as long as it does.
type sharedBackend struct {
	backend store.Backend
	// errors logs the backend's failures (metered with its requests).
	errors *storeErrorLog
}

// Destruct closes the backend once no state uses it.
func (b *sharedBackend) Destruct() error { return b.backend.Close() }

// replayState is replay protection on this node, over one backend.
type replayState struct {
	key string
	// local is the nonce table that every route using local replay
	// protection shares, so a nonce is seen once per node. It is saved to
	// file when it ends.
	local  *replay.LocalNonces
	file   string
	logger *zap.Logger
	// shared is the store's nonce set (Redis, with standIn while Redis is
	// unreachable), nil for the file store.
	shared  replay.Guard
	standIn *replay.LocalNonces
	// stopWatch stops replay.WatchTables; watchDone is closed when it has.
	stopWatch context.CancelFunc
	watchDone chan struct{}
}

// openReplay makes the nonce tables for a's backend b, watched for as long
// as they live.
func openReplay(key string, a *App, b *sharedBackend) *replayState {
	file := a.nonceFilePath()
	r := &replayState{key: key, local: replay.OpenLocalNonces(file, a.LocalNonces, a.logger), file: file, logger: a.logger}
	if redis, ok := b.backend.(*redisstore.Backend); ok {
		r.standIn = replay.NewLocalNonces(replay.WithMaxNonces(a.LocalNonces))
		r.shared = replay.NewFallback(meteredNonces{redis.Nonces(), b.errors}, r.standIn)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.stopWatch, r.watchDone = cancel, make(chan struct{})
	go func() {
		defer close(r.watchDone)
		replay.WatchTables(ctx, a.logger, replay.TableCheckInterval, r.tables()...)
	}()
	return r
}

// guard is replay protection in mode (never replay.ModeAuto), nil when off.
func (r *replayState) guard(mode replay.Mode) replay.Guard {
	switch mode {
	case replay.ModeStore:
		return r.shared
	case replay.ModeLocal:
		return r.local
	}
	return nil
}

// tables are the node's nonce tables: the routes' and, with Redis, its
// stand-in.
func (r *replayState) tables() []*replay.LocalNonces {
	if r.standIn != nil {
		return []*replay.LocalNonces{r.local, r.standIn}
	}
	return []*replay.LocalNonces{r.local}
}

// Destruct stops watching the tables once no state uses them and saves
// the local one.
func (r *replayState) Destruct() error {
	r.stopWatch()
	<-r.watchDone
	replay.CloseLocalNonces(r.file, r.local, r.logger)
	return nil
}

// nonceFilePath is where a's local nonce table is kept between runs: beside
// the embedded store's database, or in Caddy's data directory, one file for
// each Redis store.
func (a *App) nonceFilePath() string {
	if a.Store.Type == StoreFile {
		return filepath.Join(filepath.Dir(a.Store.Path), "local_nonces")
	}
	return filepath.Join(caddy.AppDataDir(), "access_auth", "local_nonces-"+a.backendKey()[:16])
}

// sharedState is the store, cache and change feed of one configuration.
type sharedState struct {
	key        string
	backendKey string
	backend    *sharedBackend
	replay     *replayState
	store      *store.Store
	cache      *cache.Cache
	usage      *usage // when keys were let through, for last_used_at
	daily      *dailyusage.Recorder
	limiter    *limits.Limiter
	limiterRan chan struct{} // closed when the limiter's Run has returned
	stopFollow context.CancelFunc
	followDone chan struct{}
	usageDone  chan struct{}
	pruneDone  chan struct{}
}

// Destruct stops the change feed and writes the last uses of keys and the
// daily usage, closes the cache, then releases the backend (the store is only rules over it:
// closing the store would close the backend that another state may share).
func (s *sharedState) Destruct() error {
	s.stopFollow()
	<-s.followDone
	<-s.usageDone
	<-s.limiterRan
	closeLimiter(s.limiter)
	s.daily.Close()
	<-s.pruneDone
	s.cache.Close()
	_, replayErr := replays.Delete(s.replay.key)
	_, err := backends.Delete(s.backendKey)
	return errors.Join(replayErr, err)
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
	// Keyed by the backend too: two stores never share nonces.
	rkey := bkey + "/" + strconv.Itoa(a.LocalNonces)
	rv, _, _ := replays.LoadOrNew(rkey, func() (caddy.Destructor, error) { return openReplay(rkey, a, b), nil })
	replay := rv.(*replayState)
	fail := func(err error) (*sharedState, error) {
		_, _ = replays.Delete(rkey)
		_, _ = backends.Delete(bkey)
		return nil, err
	}
	mk, err := a.loadMasterKeys()
	if err != nil {
		return fail(err)
	}
	// A write through this node drops its entries before it answers, so the
	// next request here sees it; the feed carries it to the other nodes.
	var c *cache.Cache
	var lim *limits.Limiter
	st, err := store.Open(meteredBackend{b.backend, b.errors}, store.Options{
		MasterKeys: mk.keys,
		Committed: func(apiKeys []string) {
			c.Invalidate(apiKeys...)
			if lim != nil { // made just after the store
				lim.Changed()
			}
		},
	})
	if err != nil {
		return fail(fmt.Errorf("access_auth: %w", err))
	}
	if err := a.checkMasterKeys(st, mk); err != nil {
		return fail(err)
	}
	c, err = cache.New(cache.Config{
		MaxEntries:  int64(a.Cache.MaxEntries),
		TTL:         time.Duration(a.Cache.TTL),
		NegativeTTL: time.Duration(a.Cache.NegativeTTL),
		MaxStale:    time.Duration(a.MaxStale),
	}, newUnsealLoader(st, a.logger))
	if err != nil {
		return fail(fmt.Errorf("access_auth: %w", err))
	}
	lim = openLimiter(st, b.backend, a.logger)
	// Subscribe before the first request can fill the cache, so no change
	// committed after a fill goes unseen.
	ctx, cancel := context.WithCancel(context.Background())
	feed := observePropagation(ctx, st.Subscribe(ctx), lim.Changed)
	limiterRan := make(chan struct{})
	go func() {
		defer close(limiterRan)
		lim.Run(ctx)
	}()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Follow(ctx, feed)
	}()
	used, usageDone := newUsage(), make(chan struct{})
	go flushUsage(ctx, st, used, a.logger, usageDone)
	daily := dailyusage.New(st, a.logger)
	daily.Start(dailyusage.FlushInterval)
	pruneDone := make(chan struct{})
	go pruneAudit(ctx, st, auditRetention, a.logger, pruneDone)
	return &sharedState{key: a.stateKey, backendKey: bkey, backend: b, replay: replay, store: st, cache: c, usage: used,
		daily: daily, limiter: lim, limiterRan: limiterRan, stopFollow: cancel, followDone: done, usageDone: usageDone,
		pruneDone: pruneDone}, nil
}

// openBackend connects the configured backend. Opening Redis makes no
// round trip: an unreachable Redis must not keep Caddy from starting.
func openBackend(a *App) (*sharedBackend, error) {
	b := &sharedBackend{errors: new(storeErrorLog)}
	switch a.Store.Type {
	case StoreRedis:
		r, err := openRedis(a)
		if err != nil {
			return nil, err
		}
		b.backend = r
	default:
		bolt, err := boltstore.Open(a.Store.Path)
		if err != nil {
			return nil, fmt.Errorf("access_auth: %w", err)
		}
		b.backend = bolt
	}
	return b, nil
}

// redisOpenTimeout bounds the credential check of opening Redis, so that a
// Redis that does not answer delays start-up only briefly.
const redisOpenTimeout = 5 * time.Second

func openRedis(a *App) (*redisstore.Backend, error) {
	s := a.Store
	opts := redisstore.Options{
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
	r, err := redisstore.Open(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("access_auth: store redis: %w", err)
	}
	return r, nil
}
