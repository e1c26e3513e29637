package enforcement

import (
	"context"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultMaxNonces is how many nonces LocalNonces remembers at most by
// default: about 40-60 MiB, enough for ~580 requests per second sustained
// with the default max_skew (nonces are kept 2 × 15m).
const DefaultMaxNonces = 1 << 20

const nonceShards = 64

// LocalNonces is an in-process NonceStore for a single node: sharded maps
// of hashed (API key, nonce) pairs with their expiry. Each shard keeps two
// generations: nonces go into the current one, which becomes the previous
// one when it is a ttl old (or half the shard's room full), dropping the
// generation before it, whose nonces have all expired by then (or, under a
// flood beyond its size, are the oldest). A request thus costs two lookups
// and an insertion, never a scan. Under such a flood replay protection
// weakens for the oldest nonces rather than refusing fresh requests; size it
// for the request rate × 2 × max_skew. Only requests with a valid signature
// reach it, so only key holders can fill it.
type LocalNonces struct {
	seeds    [2]maphash.Seed // 128 bits of hash: collisions are out of reach
	now      func() time.Time
	shardCap int
	// maxTTL is the longest ttl asked for (routes may differ): a
	// generation is retired only once the longest could have passed.
	maxTTL atomic.Int64
	shards [nonceShards]nonceShard
}

type nonceShard struct {
	mu         sync.Mutex
	cur, prev  nonceGeneration
	curStarted int64    // Unix nanoseconds
	_          [16]byte // one shard per cache line: no false sharing of locks
}

// nonceGeneration is the nonces recorded over one period.
type nonceGeneration struct {
	seen      map[[2]uint64]int64 // → expiry, Unix nanoseconds
	expiresBy int64               // the latest expiry in seen
}

// NonceOption adjusts NewLocalNonces.
type NonceOption func(*LocalNonces)

// WithMaxNonces bounds how many nonces are remembered (default DefaultMaxNonces).
func WithMaxNonces(n int) NonceOption {
	return func(l *LocalNonces) { l.shardCap = max(1, n/nonceShards) }
}

// WithNonceClock sets the time source (default time.Now).
func WithNonceClock(now func() time.Time) NonceOption {
	return func(l *LocalNonces) { l.now = now }
}

// NewLocalNonces makes an empty LocalNonces.
func NewLocalNonces(opts ...NonceOption) *LocalNonces {
	l := &LocalNonces{
		seeds:    [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()},
		now:      time.Now,
		shardCap: DefaultMaxNonces / nonceShards,
	}
	for _, opt := range opts {
		opt(l)
	}
	now := l.now().UnixNano()
	for i := range l.shards {
		l.shards[i].cur.seen = make(map[[2]uint64]int64)
		l.shards[i].curStarted = now
	}
	return l
}

// Seen records apiKey's nonce for ttl and reports whether it was recorded
// (and not expired) already. It never fails.
func (l *LocalNonces) Seen(ctx context.Context, apiKey, nonce string, ttl time.Duration) (bool, error) {
	return l.SeenAt(ctx, apiKey, nonce, l.now(), ttl)
}

// SeenAt is Seen at the caller's clock reading.
func (l *LocalNonces) SeenAt(_ context.Context, apiKey, nonce string, at time.Time, ttl time.Duration) (bool, error) {
	key := [2]uint64{l.hash(0, apiKey, nonce), l.hash(1, apiKey, nonce)}
	now := at.UnixNano()
	s := &l.shards[key[0]%nonceShards]
	s.mu.Lock()
	defer s.mu.Unlock()
	if expiry, ok := s.cur.seen[key]; ok && expiry > now {
		return true, nil
	}
	if expiry, ok := s.prev.seen[key]; ok && expiry > now {
		return true, nil
	}
	// The period is the longest ttl of the nonces recorded so far, this
	// one's not yet: it goes into the generation that follows.
	s.retire(now, l.maxTTL.Load(), max(1, l.shardCap/2))
	if int64(ttl) > l.maxTTL.Load() {
		l.maxTTL.Store(int64(ttl)) // racing writers: a later Seen raises it again
	}
	expiry := now + int64(ttl)
	s.cur.seen[key] = expiry
	s.cur.expiresBy = max(s.cur.expiresBy, expiry)
	return false, nil
}

// retire moves the current generation to the previous one when it is
// period old, holds limit nonces or only expired ones, and drops a previous
// generation whose nonces have all expired.
func (s *nonceShard) retire(now, period int64, limit int) {
	if now-s.curStarted >= period || len(s.cur.seen) >= limit || len(s.cur.seen) > 0 && now >= s.cur.expiresBy {
		s.prev = s.cur
		s.cur = nonceGeneration{seen: make(map[[2]uint64]int64, len(s.prev.seen))}
		s.curStarted = now
	}
	if s.prev.seen != nil && now >= s.prev.expiresBy {
		s.prev = nonceGeneration{}
	}
}

func (l *LocalNonces) hash(i int, apiKey, nonce string) uint64 {
	var h maphash.Hash
	h.SetSeed(l.seeds[i])
	h.WriteString(apiKey)
	h.WriteByte(0) // keeps ("ab","c") apart from ("a","bc")
	h.WriteString(nonce)
	return h.Sum64()
}

// Len returns how many nonces are remembered, expired ones not yet
// forgotten included.
func (l *LocalNonces) Len() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += len(s.cur.seen) + len(s.prev.seen)
		s.mu.Unlock()
	}
	return n
}
