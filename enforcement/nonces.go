package enforcement

import (
	"context"
	"hash/maphash"
	"sync"
	"time"
)

// DefaultMaxNonces is how many nonces LocalNonces remembers at most by
// default: about 40-60 MiB, enough for ~580 requests per second sustained
// with the default max_skew (nonces are kept 2 × 15m).
const DefaultMaxNonces = 1 << 20

const nonceShards = 64

// LocalNonces is an in-process NonceStore for a single node: sharded maps
// of hashed (API key, nonce) pairs with their expiry. Memory is bounded:
// every Seen forgets a few expired entries it samples, and a shard that is
// full of live nonces forgets the one closest to expiry among a random
// sample to make room. Under a flood beyond its size replay protection thus
// weakens for the oldest nonces rather than refusing fresh requests; size it
// for the request rate × 2 × max_skew. Only requests with a valid signature
// reach it, so only key holders can fill it.
type LocalNonces struct {
	seeds    [2]maphash.Seed // 128 bits of hash: collisions are out of reach
	now      func() time.Time
	shardCap int
	shards   [nonceShards]nonceShard
}

type nonceShard struct {
	mu   sync.Mutex
	seen map[[2]uint64]int64 // → expiry, Unix nanoseconds
	_    [48]byte            // one shard per cache line: no false sharing of locks
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
	for i := range l.shards {
		l.shards[i].seen = make(map[[2]uint64]int64)
	}
	return l
}

// Seen records apiKey's nonce for ttl and reports whether it was recorded
// (and not expired) already. It never fails.
func (l *LocalNonces) Seen(_ context.Context, apiKey, nonce string, ttl time.Duration) (bool, error) {
	key := [2]uint64{l.hash(0, apiKey, nonce), l.hash(1, apiKey, nonce)}
	now := l.now().UnixNano()
	s := &l.shards[key[0]%nonceShards]
	s.mu.Lock()
	defer s.mu.Unlock()
	if expiry, ok := s.seen[key]; ok && expiry > now {
		return true, nil
	}
	s.forgetExpired(now, 3)
	if len(s.seen) >= l.shardCap {
		s.makeRoom()
	}
	s.seen[key] = now + int64(ttl)
	return false, nil
}

func (l *LocalNonces) hash(i int, apiKey, nonce string) uint64 {
	var h maphash.Hash
	h.SetSeed(l.seeds[i])
	h.WriteString(apiKey)
	h.WriteByte(0) // keeps ("ab","c") apart from ("a","bc")
	h.WriteString(nonce)
	return h.Sum64()
}

// forgetExpired looks at up to n entries (map iteration starts at a random
// place) and deletes those expired. Called once per insertion, it keeps
// expired entries to a fraction of the live ones.
func (s *nonceShard) forgetExpired(now int64, n int) {
	for key, expiry := range s.seen {
		if expiry <= now {
			delete(s.seen, key)
		}
		if n--; n == 0 {
			return
		}
	}
}

// makeRoom deletes the entry closest to expiry among a random sample.
func (s *nonceShard) makeRoom() {
	var victim [2]uint64
	earliest, n := int64(0), 8
	for key, expiry := range s.seen {
		if n == 8 || expiry < earliest {
			victim, earliest = key, expiry
		}
		if n--; n == 0 {
			break
		}
	}
	delete(s.seen, victim)
}

// Len returns how many nonces are remembered, expired ones not yet
// forgotten included.
func (l *LocalNonces) Len() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += len(s.seen)
		s.mu.Unlock()
	}
	return n
}
