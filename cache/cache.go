// Package cache keeps the compiled credentials of API keys in process, so
// that the request check costs no store round trip on a hit. Misses load
// through a Loader (one load per key at a time, shared by concurrent
// misses), unknown keys are remembered briefly, entries are dropped when the
// store's change feed names them, and while the store is unreachable entries
// keep serving for a bounded time.
package cache

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/ristretto/v2"
	"golang.org/x/sync/singleflight"

	"github.com/accessauth/caddy-access-auth/store"
)

// Errors of Get.
var (
	// ErrUnknownKey means the store has no such API key (possibly
	// remembered from a recent load).
	ErrUnknownKey = errors.New("unknown API key")
	// ErrUnavailable means the key is not cached (or too stale) and the
	// store could not be asked.
	ErrUnavailable = errors.New("credential store unavailable")
)

// Loader reads one API key's credential from the store in one round trip.
// It returns store.ErrNotFound for an unknown key; any other error counts
// as the store being unavailable. *store.Store implements it.
type Loader interface {
	LoadCredential(ctx context.Context, apiKey string) (*store.Credential, error)
}

// Config tunes a Cache. Zero fields take their defaults.
type Config struct {
	MaxEntries  int64         // default 1,000,000
	TTL         time.Duration // age after which an entry is reloaded, default 5m
	NegativeTTL time.Duration // how long an unknown key is remembered, default 5s
	// MaxStale is how long past TTL an entry still serves while the store
	// is unreachable, default 5m; negative: never serve stale entries.
	MaxStale time.Duration
	Now      func() time.Time // default time.Now; GetAt takes the caller's time only then
}

// Defaults of Config (docs/configuration.md).
const (
	DefaultMaxEntries  = 1_000_000
	DefaultTTL         = 5 * time.Minute
	DefaultNegativeTTL = 5 * time.Second
	DefaultMaxStale    = 5 * time.Minute
)

