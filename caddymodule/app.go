// Package caddymodule plugs access authorization into Caddy: the
// access_auth app (store, credential cache, change feed), the access_auth
// and access_auth_admin HTTP handlers, the admin.api.access_auth admin
// routes, and their Caddyfile syntax.
package caddymodule

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/accessauth/caddy-access-auth/cache"
	"github.com/accessauth/caddy-access-auth/enforcement"
	"github.com/accessauth/caddy-access-auth/replay"
	"github.com/accessauth/caddy-access-auth/store"
	redisstore "github.com/accessauth/caddy-access-auth/store/redis"
)

func init() {
	caddy.RegisterModule(new(App))
}

// Store types of the access_auth app.
const (
	StoreFile  = "file"
	StoreRedis = "redis"
)

// DefaultLocalNonces is the default of the local_nonces global option
// (docs/configuration.md); the cache's defaults are cache.Default*, the key
// prefix's redisstore.DefaultKeyPrefix.
const DefaultLocalNonces = replay.DefaultMaxNonces

// App is the access_auth app: it owns the store, the credential cache and
// the change feed that keeps the cache coherent. Its state survives a
// config reload that leaves the store and cache configuration unchanged.
type App struct {
	// Where access keys, authorizations and groups are kept. Default: the
	// embedded file store in Caddy's data directory.
	Store *StoreConfig `json:"store,omitempty"`
	// Namespace of the Redis keys. Default: access_auth.
	KeyPrefix string `json:"key_prefix,omitempty"`
	// Base64 32-byte keys that encrypt API secrets at rest: the first
	// encrypts, all decrypt. Required with Redis; {env.*} placeholders work.
	MasterKeys []string `json:"master_key,omitempty"`
	// The in-process credential cache.
	Cache *CacheConfig `json:"cache,omitempty"`
	// How long cached entries keep serving while the store is unreachable.
	// Default: 5m.
	MaxStale caddy.Duration `json:"max_stale,omitempty"`
	// How many nonces local replay protection (and, with Redis, its stand-in
	// while Redis is unreachable) makes room for on this node, 38.4 bytes
	// each. Default: 1048576 (38 MiB), ~580 requests per second at the
	// default max_skew; beyond its size the node refuses requests signed
	// longer ago than it can vouch for. A change keeps the nonces the table
	// holds.
	LocalNonces int `json:"local_nonces,omitempty"`
	// The node's budget for request bodies read before their signature can
	// be checked.
	BodyBuffer *BodyBufferConfig `json:"body_buffer,omitempty"`
	// How long audit records are kept; older ones are removed in the
	// background, in bounded batches. Default: 90 days.
	//
	//	access_auth {
	//		audit_retention 90d
	//	}
	AuditRetention caddy.Duration `json:"audit_retention,omitempty"`

	logger     *zap.Logger
	stateKey   string
	masterKeys [][]byte

	mu       sync.Mutex
	state    *sharedState // acquired by Start or by the first request
	stopped  bool
	cancel   context.CancelFunc // ends the group registration goroutine
	routes   []routeGroup       // (group, environment) of every handler of this config
	groupSet map[string]struct{}
	admins   map[string]http.Handler // the admin API over state, by audit actor
	handlers []*Handler              // every handler of this config, for explain
}

// StoreConfig selects and configures the store.
type StoreConfig struct {
	// file (default) or redis.
	Type string `json:"type,omitempty"`
	// Path of the embedded store's database. Default:
	// {data dir}/access_auth/store.db.
	Path string `json:"path,omitempty"`
	// Redis URLs (redis:// or rediss://); several mean a Cluster.
	URLs []string `json:"urls,omitempty"`
	// Redis addresses (host:port), the block form.
	Addrs []string `json:"addrs,omitempty"`
	// Sentinel master name.
	MasterName string `json:"master_name,omitempty"`
	Username   string `json:"username,omitempty"`
	Password   string `json:"password,omitempty"`
	DB         int    `json:"db,omitempty"`
	TLS        bool   `json:"tls,omitempty"`
}

