// Package redisstore is the Redis engine under package store, for several
// nodes sharing one Redis (standalone, Sentinel or Cluster): the client
// setup (client.go), the Backend and its transactions (redis.go, tx.go),
// the wait for a replica (replicas.go), the change feed (feed.go) and the
// nonces the nodes share for replay protection (nonces.go, with the lean
// RESP pipe of nonces_pipe.go). See docs/architecture.md, docs/coherence.md
// and docs/replay-protection.md.
package redisstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/accessauth/caddy-access-auth/store"
)

// Limits of the Redis backend.
const (
	// redisMaxTxAttempts bounds the optimistic retries of one Update.
	redisMaxTxAttempts = 32
	// redisMaxTxBackoff caps the random pause between two attempts.
	redisMaxTxBackoff = 20 * time.Millisecond
	// redisChangesMaxLen is the approximate length the change stream is trimmed
	// to; a node that falls further behind drops its cache.
	redisChangesMaxLen = 10000
)

// Backend is the store.Backend for several nodes sharing one Redis
// (standalone, Sentinel or Cluster).
//
// Every key of the data set carries the hash tag {<prefix>}, so it lives in
// one Cluster slot and every transaction is one MULTI/EXEC:
//
//	{p}:t:<table>   hash, field = record ID, value = record
//	{p}:i:<table>   sorted set of the record IDs (score 0), for Scan in ID order;
//	                none for a lookup table (store.IsLookupTable), which
//	                nothing lists (credentials among them: versions before
//	                this kept {p}:i:credentials, which nothing reads now)
//	{p}:rev         the revision, incremented by every Update that Notifies
//	{p}:changes     stream of those Updates: fields rev and api_keys (\n-separated)
//	{p}:writes      the count of Updates that wrote, incremented in each one's
//	                MULTI (UpdateAhead tells by it what changed since it read)
//
// Nonces (Backend.Nonces) live outside the tag so they spread over a Cluster:
//
//	<p>:nonce:<s>          set of "<apiKey>:<nonce>" of the requests signed in Unix second s
//	<p>:nonce:{n<i>}:<s>   the same in a Cluster, for each of 16 hash tags
type Backend struct {
	client redis.UniversalClient
	prefix string // the KeyPrefix, without braces

	revKey     string
	changesKey string
	writesKey  string
	// anchorKey is never written: watching it only routes a Cluster
	// transaction to the slot of the data set.
	anchorKey string

	tables   atomic.Pointer[map[string]redisTableKeys] // copy on write
	tablesMu sync.Mutex                                // serializes the copies

	// replicatedMaster is the replication ID of the last master seen with
	// a replica (see awaitReplica).
	replicatedMaster atomic.Pointer[string]

	// recent are this process's last writes, for UpdateAhead.
	recent recentWrites

	closing context.Context // ends subscribers when the backend closes
	close   context.CancelFunc
}

// redisTableKeys are the Redis keys of one table.
type redisTableKeys struct {
	records string // hash
	index   string // sorted set
}

// Open creates the Redis backend. It checks the configuration and the
// credentials (a wrong password, an unknown user or one that may not run a
// command the backend needs is an error) but not that Redis is reachable: a
// node starts while Redis is down and answers 503 until it comes back.
func Open(ctx context.Context, opts Options) (*Backend, error) {
	uopts, err := redisUniversalOptions(opts)
	if err != nil {
		return nil, err
	}
	prefix := opts.KeyPrefix
	if prefix == "" {
		prefix = DefaultKeyPrefix
	}
	if err := checkRedisKeyPrefix(prefix); err != nil {
		return nil, err
	}
	b := newRedisBackend(newRedisClient(uopts), prefix)
	if err := b.checkAccess(ctx); err != nil {
		b.Close()
		return nil, fmt.Errorf("redis: %w", err)
	}
	return b, nil
}

// checkAccess returns an authentication or permission error of the
// commands beyond the data set's that the backend runs: INFO and WAIT, with
// which a write waits for a replica. Other errors (Redis unreachable, WAIT
// sent to a replica) are not its concern, and an unreachable Redis is
// asked once only.
func (b *Backend) checkAccess(ctx context.Context) error {
	for _, check := range []func() error{
		func() error { return b.Ping(ctx) },
		func() error { return b.client.Info(ctx, "replication").Err() },
		func() error { return b.client.Do(ctx, "WAIT", 0, 0).Err() }, // answers at once: it asks for no replica
	} {
		err := check()
		if redis.IsAuthError(err) || redis.IsPermissionError(err) {
			return err
		}
		if errors.Is(err, store.ErrUnavailable) {
			return nil // Ping found Redis unreachable: the others would wait in vain
		}
	}
	return nil
}

