package redisstore

import (
	"context"
	"errors"
	"hash/maphash"
	"slices"
	"strconv"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/accessauth/caddy-access-auth/store"
)

// UpdateAhead runs fn at once, before its transaction may begin, reading
// without WATCH and buffering its writes; then it waits for ready and
// commits those writes if nothing fn read can have changed since. It
// tells so by the count of writes ({p}:writes, incremented in every
// Update's MULTI) and the master's replication ID, read before fn's first
// read and again under WATCH before the commit: the same master, and every
// write counted in between one of this process's own (recentWrites) that
// wrote no record fn read. Anything else (another node's write, a
// failover, a Scan, an error of fn, a write the commit's WATCH caught) and
// fn runs again inside the transaction, as UpdateStaged. A bulk import
// thus merges a batch (compiles credentials, encodes records) while the
// master applies the one before, instead of after it.
func (b *Backend) UpdateAhead(ctx context.Context, fn func(store.Tx) error, ready func() error, visible func()) error {
	run, runErr := b.runAhead(ctx, fn)
	if err := ready(); err != nil {
		return err
	}
	if runErr == nil {
		if done, err := b.commitAhead(ctx, run, visible); done {
			return err
		}
	}
	return b.UpdateStaged(ctx, fn, visible)
}

// aheadRun is fn's run before its transaction: what it read and wrote,
// and the count of writes and the master before its first read.
type aheadRun struct {
	tx     *redisTx
	master string
	count  int64
}

// errStaleRun says an aheadRun cannot be committed as it is.
var errStaleRun = errors.New("redis: the records read ahead may have changed")

// runAhead runs fn on a connection to the data set's master, without
// watching: Watch only routes it there.
func (b *Backend) runAhead(ctx context.Context, fn func(store.Tx) error) (*aheadRun, error) {
	var run *aheadRun
	err := b.client.Watch(ctx, func(rtx *redis.Tx) error {
		master, count, err := b.writesSoFar(ctx, rtx)
		if err != nil {
			return err
		}
		tx := &redisTx{ctx: ctx, b: b, conn: rtx, ahead: true, watched: map[string]bool{}}
		if err := fn(tx); err != nil {
			return err
		}
		if tx.scanned {
			return errStaleRun
		}
		run = &aheadRun{tx: tx, master: master, count: count}
		return nil
	}, b.anchorKey)
	return run, err
}

// writesSoFar reads the master's replication ID and the count of writes.
func (b *Backend) writesSoFar(ctx context.Context, rtx *redis.Tx) (master string, count int64, err error) {
	var info *redis.StringCmd
	var n *redis.StringCmd
	_, err = rtx.Pipelined(ctx, func(p redis.Pipeliner) error {
		info = p.Info(ctx, "replication")
		n = p.Get(ctx, b.writesKey)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return "", 0, redisUnavailable(err)
	}
	if master, _ = parseRedisReplication(info.Val()); master == "" {
		return "", 0, errStaleRun // not a master: there is no count to trust
	}
	if n.Err() == nil {
		if count, err = strconv.ParseInt(n.Val(), 10, 64); err != nil {
			return "", 0, errStaleRun
		}
	}
	return master, count, nil
}

// commitAhead commits run's writes if nothing it read changed since; done
// says it tried the MULTI, successfully or not, so fn must not run again.
func (b *Backend) commitAhead(ctx context.Context, run *aheadRun, visible func()) (done bool, err error) {
	keys := make([]string, 0, len(run.tx.watched)+2)
	keys = append(keys, b.anchorKey, b.writesKey)
	for table := range run.tx.watched {
		keys = append(keys, table)
	}
	err = b.client.Watch(ctx, func(rtx *redis.Tx) error {
		master, count, err := b.writesSoFar(ctx, rtx)
		if err != nil {
			return err
		}
		if master != run.master || !b.recent.onlyOwn(master, run.count, count, run.tx.reads) {
			return errStaleRun
		}
		tx := run.tx
		tx.conn, tx.watch, tx.ahead = rtx, rtx, false
		done = true
		return b.commit(ctx, rtx, tx, visible)
	}, keys...)
	var fe redisFnError
	switch {
	case errors.As(err, &fe):
		return true, fe.err
	case done && redisRetryable(err):
		return false, nil // a write since the WATCH, a failover: fn runs again
	case done && err != nil:
		return true, redisUnavailable(err)
	}
	return done, nil
}

// recentWrites are the last writes this process committed, by the count
// of writes each one's MULTI returned, so that UpdateAhead can tell its
// own writes from others'.
type recentWrites struct {
	mu      sync.Mutex
	seed    maphash.Seed
	master  string // the master they were committed on
	entries [recentWritesKept]recentWrite
}

// recentWritesKept is enough for an import's batches (at most two commit
// between a batch's run ahead and its transaction) and a few other writes.
const recentWritesKept = 4

// recentWrite is one write: its count, and the hashes of the records it
// wrote, sorted (a bulk import's batches are large: their values and the
// transaction's map of them are not kept). Two records of one hash make a
// write ahead run again, which is safe.
type recentWrite struct {
	count  int64
	hashes []uint64
}

func (r *recentWrites) hash(ref redisRecordRef) uint64 { return maphash.Comparable(r.seed, ref) }

// add records a write committed on master as the count-th.
func (r *recentWrites) add(master string, count int64, records map[redisRecordRef]redisPendingWrite) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seed == (maphash.Seed{}) {
		r.seed = maphash.MakeSeed()
	}
	if master != r.master {
		r.master, r.entries = master, [recentWritesKept]recentWrite{}
	}
	e := &r.entries[count%recentWritesKept]
	e.count, e.hashes = count, e.hashes[:0]
	for ref := range records {
		e.hashes = append(e.hashes, r.hash(ref))
	}
	slices.Sort(e.hashes)
}

// onlyOwn says whether every write counted after from, up to to, on
// master, is one of this process's that wrote none of read's records.
func (r *recentWrites) onlyOwn(master string, from, to int64, read map[redisRecordRef][]byte) bool {
	if to < from || to-from > recentWritesKept {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if to == from {
		return true
	}
	if master != r.master {
		return false
	}
	var between []*recentWrite
	for n := from + 1; n <= to; n++ {
		w := &r.entries[n%recentWritesKept]
		if w.count != n {
			return false
		}
		between = append(between, w)
	}
	for ref := range read {
		h := r.hash(ref)
		for _, w := range between {
			if _, found := slices.BinarySearch(w.hashes, h); found {
				return false
			}
		}
	}
	return true
}
