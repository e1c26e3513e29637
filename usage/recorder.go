// Package usage counts each access key's requests per API group and UTC
// day — those let through ("allowed") and those refused 429 by a plan
// ("limited") — and adds them to the store's daily usage counters in
// batches, at most once a second, so counting costs the request path no
// store round trip (see docs/admin-api.md, "Usage per key").
//
// Recording is an atomic add on a slot found in a read-only map: no lock
// and no allocation once the key's slot exists. A key's first request of
// a day, or after a minute without one, takes a mutex and makes the slot,
// which a flush soon publishes in a new read-only map (see collect). A
// slot that counted nothing for a minute is left out of the next map, so
// the map holds the keys in use lately, not every key seen that day: with
// a million keys the difference is most of a node's memory. A flush that
// fails keeps its counts and retries them with the next one, up to
// MaxPending counters; beyond that it drops some and logs how many
// requests it lost.
package usage

import (
	"context"
	"maps"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/accessauth/caddy-access-auth/store"
)

// Defaults of a Recorder.
const (
	// FlushInterval is how often counts go to the store: a node that dies
	// loses at most this much of them.
	FlushInterval = time.Second
	// MaxPending bounds the counters a failing store leaves waiting for
	// the next flush (some bytes each: a few MiB at most).
	MaxPending = 100_000
	// flushBatch bounds one AddCounts, so one pipeline stays small.
	flushBatch = 1000
	// flushTimeout bounds one AddCounts.
	flushTimeout = 2 * time.Second
	// closeTimeout bounds the last flush: a config reload waits for it,
	// and an unreachable store must not hold the reload up.
	closeTimeout = time.Second
	// retireAfter is how many flushes in a row a slot may count nothing
	// before it leaves the map: a minute at FlushInterval.
	retireAfter = 60
	// publishEvery bounds the flushes a new slot waits to be published
	// (its key's requests take the mutex until then).
	publishEvery = 10
)

// Adder adds to the store's counters; *store.Store is one.
type Adder interface {
	AddCounts(ctx context.Context, deltas []store.CountDelta) error
}

// slotKey names the requests of one key to one group on one UTC day.
type slotKey struct {
	accessKeyID, group string
	day                int64 // days since 1970-01-01 UTC
}

// slot counts the requests of a slotKey since the last flush.
type slot struct {
	allowed, limited atomic.Int64
	// idle is how many flushes in a row found nothing to count; only
	// flushes (under flushMu) touch it.
	idle int
}

// keyedSlot is a slot with its key, outside a map.
type keyedSlot struct {
	key  slotKey
	slot *slot
}

// Recorder counts requests and adds them to the store in batches. Its
// zero value is not usable: call New.
type Recorder struct {
	adder      Adder
	logger     *zap.Logger
	maxPending int

	// slots is read-only once published: Record reads it without a lock.
	slots atomic.Pointer[map[slotKey]*slot]
	// mu guards fresh, the slots made since the last publication, and
	// locked, how many Records took mu since then.
	mu     sync.Mutex
	fresh  map[slotKey]*slot
	locked int

	// flushMu serializes flushes; it guards the rest.
	flushMu sync.Mutex
	pending map[string]store.CountDelta // counts the store refused, by counter name
	// unpublished counts the flushes since the last publication; scratch
	// holds fresh's slots while a flush reads them.
	unpublished int
	scratch     []keyedSlot

	stop context.CancelFunc
	done chan struct{}
}

// New returns a Recorder adding to adder, logging its failures to logger.
func New(adder Adder, logger *zap.Logger) *Recorder {
	r := &Recorder{
		adder:      adder,
		logger:     logger,
		maxPending: MaxPending,
		fresh:      make(map[slotKey]*slot),
		pending:    make(map[string]store.CountDelta),
	}
	r.slots.Store(&map[slotKey]*slot{})
	return r
}

// Record counts one request of the access key to group at (the time the
// check started): limited says it was refused 429 by a plan, else it was
// let through.
func (r *Recorder) Record(accessKeyID, group string, limited bool, at time.Time) {
	k := slotKey{accessKeyID: accessKeyID, group: group, day: dayOf(at)}
	if s := (*r.slots.Load())[k]; s != nil && s.add(limited) {
		return
	}
	// No slot, or one a flush sealed since this Record found it: the
	// map published before sealing has it no more.
	for !r.freshSlot(k).add(limited) {
	}
}

// add counts one request in s, unless a flush sealed s.
func (s *slot) add(limited bool) bool {
	c := &s.allowed
	if limited {
		c = &s.limited
	}
	return c.Add(1) > 0
}

// sealed is what a flush leaves in the counters of a slot it retires: a
// Record that still finds the slot sees a negative sum and counts its
// request elsewhere, so nothing added after the flush's last read is lost.
const sealed = math.MinInt64 / 2

// freshSlot returns k's slot, making it when no flush has published it.
func (r *Recorder) freshSlot(k slotKey) *slot {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s := (*r.slots.Load())[k]; s != nil { // a flush published it meanwhile
		return s
	}
	r.locked++
	s := r.fresh[k]
	if s == nil {
		s = new(slot)
		r.fresh[k] = s
	}
	return s
}

// dayOf is the UTC day of t, in days since the epoch.
func dayOf(t time.Time) int64 {
	return t.Unix() / secondsPerDay
}