func newRedisBackend(client redis.UniversalClient, prefix string) *Backend {
	tag := "{" + prefix + "}"
	b := &Backend{
		client:     client,
		prefix:     prefix,
		revKey:     tag + ":rev",
		changesKey: tag + ":changes",
		writesKey:  tag + ":writes",
		anchorKey:  tag + ":tx",
	}
	b.tables.Store(&map[string]redisTableKeys{})
	b.closing, b.close = context.WithCancel(context.Background())
	return b
}

// Client returns the underlying client, e.g. for pool metrics.
func (b *Backend) Client() redis.UniversalClient { return b.client }

// Ping reports whether the data set's server answers (the store_up metric).
func (b *Backend) Ping(ctx context.Context) error {
	if err := b.client.Exists(ctx, b.revKey).Err(); err != nil {
		return redisUnavailable(err)
	}
	return nil
}

// Close releases the client and ends every subscription.
func (b *Backend) Close() error {
	b.close()
	return b.client.Close()
}

// redisUnavailable wraps a Redis error so errors.Is(err,
// store.ErrUnavailable) holds and the cause stays visible.
func redisUnavailable(err error) error {
	return fmt.Errorf("%w: redis: %w", store.ErrUnavailable, err)
}

// keys returns the Redis keys of a table, building them once.
func (b *Backend) keys(table string) redisTableKeys {
	if k, ok := (*b.tables.Load())[table]; ok {
		return k
	}
	b.tablesMu.Lock()
	defer b.tablesMu.Unlock()
	old := *b.tables.Load()
	if k, ok := old[table]; ok {
		return k
	}
	tag := "{" + b.prefix + "}"
	k := redisTableKeys{records: tag + ":t:" + table, index: tag + ":i:" + table}
	next := make(map[string]redisTableKeys, len(old)+1)
	for t, v := range old {
		next[t] = v
	}
	next[table] = k
	b.tables.Store(&next)
	return k
}

// Get reads one record with one HGET.
func (b *Backend) Get(ctx context.Context, table, id string) ([]byte, error) {
	v, err := b.client.HGet(ctx, b.keys(table).records, id).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, redisUnavailable(err)
	}
	return v, nil
}

// View runs fn once with plain reads. Redis has no read snapshot: records
// read by different calls may come from different revisions.
func (b *Backend) View(ctx context.Context, fn func(store.Tx) error) error {
	return fn(&redisTx{ctx: ctx, b: b, conn: b.client})
}

// Update runs fn as an optimistic transaction: every table fn reads is
// WATCHed, its writes are buffered, and one MULTI/EXEC applies them together
// with the revision increment and the change stream entry (when fn
// Notified). When another node changed a watched table first, EXEC fails
// and fn runs again. A committed write then waits for a replica
// (awaitReplica).
func (b *Backend) Update(ctx context.Context, fn func(store.Tx) error) error {
	return b.UpdateStaged(ctx, fn, nil)
}

// UpdateStaged is Update that calls visible (unless nil) once the write
// committed on the master, before the wait for a replica: store.ImportFrom
// reads and prepares its next batch meanwhile.
func (b *Backend) UpdateStaged(ctx context.Context, fn func(store.Tx) error, visible func()) error {
	for attempt := 1; ; attempt++ {
		err := b.client.Watch(ctx, func(rtx *redis.Tx) error {
			return b.try(ctx, rtx, fn, visible)
		}, b.anchorKey)
		var fe redisFnError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &fe):
			return fe.err
		case !redisRetryable(err):
			return redisUnavailable(err)
		case attempt == redisMaxTxAttempts:
			return fmt.Errorf("%w: redis: transaction failed %d times, last: %w", store.ErrUnavailable, attempt, err)
		}
		if !sleepCtx(ctx, rand.N(min(time.Millisecond<<attempt, redisMaxTxBackoff))) {
			return ctx.Err()
		}
	}
}

// redisRetryable says whether an Update attempt may succeed when run again:
// a watched table changed, or the server is switching roles (a Sentinel
// failover, a Cluster slot migration).
func redisRetryable(err error) bool {
	return errors.Is(err, redis.TxFailedErr) || redis.IsReadOnlyError(err) ||
		redis.IsTryAgainError(err) || redis.IsLoadingError(err) || redis.IsMasterDownError(err)
}

