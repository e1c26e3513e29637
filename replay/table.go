package replay

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"math"
	"math/bits"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultMaxNonces is how many nonces LocalNonces is sized for by default:
// 38 MiB, enough for ~580 requests per second sustained with the default
// max_skew (nonces are kept 2 × 15m).
const DefaultMaxNonces = 1 << 20

const (
	// bucketSlots is how many nonces a bucket holds: 10 × 12 bytes and
	// its lock fill two cache lines.
	bucketSlots = 10
	// slotsPerNonce is how many slots the table has for each nonce it is
	// sized for: with 3, maxNonces nonces thrown at random into buckets of
	// 10 overflow theirs for 0.03 % of them (Poisson, mean 3.3 a bucket).
	slotsPerNonce = 3
)

// LocalNonces is the node's own replay protection (a Guard): a hash table
// of (API key, nonce) fingerprints with their expiry, allocated once and
// never grown. A nonce has one bucket of 10 slots, 128 bytes (two adjacent
// cache lines, one page), with its own lock, so a request costs one bucket
// probe, no allocation and no work on other nonces' behalf.
//
// It takes 38.4 bytes a nonce it is sized for (WithMaxNonces): 38 MiB for
// the default 1<<20, where the two generations of maps before it took
// 41-62 MiB. On Linux the table is mapped outside the Go heap (newBuckets),
// its pages resident as buckets are first used (huge pages where Linux
// grants them: adviseHugePages); a method that holds a bucket keeps the
// table alive to its end (runtime.KeepAlive), as the mapping goes with the
// table. Sized for the
// request rate × the nonce ttl (2 × max_skew), about 0.03 % of the nonces
// find their bucket full; with three times as many, most do.
//
// An expired slot is free. When a bucket has none, a new nonce takes the
// slot of the one that expires first, which is dropped before its time
// (displaced). The table then cannot tell a replay of it from a fresh
// request: it keeps the latest expiry it dropped (its horizon) and refuses
// every nonce that would expire no later (TooOld). It keeps a horizon
// for each of 256 groups of API keys: a key holder whose own nonces are
// dropped (say, requests dated ahead of the clock, which expire last)
// moves the horizon of its group only, not every key's. The check gives
// each nonce the expiry its request's date sets (two skew windows from the
// date, the retention of docs/replay-protection.md), so a replay of a dropped nonce expires as
// early as its original did and is refused, while requests signed
// recently, whose nonces expire later, get through: under a flood beyond
// its size the table narrows how long ago a request may have been signed,
// it never lets a replay through. Only requests with a valid signature
// reach it, so only key holders can fill it, and the keyed hash keeps them
// from aiming at one bucket.
//
// A table outlives its process when saved (WriteTo) at a clean stop and
// read back (ReadLocalNonces) at the next start: its hash key, nonces and
// horizons go over. A table that starts empty for want of a save (after a
// crash) cannot tell what the previous process accepted: made
// WithVouchesFrom(start), it refuses requests dated before the start
// (VouchesFor), so a request accepted before a crash is refused, unless it
// was dated after the start (signed by a clock ahead of the node's by more
// than the time from the crash to the restart). The bound lifts itself
// once the date window has passed the start. Clocks that lag get no
// margin: any would let through the replays of requests accepted within it
// before a quick restart.
type LocalNonces struct {
	key    nonceHashKey // a 56-bit fingerprint (its low byte is the key's group) within a bucket picked by 64 more: collisions are out of reach
	now    func() time.Time
	origin time.Time // a whole second: expiries are whole seconds since then
	// vouchesFrom is the earliest request date the table can vouch for: a
	// table that starts empty after a crash did not see what the crashed
	// process accepted (zero: no such bound).
	vouchesFrom time.Time
	size        int // nonces to make room for
	buckets     []nonceBucket
	// horizons holds, for each group of API keys, the latest expiry of a
	// displaced nonce of theirs (0: none yet); displaced counts them,
	// narrowed those displaced with more than half their time to go.
	horizons  [keyGroups]atomic.Uint32
	displaced atomic.Uint64
	narrowed  atomic.Uint64
}

// keyGroups is how many groups of API keys have a horizon of their own. A
// nonce's fingerprint carries its group in its low byte, so that a slot
// tells whose horizon its nonce moves.
const keyGroups = 256

// nonceBucket is 128 bytes. A table of any useful size is a large
// allocation, hence page aligned: a bucket is two whole cache lines of one
// page.
type nonceBucket struct {
	mu           sync.Mutex
	fingerprints [bucketSlots]uint64
	expiries     [bucketSlots]uint32 // seconds since origin; 0: empty
}

// NonceOption adjusts NewLocalNonces.
type NonceOption func(*LocalNonces)

// WithMaxNonces sets how many nonces the store makes room for (default
// DefaultMaxNonces).
func WithMaxNonces(n int) NonceOption {
	return func(l *LocalNonces) { l.size = max(1, n) }
}