// CacheConfig sizes the credential cache.
type CacheConfig struct {
	// Default 1000000.
	MaxEntries int `json:"max_entries,omitempty"`
	// Safety-net expiry of cached entries. Default 5m.
	TTL caddy.Duration `json:"ttl,omitempty"`
	// How long an unknown API key stays cached. Default 5s.
	NegativeTTL caddy.Duration `json:"negative_ttl,omitempty"`
}

type routeGroup struct{ group, environment string }

// CaddyModule returns the Caddy module information.
func (*App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "access_auth",
		New: func() caddy.Module { return new(App) },
	}
}

// Provision fills in defaults and resolves placeholders. It does no network
// or file I/O: it also runs for `caddy validate`.
func (a *App) Provision(ctx caddy.Context) error {
	a.logger = ctx.Logger()
	repl := caddy.NewReplacer()
	if a.Store == nil {
		a.Store = new(StoreConfig)
	}
	s := a.Store
	if s.Type == "" {
		s.Type = StoreFile
	}
	if s.Type == StoreFile && s.Path == "" {
		s.Path = filepath.Join(caddy.AppDataDir(), "access_auth", "store.db")
	}
	for i := range s.URLs {
		s.URLs[i] = repl.ReplaceKnown(s.URLs[i], "")
	}
	s.Path = repl.ReplaceKnown(s.Path, "")
	s.Username = repl.ReplaceKnown(s.Username, "")
	s.Password = repl.ReplaceKnown(s.Password, "")
	if a.KeyPrefix == "" {
		a.KeyPrefix = redisstore.DefaultKeyPrefix
	}
	for i := range a.MasterKeys {
		a.MasterKeys[i] = repl.ReplaceKnown(a.MasterKeys[i], "")
	}
	if a.Cache == nil {
		a.Cache = new(CacheConfig)
	}
	if a.Cache.MaxEntries == 0 {
		a.Cache.MaxEntries = cache.DefaultMaxEntries
	}
	if a.Cache.TTL == 0 {
		a.Cache.TTL = caddy.Duration(cache.DefaultTTL)
	}
	if a.Cache.NegativeTTL == 0 {
		a.Cache.NegativeTTL = caddy.Duration(cache.DefaultNegativeTTL)
	}
	if a.MaxStale == 0 {
		a.MaxStale = caddy.Duration(cache.DefaultMaxStale)
	}
	if a.LocalNonces == 0 {
		a.LocalNonces = DefaultLocalNonces
	}
	if a.AuditRetention == 0 {
		a.AuditRetention = caddy.Duration(store.DefaultAuditRetention)
	}
	if a.BodyBuffer == nil {
		a.BodyBuffer = new(BodyBufferConfig)
	}
	if a.BodyBuffer.MaxBytes == 0 {
		a.BodyBuffer.MaxBytes = enforcement.DefaultBodyBufferBytes
	}
	if a.BodyBuffer.MaxBodies == 0 {
		a.BodyBuffer.MaxBodies = enforcement.DefaultBodyBufferBodies
	}
	a.groupSet = make(map[string]struct{})
	// The key that shares state between configs; errors surface in Validate.
	a.masterKeys, _ = decodeMasterKeys(a.MasterKeys)
	a.stateKey = a.hashConfig()
	if err := registerMetrics(ctx); err != nil {
		return fmt.Errorf("access_auth: metrics: %w", err)
	}
	return nil
}

// Validate checks the configuration.
func (a *App) Validate() error {
	if err := a.check(true); err != nil {
		return err // Caddy names the module: "access_auth: invalid configuration: …"
	}
	return nil
}