const secondsPerDay = 24 * 60 * 60

// Start flushes every interval until Close.
func (r *Recorder) Start(interval time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	r.stop, r.done = cancel, make(chan struct{})
	go func() {
		defer close(r.done)
		ticker := time.NewTicker(interval)
		defer ticker.Stop()
		for {
			select {
			case <-ticker.C:
				r.Flush(ctx) // Close cancels a flush in flight: it flushes again
			case <-ctx.Done():
				return
			}
		}
	}()
}

// Close stops the flushes Start began and flushes once more, for at most
// a second: what the store has not taken then is lost, and logged.
func (r *Recorder) Close() {
	if r.stop != nil {
		r.stop()
		<-r.done
	}
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	if lost := r.Flush(ctx); lost > 0 {
		r.logger.Error("daily usage not recorded at stop: the store refused it", zap.Int64("requests", lost))
	}
}

// Flush adds the counts recorded since the last flush, with those earlier
// flushes could not add, to the store. It returns how many requests'
// counts are still waiting (0 when the store took them all).
func (r *Recorder) Flush(ctx context.Context) (waiting int64) {
	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	r.collect()
	if len(r.pending) == 0 {
		return 0
	}
	batch := make([]store.CountDelta, 0, min(len(r.pending), flushBatch))
	var err error
	for _, d := range r.pending { // add forgets what it added: deleting while ranging is allowed
		batch = append(batch, d)
		if len(batch) == cap(batch) {
			if err = r.add(ctx, batch); err != nil {
				break
			}
			batch = batch[:0]
		}
	}
	if err == nil && len(batch) > 0 {
		err = r.add(ctx, batch)
	}
	if err == nil {
		return 0
	}
	r.bound()
	for _, d := range r.pending {
		waiting += d.Delta
	}
	r.logger.Warn("recording daily usage: the store refused it; retrying with the next flush",
		zap.Int("counters", len(r.pending)), zap.Int64("requests", waiting), zap.Error(err))
	return waiting
}

// add adds one batch and forgets it on success.
func (r *Recorder) add(ctx context.Context, batch []store.CountDelta) error {
	ctx, cancel := context.WithTimeout(ctx, flushTimeout)
	defer cancel()
	if err := r.adder.AddCounts(ctx, batch); err != nil {
		return err
	}
	for _, d := range batch {
		delete(r.pending, d.Name)
	}
	return nil
}

// collect moves the slots' counts into pending, and publishes a new map
// when there are fresh slots to add or idle ones to leave out, as soon as
// that pays: copying the map costs a step a slot, so it waits until the
// Records that took the mutex, with the slots to leave out, number an
// eighth of the map — or for publishEvery flushes at most.
func (r *Recorder) collect() {
	old := *r.slots.Load()
	retiring := 0
	for k, s := range old {
		if r.take(k, s, 0) {
			s.idle = 0
		} else if s.idle++; s.idle >= retireAfter {
			retiring++
		}
	}
	r.unpublished++
	r.mu.Lock()
	for k, s := range r.fresh {
		r.scratch = append(r.scratch, keyedSlot{k, s})
	}
	var retired []keyedSlot
	if (len(r.fresh) > 0 || retiring > 0) && (8*(r.locked+retiring) >= len(old) || r.unpublished >= publishEvery) {
		next := make(map[slotKey]*slot, len(old)-retiring+len(r.fresh))
		for k, s := range old {
			if s.idle < retireAfter {
				next[k] = s
			} else {
				retired = append(retired, keyedSlot{k, s})
			}
		}
		maps.Copy(next, r.fresh)
		r.slots.Store(&next)
		r.fresh = make(map[slotKey]*slot) // not clear: a burst's buckets would stay
		r.locked, r.unpublished = 0, 0
	}
	r.mu.Unlock()
	for _, ks := range r.scratch {
		r.take(ks.key, ks.slot, 0)
	}
	clear(r.scratch)
	r.scratch = r.scratch[:0]
	// Sealed once the map without them is published: a Record that then
	// finds a sealed slot finds a new one there.
	for _, ks := range retired {
		r.take(ks.key, ks.slot, sealed)
	}
}

// take moves one slot's counts into pending, leaving 0 (or sealed) in its
// counters, and reports whether it had any.
func (r *Recorder) take(k slotKey, s *slot, leave int64) (counted bool) {
	for _, limited := range [...]bool{false, true} {
		c := &s.allowed
		if limited {
			c = &s.limited
		}
		n := c.Swap(leave)
		if n == 0 {
			continue
		}
		name, expires := store.DailyUsageCounter(k.accessKeyID, k.group, limited, time.Unix(k.day*secondsPerDay, 0))
		d := r.pending[name]
		d.Name, d.Delta, d.ExpiresAt = name, d.Delta+n, expires
		r.pending[name] = d
		counted = true
	}
	return counted
}

// bound drops counters beyond maxPending, logging the requests lost.
func (r *Recorder) bound() {
	excess := len(r.pending) - r.maxPending
	if excess <= 0 {
		return
	}
	var lost int64
	for name, d := range r.pending {
		if excess == 0 {
			break
		}
		lost += d.Delta
		delete(r.pending, name)
		excess--
	}
	r.logger.Error("daily usage lost: the store has refused it for too long",
		zap.Int("max_counters_waiting", r.maxPending), zap.Int64("requests", lost))
}