// WithVouchesFrom makes the table refuse requests dated before t
// (VouchesFor): an empty table made after a crash cannot tell which of
// them the crashed process accepted.
func WithVouchesFrom(t time.Time) NonceOption {
	return func(l *LocalNonces) { l.vouchesFrom = t }
}

// WithNonceClock sets the time source (default time.Now).
func WithNonceClock(now func() time.Time) NonceOption {
	return func(l *LocalNonces) { l.now = now }
}

// NewLocalNonces makes an empty LocalNonces.
func NewLocalNonces(opts ...NonceOption) *LocalNonces {
	var key nonceHashKey
	var raw [len(key) * 8]byte
	_, _ = rand.Read(raw[:]) // never fails
	for i := range key {
		key[i] = binary.LittleEndian.Uint64(raw[8*i:])
	}
	return newLocalNonces(key, opts...)
}

func newLocalNonces(key nonceHashKey, opts ...NonceOption) *LocalNonces {
	l := &LocalNonces{key: key, now: time.Now, size: DefaultMaxNonces}
	for _, opt := range opts {
		opt(l)
	}
	// On the wall clock, as requests' dates are: a nonce's expiry, its date
	// plus a fixed time, then comes out the same whenever it is computed,
	// and in whole seconds, as saved tables keep it.
	l.origin = l.now().Truncate(time.Second)
	l.buckets = newBuckets(l, (l.size*slotsPerNonce+bucketSlots-1)/bucketSlots)
	adviseHugePages(l.buckets)
	return l
}

// VouchesFor reports whether the table can tell a replay of a request
// signed at date: not when it is dated before the table's WithVouchesFrom.
func (l *LocalNonces) VouchesFor(date time.Time) bool {
	return !date.Before(l.vouchesFrom)
}

// Prepare locates apiKey's nonce and starts loading its bucket into the
// CPU's cache without waiting for it. In a busy server the bucket is
// almost never cached (the table is tens of MiB, each nonce lands on a
// random bucket): a check that prepares the nonce first and verifies the
// signature meanwhile finds it there, instead of stalling on the load at
// Record.
func (l *LocalNonces) Prepare(apiKey, nonce string) Ticket {
	p := l.locate(apiKey, nonce)
	prefetchBucket(p.bucket)
	return Ticket{APIKey: apiKey, Nonce: nonce, place: p}
}

// Record records t's nonce for ttl from now unless it was recorded (and
// is unexpired) already. A request dated before the table's
// WithVouchesFrom (VouchesFor), or whose nonce expires by the horizon,
// is TooOld. t comes from this table's Prepare, or names the nonce alone.
func (l *LocalNonces) Record(_ context.Context, t Ticket, date, now time.Time, ttl time.Duration) Verdict {
	if !l.VouchesFor(date) {
		return TooOld
	}
	if t.place.bucket == nil {
		t.place = l.locate(t.APIKey, t.Nonce)
	}
	return l.record(t.place, now, ttl)
}

// Peek is Record's verdict for t at now, recording nothing.
func (l *LocalNonces) Peek(_ context.Context, t Ticket, date, now time.Time, ttl time.Duration) Verdict {
	if !l.VouchesFor(date) {
		return TooOld
	}
	return l.visit(l.locate(t.APIKey, t.Nonce), now, ttl, false)
}

// Seen records apiKey's nonce for ttl from the table's clock and reports
// whether it was recorded (and not expired) already; the date does not
// matter to the table. A nonce the table cannot vouch for (it expires no
// later than one it had to drop) counts as seen. It never fails.
func (l *LocalNonces) Seen(_ context.Context, apiKey, nonce string, _ time.Time, ttl time.Duration) (bool, error) {
	return l.record(l.locate(apiKey, nonce), l.now(), ttl) != Fresh, nil
}

// Recorded reports whether apiKey's nonce is recorded and unexpired by the
// table's clock, recording nothing.
func (l *LocalNonces) Recorded(_ context.Context, apiKey, nonce string, _ time.Time) (bool, error) {
	return l.visit(l.locate(apiKey, nonce), l.now(), 0, false) == Replayed, nil
}

// Displaced returns how many nonces the table has dropped before they
// expired, for want of room.
func (l *LocalNonces) Displaced() uint64 { return l.displaced.Load() }

// Narrowed returns how many of them had more than half their time to go
// (judged by the ttl of the nonce that took the slot). The check keeps a
// nonce two skew windows from its request's date, while the date check
// alone refuses its replay after one: a nonce dropped in its second half
// changes no answer, one dropped in its first half narrows how long ago a
// request may have been signed.
func (l *LocalNonces) Narrowed() uint64 { return l.narrowed.Load() }

// Horizon returns the latest expiry of a nonce dropped before its time:
// nonces of its key's group expiring by then are refused. It is the zero
// Time while the table has dropped none.
func (l *LocalNonces) Horizon() time.Time {
	var latest uint32
	for i := range l.horizons {
		latest = max(latest, l.horizons[i].Load())
	}
	if latest == 0 {
		return time.Time{}
	}
	return l.origin.Add(time.Duration(latest) * time.Second)
}