// check checks the configuration; the Caddyfile adapter runs it too, so
// mistakes show at `caddy adapt`. Until placeholders are resolved, URLs and
// master keys that hold one are not checked.
func (a *App) check(resolved bool) error {
	s := a.Store
	if s == nil {
		s = new(StoreConfig)
	}
	switch s.Type {
	case "", StoreFile:
		if len(s.URLs) > 0 || len(s.Addrs) > 0 || s.MasterName != "" || s.Username != "" || s.Password != "" || s.DB != 0 || s.TLS {
			return errors.New("store file: takes only a path; Redis settings need store redis")
		}
	case StoreRedis:
		if len(s.URLs) == 0 && len(s.Addrs) == 0 {
			return errRedisNoServer
		}
		if len(s.URLs) > 0 && (len(s.Addrs) > 0 || s.MasterName != "") {
			return errRedisURLsAndBlock
		}
		for _, u := range s.URLs {
			if err := checkStoreURL(u, resolved); err != nil {
				return err
			}
		}
		if s.DB < 0 {
			return errRedisDB(strconv.Itoa(s.DB))
		}
		if s.Path != "" {
			return errors.New("store redis: a path applies only to store file")
		}
		if len(a.MasterKeys) == 0 {
			return errors.New("master_key: required with store redis (the key that encrypts API secrets); " +
				"make one with `caddy access-auth gen-master-key` or `openssl rand -base64 32`")
		}
	default:
		return fmt.Errorf("store: unknown type %q, expected file or redis", s.Type)
	}
	for i, k := range a.MasterKeys {
		if err := checkMasterKey(i+1, k, resolved); err != nil {
			return err
		}
	}
	if c := a.Cache; c != nil {
		if c.MaxEntries < 0 {
			return fmt.Errorf("cache: max_entries: expected a positive number, got %d", c.MaxEntries)
		}
		if c.TTL < 0 {
			return errors.New("cache: ttl: must not be negative")
		}
		if c.NegativeTTL < 0 {
			return errors.New("cache: negative_ttl: must not be negative")
		}
	}
	if a.MaxStale < 0 {
		return errors.New("max_stale: must not be negative")
	}
	if a.AuditRetention < 0 {
		return errors.New("audit_retention: must not be negative")
	}
	if a.LocalNonces < 0 {
		return fmt.Errorf("local_nonces: expected a positive number, got %d", a.LocalNonces)
	}
	if b := a.BodyBuffer; b != nil {
		if b.MaxBytes < 0 {
			return fmt.Errorf("body_buffer: max_bytes: expected a positive size, got %d", b.MaxBytes)
		}
		if b.MaxBodies < 0 {
			return fmt.Errorf("body_buffer: max_bodies: expected a positive number, got %d", b.MaxBodies)
		}
	}
	return nil
}

// checkStoreURL checks a URL of store redis; unless resolved, one with a
// placeholder passes (it is replaced in Provision).
func checkStoreURL(u string, resolved bool) error {
	if !resolved && strings.Contains(u, "{") {
		return nil
	}
	if err := checkRedisURL(u); err != nil {
		return fmt.Errorf("store redis: %w", err)
	}
	return nil
}

// checkMasterKey checks the n-th master key likewise.
func checkMasterKey(n int, key string, resolved bool) error {
	if !resolved && strings.Contains(key, "{") {
		return nil
	}
	if _, err := store.DecodeMasterKey(key); err != nil {
		return fmt.Errorf("master_key: key %d: %w", n, errBadMasterKey)
	}
	return nil
}

func checkRedisURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("invalid URL %q: %v", redactURL(raw), err)
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return fmt.Errorf("invalid URL %q: expected scheme redis:// or rediss://", redactURL(raw))
	}
	if u.Host == "" {
		return fmt.Errorf("invalid URL %q: expected a host", redactURL(raw))
	}
	return nil
}

// redactURL hides a password so that errors never print it.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		if err != nil {
			return "<unparsable URL>"
		}
		return raw
	}
	return u.Redacted()
}