func (c *Config) applyDefaults() {
	if c.MaxEntries <= 0 {
		c.MaxEntries = DefaultMaxEntries
	}
	if c.TTL <= 0 {
		c.TTL = DefaultTTL
	}
	if c.NegativeTTL <= 0 {
		c.NegativeTTL = DefaultNegativeTTL
	}
	switch {
	case c.MaxStale == 0:
		c.MaxStale = DefaultMaxStale
	case c.MaxStale < 0:
		c.MaxStale = 0
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// hotSlots is the size of the table of recently served items in front of
// ristretto (8 bytes a slot).
const hotSlots = 4096

// hotFeedEvery is how often (1 in n) a hit served from the hot table is
// also looked up in ristretto, so that its admission policy keeps seeing the
// keys in use.
const hotFeedEvery = 32

// Cache holds compiled credentials by API key. It is safe for concurrent use.
type Cache struct {
	cfg    Config
	loader Loader
	items  *ristretto.Cache[string, *item]
	loads  singleflight.Group

	// epoch is bumped by InvalidateAll: items of an older epoch are gone.
	epoch atomic.Uint64
	// gen counts invalidations. Each item is born with the gen its load
	// started at, and Invalidate stamps the slot of each key it drops: an
	// item born before its slot's stamp is gone, even one whose Set
	// ristretto applies (asynchronously) after the Del of the invalidation.
	gen atomic.Uint64
	// slots, by hash of the API key, hold the invalidation stamps and the
	// items served lately: a hit there costs a hash and a few atomic loads
	// instead of ristretto's lookup and its access-buffer push.
	slots     [hotSlots]slot
	slotSeed  maphash.Seed
	wallClock bool // cfg.Now is time.Now: GetAt may take the caller's reading
	// filling holds the item of each load in flight, so that
	// InvalidateAll can keep later misses from joining them.
	mu      sync.Mutex
	filling map[string]*item

	stats stats
}

// item is what the cache stores for one API key: an entry, or for an
// unknown key an entry with only APIKey set.
type item struct {
	entry    Entry
	known    bool
	loadedAt int64 // Unix nanoseconds of Config.Now
	freshFor time.Duration
	epoch    uint64
	born     uint64 // Cache.gen when its load started
}

// slot is the hot entry and the invalidation stamp of the API keys whose
// hash it shares.
type slot struct {
	hot         atomic.Pointer[item]
	invalidated atomic.Uint64 // gen of the last invalidation of one of its keys
}

// stamp records invalidation gen, keeping the latest of racing stamps.
func (s *slot) stamp(gen uint64) {
	for {
		old := s.invalidated.Load()
		if old >= gen || s.invalidated.CompareAndSwap(old, gen) {
			return
		}
	}
}

func (it *item) result() (*Entry, error) {
	if !it.known {
		return nil, ErrUnknownKey
	}
	return &it.entry, nil
}

// age is how long ago the item was loaded.
func (it *item) age(now time.Time) time.Duration { return time.Duration(now.UnixNano() - it.loadedAt) }

// admissionCounters is how many admission counters ristretto keeps per
// entry. Its advice is ten, but it rounds its count-min sketch up to a
// power of two counters and its doorkeeper (a bloom filter for 1 % false
// positives, about 9.6 bits a counter) up to a power of two bits: ten per
// entry made a million entries 16.8M counters and 128M bits, 48 MiB held
// from the start, which the garbage collector doubles as headroom. Seven
// rounds to 8.4M counters and 64M bits (24 MiB) with the same hit ratio
// under a Zipf load (docs/operations.md, memory).
const admissionCounters = 7

// New makes a cache that loads misses through loader.
func New(cfg Config, loader Loader) (*Cache, error) {
	wallClock := cfg.Now == nil
	cfg.applyDefaults()
	items, err := ristretto.NewCache(&ristretto.Config[string, *item]{
		NumCounters:        admissionCounters * cfg.MaxEntries,
		MaxCost:            cfg.MaxEntries,
		BufferItems:        64,
		IgnoreInternalCost: true, // cost 1 per entry: MaxCost counts entries
	})
	if err != nil {
		return nil, fmt.Errorf("credential cache: %w", err)
	}
	return &Cache{
		cfg: cfg, loader: loader, items: items, filling: make(map[string]*item),
		slotSeed: maphash.MakeSeed(), wallClock: wallClock,
	}, nil
}

// Get returns the compiled credential of apiKey: from the cache when it
// holds a fresh entry, else loaded from the store. It returns ErrUnknownKey
// for a key the store does not know, and ErrUnavailable when the store
// cannot be asked and no entry within MaxStale past its TTL is cached.
func (c *Cache) Get(ctx context.Context, apiKey string) (*Entry, error) {
	return c.get(ctx, apiKey, c.cfg.Now())
}

// GetAt is Get at now, the caller's reading of the wall clock (the request
// check reads it once for itself and the cache). A cache made with its own
// Config.Now (tests) reads that clock instead.
func (c *Cache) GetAt(ctx context.Context, apiKey string, now time.Time) (*Entry, error) {
	if !c.wallClock {
		now = c.cfg.Now()
	}
	return c.get(ctx, apiKey, now)
}

func (c *Cache) get(ctx context.Context, apiKey string, now time.Time) (*Entry, error) {
	s := c.slotOf(apiKey)
	if it := s.hot.Load(); it != nil && c.current(it, apiKey, s) && it.age(now) < it.freshFor {
		if rand.Uint32()%hotFeedEvery == 0 {
			c.items.Get(apiKey)
		}
		return c.hit(it)
	}
	cached, _ := c.items.Get(apiKey)
	if cached != nil && !c.current(cached, apiKey, s) {
		cached = nil
	}
	if cached != nil && cached.age(now) < cached.freshFor {
		s.hot.Store(cached)
		return c.hit(cached)
	}

	c.stats.misses.Add(1)
	fresh, err := c.load(ctx, apiKey)
	if err == nil {
		return fresh.result()
	}
	if cached != nil && cached.age(now) < cached.freshFor+c.cfg.MaxStale {
		c.stats.stale.Add(1)
		return cached.result()
	}
	c.stats.unavailable.Add(1)
	return nil, err
}

func (c *Cache) hit(it *item) (*Entry, error) {
	if !it.known {
		c.stats.negativeHits.Add(1)
	} else {
		c.stats.hits.Add(1)
	}
	return it.result()
}

func (c *Cache) slotOf(apiKey string) *slot {
	return &c.slots[maphash.String(c.slotSeed, apiKey)%hotSlots]
}

// current reports whether an item still stands: loaded after the last
// invalidation of its slot and the last InvalidateAll, and really apiKey's
// (ristretto keys by hash, slots are shared).
func (c *Cache) current(it *item, apiKey string, s *slot) bool {
	return it.born >= s.invalidated.Load() && it.epoch == c.epoch.Load() && it.entry.APIKey == apiKey
}

// load shares one fill among concurrent misses of apiKey; each caller stops
// waiting when its own context ends.
func (c *Cache) load(ctx context.Context, apiKey string) (*item, error) {
	done := c.loads.DoChan(apiKey, func() (any, error) {
		return c.fill(context.WithoutCancel(ctx), apiKey)
	})
	select {
	case r := <-done:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*item), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, context.Cause(ctx))
	}
}