// noncePlace is where a nonce goes in the table: its bucket and its
// fingerprint.
type noncePlace struct {
	bucket      *nonceBucket
	fingerprint uint64
}

// record records the nonce at p for ttl from at unless it was recorded
// (and is unexpired) already or expires by the horizon.
func (l *LocalNonces) record(p noncePlace, at time.Time, ttl time.Duration) Verdict {
	return l.visit(p, at, ttl, true)
}

// visit is record's verdict for the nonce at p; it records the nonce only
// when told to (Peek is the same verdict with nothing recorded).
func (l *LocalNonces) visit(p noncePlace, at time.Time, ttl time.Duration, record bool) Verdict {
	since := l.since(at)
	now := seconds(since)
	expiry := seconds(since + ttl + time.Second - 1) // rounded up: never forgotten early
	b := p.bucket
	defer runtime.KeepAlive(l) // l's buckets live as long as l (newBuckets)
	b.mu.Lock()
	defer b.mu.Unlock()
	slot, seen := b.find(p.fingerprint, now)
	switch {
	case seen:
		return Replayed
	case expiry <= l.horizons[uint8(p.fingerprint)].Load():
		return TooOld
	}
	if record {
		l.take(b, slot, p.fingerprint, expiry, now)
	}
	return Fresh
}

// take puts fingerprint in b's slot until expiry. It holds b's lock.
func (l *LocalNonces) take(b *nonceBucket, slot int, fingerprint uint64, expiry, now uint32) {
	if old := b.expiries[slot]; old > now {
		// The horizon rises before the slot is taken, in the bucket's lock:
		// a replay of the displaced nonce, which must wait for the lock,
		// finds either the nonce or the new horizon.
		l.displace(&l.horizons[uint8(b.fingerprints[slot])], old, old-now > (expiry-now)/2)
	}
	b.fingerprints[slot], b.expiries[slot] = fingerprint, expiry
}

// displace counts a nonce dropped before its expiry and raises its group's
// horizon to it.
func (l *LocalNonces) displace(horizon *atomic.Uint32, expiry uint32, narrows bool) {
	l.displaced.Add(1)
	if narrows {
		l.narrowed.Add(1)
	}
	raise(horizon, expiry)
}

// raise raises horizon to expiry unless it is later already.
func raise(horizon *atomic.Uint32, expiry uint32) {
	for h := horizon.Load(); expiry > h && !horizon.CompareAndSwap(h, expiry); h = horizon.Load() {
	}
}

// find reports whether the bucket holds fingerprint unexpired at now, and
// if not, the slot for it: the one expiring first, an empty or expired one
// if any.
func (b *nonceBucket) find(fingerprint uint64, now uint32) (slot int, found bool) {
	for i, e := range b.expiries {
		if e > now && b.fingerprints[i] == fingerprint {
			return i, true
		}
		if e < b.expiries[slot] {
			slot = i
		}
	}
	return slot, false
}

// since is the time from the store's creation to at. A reading before it
// counts as the creation: a nonce is then kept longer, never shorter.
func (l *LocalNonces) since(at time.Time) time.Duration {
	return max(at.Sub(l.origin), 0)
}

// seconds is d in whole seconds, as an expiry: within 0 and 136 years.
func seconds(d time.Duration) uint32 {
	return uint32(min(max(d, 0)/time.Second, math.MaxUint32))
}

// locate returns the place of apiKey's nonce: the key's hash seeds two
// independent hashes of the nonce (so ("ab","c") and ("a","bc") stay
// apart), one picking the bucket evenly whatever their number. Nothing is
// copied and nothing allocated.
func (l *LocalNonces) locate(apiKey, nonce string) noncePlace {
	keyHash := l.key.hashString(0, apiKey)
	fingerprint := l.key.hashString(keyHash, nonce)
	spread := l.key.hashString(l.key.spreadSeed(keyHash), nonce)
	i, _ := bits.Mul64(spread, uint64(len(l.buckets)))
	// The low byte names the key's group (keyGroups): 56 bits of
	// fingerprint and the bucket's place still tell nonces apart.
	group := uint8(keyHash >> 56)
	return noncePlace{&l.buckets[i], fingerprint&^0xff | uint64(group)}
}

// Len returns how many unexpired nonces are remembered. It scans the whole
// table: for tests and metrics, not for a request's path.
func (l *LocalNonces) Len() int {
	now := seconds(l.since(l.now()))
	n := 0
	for i := range l.buckets {
		b := &l.buckets[i]
		b.mu.Lock()
		for _, e := range b.expiries {
			if e > now {
				n++
			}
		}
		b.mu.Unlock()
	}
	runtime.KeepAlive(l)
	return n
}

// Interface guards
var _ Guard = (*LocalNonces)(nil)