func decodeMasterKeys(encoded []string) ([][]byte, error) {
	keys := make([][]byte, 0, len(encoded))
	for i, e := range encoded {
		k, err := store.DecodeMasterKey(e)
		if err != nil {
			return nil, fmt.Errorf("master_key: key %d: %w", i+1, errBadMasterKey)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// hashConfig is the identity of the shared state: configs with equal
// hashes share one store, cache and change feed across reloads.
func (a *App) hashConfig() string {
	b, _ := json.Marshal(struct {
		Store       *StoreConfig
		KeyPrefix   string
		MasterKeys  []string
		Cache       *CacheConfig
		MaxStale    caddy.Duration
		LocalNonces int
	}{a.Store, a.KeyPrefix, a.MasterKeys, a.Cache, a.MaxStale, a.LocalNonces})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// backendKey is the identity of the backend connection (the bbolt file or
// the Redis client): configs that differ only in cache settings or master
// keys still share it, which matters for bbolt's exclusive file lock.
func (a *App) backendKey() string {
	s := a.Store
	var b []byte
	if s.Type == StoreFile {
		b, _ = json.Marshal([]string{StoreFile, filepath.Clean(s.Path)})
	} else {
		b, _ = json.Marshal(struct {
			S      *StoreConfig
			Prefix string
		}{s, a.KeyPrefix})
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// isRedis reports whether the store is shared between nodes.
func (a *App) isRedis() bool { return a.Store.Type == StoreRedis }

// registerRoute records a handler's group and environment; Start
// registers them with the store in the background.
func (a *App) registerRoute(group, environment string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.groupSet[group] = struct{}{}
	rg := routeGroup{group, environment}
	if !slices.Contains(a.routes, rg) {
		a.routes = append(a.routes, rg)
	}
}

// configured reports whether a route of this config enforces group.
func (a *App) configured(group string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.groupSet[group]
	return ok
}

// Start acquires the shared state, sizes the node's body buffer and
// registers the routes' groups with the store in the background.
func (a *App) Start() error {
	st, err := a.acquire()
	if err != nil {
		return err
	}
	bodyBudget.SetLimits(a.BodyBuffer.MaxBytes, int64(a.BodyBuffer.MaxBodies))
	current.Store(a)
	a.mu.Lock()
	routes := slices.Clone(a.routes)
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	a.mu.Unlock()
	go registerGroups(ctx, st, routes, a.logger)
	return nil
}

// Stop releases the shared state (closed when no config uses it any more).
func (a *App) Stop() error {
	a.release()
	current.CompareAndSwap(a, nil)
	return nil
}

// Cleanup releases the shared state if Stop did not (a config whose start
// failed part way).
func (a *App) Cleanup() error {
	a.release()
	current.CompareAndSwap(a, nil)
	return nil
}

// acquire returns the shared state, acquiring it on first use: in Start, or
// in the first request when the http app started before this one.
func (a *App) acquire() (*sharedState, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.state != nil {
		return a.state, nil
	}
	if a.stopped {
		return nil, errAppStopped
	}
	st, err := acquireState(a)
	if err != nil {
		return nil, err
	}
	a.state = st
	return st, nil
}

func (a *App) release() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.stopped = true
	if a.cancel != nil {
		a.cancel()
		a.cancel = nil
	}
	if a.state != nil {
		releaseState(a.state)
		a.state = nil
		a.admins = nil
	}
}

var errBadMasterKey = errors.New("expected 32 bytes in base64 " +
	"(make one with `caddy access-auth gen-master-key` or `openssl rand -base64 32`)")

var errAppStopped = errors.New("access_auth app is not running")

// The rules of store redis, worded once for the Caddyfile and the JSON
// check.
var (
	errRedisNoServer     = errors.New("store redis: expected one or more redis:// URLs or a block with addrs")
	errRedisURLsAndBlock = errors.New("store redis: give URLs or a block with addrs, not both")
)

func errRedisDB(db string) error {
	return fmt.Errorf("store redis: db: expected a database number >= 0, got %s", db)
}

// registerGroups registers every route's group with the store, retrying
// in the background until it succeeds or the app stops.
func registerGroups(ctx context.Context, st *sharedState, routes []routeGroup, logger *zap.Logger) {
	backoff := 100 * time.Millisecond
	for len(routes) > 0 {
		var failed []routeGroup
		for _, rg := range routes {
			if err := st.store.RegisterGroup(ctx, rg.group, rg.environment); err != nil {
				if ctx.Err() != nil {
					return
				}
				logger.Warn("registering route group with the store; will retry",
					zap.String("group", rg.group), zap.String("environment", rg.environment), zap.Error(err))
				failed = append(failed, rg)
			}
		}
		routes = failed
		if len(routes) == 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// Interface guards
var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.Validator    = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
)