func (c *Cache) fill(ctx context.Context, apiKey string) (*item, error) {
	// A miss that saw no entry just before another load stored one (the
	// load had finished, so this one did not join it) takes that entry.
	s := c.slotOf(apiKey)
	if it := s.hot.Load(); it != nil && c.current(it, apiKey, s) && it.age(c.cfg.Now()) < it.freshFor {
		return it, nil
	}
	it := &item{epoch: c.epoch.Load(), born: c.gen.Load()}
	c.mu.Lock()
	c.filling[apiKey] = it
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		if c.filling[apiKey] == it {
			delete(c.filling, apiKey)
		}
		c.mu.Unlock()
	}()

	c.stats.loads.Add(1)
	cred, err := c.loader.LoadCredential(ctx, apiKey)
	switch {
	case err == nil && cred != nil:
		compile(&it.entry, cred)
		if it.entry.APIKey != apiKey { // Get compares the key as asked
			it.entry.APIKey = strings.Clone(apiKey)
		}
		it.known = true
		it.freshFor = c.cfg.TTL
	case err == nil || errors.Is(err, store.ErrNotFound):
		// A clone: apiKey may point into a request's Authorization
		// header, which the cache would otherwise keep alive.
		it.entry.APIKey = strings.Clone(apiKey)
		it.freshFor = c.cfg.NegativeTTL
	default:
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	it.loadedAt = c.cfg.Now().UnixNano()
	// An item invalidated while loading may hold what the store had before
	// the change: its caller gets it, the cache does not. If the
	// invalidation comes between this test and the Set, Get refuses it.
	if c.current(it, apiKey, s) {
		c.items.SetWithTTL(apiKey, it, 1, it.freshFor+c.cfg.MaxStale)
		// ristretto stores asynchronously: the hot slot serves the misses
		// that come after this load and before the Set lands.
		s.hot.Store(it)
	}
	return it, nil
}

// Invalidate drops the entries of apiKeys, including loads in flight: the
// next Get of each loads it again.
func (c *Cache) Invalidate(apiKeys ...string) {
	gen := c.gen.Add(1)
	for _, k := range apiKeys {
		c.slotOf(k).stamp(gen)
		c.loads.Forget(k) // later misses must not join a load from before the change
		c.items.Del(k)    // the memory; the stamp already hides the entry
	}
	c.stats.invalidations.Add(uint64(len(apiKeys)))
}

// InvalidateAll drops every entry. The old entries become invisible at once
// and give their room to new ones as they are replaced or expire.
func (c *Cache) InvalidateAll() {
	c.mu.Lock()
	c.epoch.Add(1)
	for k := range c.filling {
		c.loads.Forget(k)
	}
	c.mu.Unlock()
	c.stats.resets.Add(1)
}

// Follow applies the store's change feed until ctx ends or feed closes: the
// named keys are invalidated, and a Reset (the feed had a gap) drops
// everything. A feed that closes also drops everything, since changes after
// it would go unseen.
func (c *Cache) Follow(ctx context.Context, feed <-chan store.Change) {
	for {
		select {
		case <-ctx.Done():
			return
		case change, ok := <-feed:
			if !ok {
				c.InvalidateAll()
				return
			}
			if change.Reset {
				c.InvalidateAll()
			} else {
				c.Invalidate(change.APIKeys...)
			}
		}
	}
}

// Close stops the cache's background work and drops its entries.
func (c *Cache) Close() { c.items.Close() }

// Stats counts the cache's work since it was made.
type Stats struct {
	Hits          uint64 // Gets answered by a fresh entry
	NegativeHits  uint64 // Gets answered by a remembered unknown key
	Misses        uint64 // Gets that asked the store (shared loads count each caller)
	Loads         uint64 // calls to the Loader
	Stale         uint64 // Gets answered by a stale entry because the store failed
	Unavailable   uint64 // Gets that failed with ErrUnavailable
	Invalidations uint64 // API keys invalidated
	Resets        uint64 // InvalidateAll calls
}

type stats struct {
	hits, negativeHits, misses, loads, stale, unavailable, invalidations, resets atomic.Uint64
}

// Stats returns the counters.
func (c *Cache) Stats() Stats {
	return Stats{
		Hits:          c.stats.hits.Load(),
		NegativeHits:  c.stats.negativeHits.Load(),
		Misses:        c.stats.misses.Load(),
		Loads:         c.stats.loads.Load(),
		Stale:         c.stats.stale.Load(),
		Unavailable:   c.stats.unavailable.Load(),
		Invalidations: c.stats.invalidations.Load(),
		Resets:        c.stats.resets.Load(),
	}
}