// redisFnError carries the error of Update's fn through go-redis's Watch,
// so it is returned as is rather than retried or wrapped.
type redisFnError struct{ err error }

func (e redisFnError) Error() string { return e.err.Error() }

// try runs fn once on a watching connection and commits its writes,
// calling visible (unless nil) once they are on the master.
func (b *Backend) try(ctx context.Context, rtx *redis.Tx, fn func(store.Tx) error, visible func()) error {
	tx := &redisTx{ctx: ctx, b: b, conn: rtx, watch: rtx, watched: map[string]bool{}}
	if err := fn(tx); err != nil {
		// fn's reads are not a snapshot: one may have seen another node's
		// write that landed after an earlier read, and fn failed on the
		// mix (a name "taken" by the very key it planned to create). An
		// EXEC fails when a watched table changed: then run fn again.
		if len(tx.watched) > 0 {
			if _, execErr := rtx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Ping(ctx)
				return nil
			}); errors.Is(execErr, redis.TxFailedErr) {
				return execErr
			}
		}
		return redisFnError{err}
	}
	return b.commit(ctx, rtx, tx, visible)
}

// commit applies a transaction's buffered writes with one MULTI/EXEC on
// rtx, which watches what the transaction read, and waits for a replica.
func (b *Backend) commit(ctx context.Context, rtx *redis.Tx, tx *redisTx, visible func()) error {
	if len(tx.writes) == 0 && len(tx.notify) == 0 {
		if visible != nil {
			visible()
		}
		return nil
	}
	var replication *redis.StringCmd
	var count *redis.IntCmd
	tables, size := tx.writesByTable()
	_, err := rtx.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for table, w := range tables {
			w.queue(ctx, p, b.keys(table))
		}
		count = p.Incr(ctx, b.writesKey)
		// Only announcing Updates move the revision: a write that changes no
		// credential (MarkUsed, say) wakes no subscriber.
		if len(tx.notify) > 0 {
			// Plain EVAL, not EVALSHA: a NOSCRIPT inside MULTI would fail
			// only this command while the writes commit.
			p.Eval(ctx, redisCommitScript, []string{b.revKey, b.changesKey},
				redisChangesMaxLen, strings.Join(tx.notify, "\n"))
		}
		// The master's replicas as of this commit, read in its MULTI.
		replication = p.Info(ctx, "replication")
		return nil
	})
	if err != nil {
		return err
	}
	master, _ := parseRedisReplication(replication.Val())
	b.recent.add(master, count.Val(), tx.writes)
	// What was written is not needed while a replica catches up: a bulk
	// import merges and commits the next batches meanwhile.
	tx.writes, tx.reads = nil, nil
	if visible != nil {
		visible()
	}
	return b.awaitReplica(ctx, rtx, replication.Val(), size)
}

// redisCommitScript increments the revision and appends the change stream entry,
// inside the MULTI of an Update, so the entry carries the new revision.
const redisCommitScript = `
local rev = redis.call('INCR', KEYS[1])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], '*', 'rev', rev, 'api_keys', ARGV[2])
return rev`

// redisScanScript returns up to ARGV[2] records of a table (-1 = all) with IDs in
// the lexicographic range starting at ARGV[1], as id, value, id, value…
var redisScanScript = redis.NewScript(`
local ids = redis.call('ZRANGEBYLEX', KEYS[1], ARGV[1], '+', 'LIMIT', 0, tonumber(ARGV[2]))
` + redisScanValues)

// redisScanReverseScript is redisScanScript downwards from ARGV[1].
var redisScanReverseScript = redis.NewScript(`
local ids = redis.call('ZREVRANGEBYLEX', KEYS[1], ARGV[1], '-', 'LIMIT', 0, tonumber(ARGV[2]))
` + redisScanValues)

// redisScanValues ends both scan scripts: the values of the IDs found.
const redisScanValues = `local out = {}
for _, id in ipairs(ids) do
	local v = redis.call('HGET', KEYS[2], id)
	if v then
		out[#out + 1] = id
		out[#out + 1] = v
	end
end
return out`

// Interface guards
var (
	_ store.Backend       = (*Backend)(nil)
	_ store.StagedUpdater = (*Backend)(nil)
	_ store.AheadUpdater  = (*Backend)(nil)
)
