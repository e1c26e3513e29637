package redisstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/accessauth/caddy-access-auth/store"
)

// redisTx is the store.Tx of View (watch == nil: read-only), of one attempt
// of Update, and of UpdateAhead's run before its transaction (ahead).
type redisTx struct {
	ctx     context.Context
	b       *Backend
	conn    redis.Cmdable
	watch   *redis.Tx
	watched map[string]bool // record hashes already watched (ahead: read)
	// ahead: writes are buffered, reads not watched; UpdateAhead checks
	// them when it commits. A Scan's range cannot be checked so: scanned.
	ahead, scanned bool
	writes         map[redisRecordRef]redisPendingWrite
	reads          map[redisRecordRef][]byte // records read, nil = none
	notify         []string                  // API keys to announce, each once
	noted          map[string]struct{}       // notify as a set
}

// redisRecordRef names one record.
type redisRecordRef struct{ table, id string }

// redisPendingWrite is a buffered Put or Delete; the last one per record wins.
type redisPendingWrite struct {
	value   []byte
	deleted bool
}

var errRedisReadOnly = errors.New("store: write in a read-only transaction")

// watchTable watches a table's hash before fn reads it: every Put and Delete
// changes the hash, so EXEC fails if another node wrote the table since.
func (t *redisTx) watchTable(k redisTableKeys) error {
	if t.ahead {
		t.watched[k.records] = true
	}
	if t.watch == nil || t.watched[k.records] {
		return nil
	}
	if err := t.watch.Watch(t.ctx, k.records).Err(); err != nil {
		return redisUnavailable(err)
	}
	t.watched[k.records] = true
	return nil
}

func (t *redisTx) Get(table, id string) ([]byte, error) {
	if w, ok := t.writes[redisRecordRef{table, id}]; ok {
		if w.deleted {
			return nil, nil
		}
		return w.value, nil
	}
	if v, ok := t.reads[redisRecordRef{table, id}]; ok {
		return v, nil
	}
	k := t.b.keys(table)
	if err := t.watchTable(k); err != nil {
		return nil, err
	}
	v, err := t.conn.HGet(t.ctx, k.records, id).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, redisUnavailable(err)
	}
	if t.writable() {
		t.remember(redisRecordRef{table, id}, v)
	}
	return v, nil
}

// remember keeps a record read (nil: none), so a later Get costs no round
// trip and a Put of a record known to exist adds nothing to the index.
// View does not keep what Get reads: it writes nothing, and a long View
// would hold every record it read.
func (t *redisTx) remember(ref redisRecordRef, v []byte) {
	if t.reads == nil {
		t.reads = make(map[redisRecordRef][]byte)
	}
	t.reads[ref] = v
}

// Prefetch reads refs with one pipeline of an HMGET per table, after
// watching their tables with one WATCH, and keeps them for the Gets that
// follow.
func (t *redisTx) Prefetch(refs []store.RecordRef) error {
	byTable := make(map[string][]string)
	for _, r := range refs {
		byTable[r.Table] = append(byTable[r.Table], r.ID)
	}
	if err := t.watchTables(byTable); err != nil {
		return err
	}
	cmds := make(map[string]*redis.SliceCmd, len(byTable))
	_, err := t.conn.Pipelined(t.ctx, func(p redis.Pipeliner) error {
		for table, ids := range byTable {
			cmds[table] = p.HMGet(t.ctx, t.b.keys(table).records, ids...)
		}
		return nil
	})
	if err != nil {
		return redisUnavailable(err)
	}
	if t.reads == nil {
		t.reads = make(map[redisRecordRef][]byte, len(refs))
	}
	if t.writes == nil {
		// A bulk write puts about as many records as it reads: sized now,
		// the map does not grow a step at a time.
		t.writes = make(map[redisRecordRef]redisPendingWrite, len(refs))
	}
	for table, ids := range byTable {
		values := cmds[table].Val()
		if len(values) != len(ids) {
			return redisUnavailable(fmt.Errorf("HMGET of %d fields answered %d values", len(ids), len(values)))
		}
		for i, id := range ids {
			var v []byte
			if s, ok := values[i].(string); ok {
				v = []byte(s)
			}
			t.remember(redisRecordRef{table, id}, v)
		}
	}
	return nil
}

// watchTables watches the hashes of these tables not yet watched, with one
// WATCH.
func (t *redisTx) watchTables(tables map[string][]string) error {
	if t.ahead {
		for table := range tables {
			t.watched[t.b.keys(table).records] = true
		}
	}
	if t.watch == nil {
		return nil
	}
	var keys []string
	for table := range tables {
		if k := t.b.keys(table); !t.watched[k.records] {
			keys = append(keys, k.records)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	if err := t.watch.Watch(t.ctx, keys...).Err(); err != nil {
		return redisUnavailable(err)
	}
	for _, k := range keys {
		t.watched[k] = true
	}
	return nil
}

func (t *redisTx) Put(table, id string, value []byte) error {
	return t.write(table, id, value, false)
}

func (t *redisTx) Delete(table, id string) error {
	return t.write(table, id, nil, true)
}

// writable says whether the transaction may write: not in View.
func (t *redisTx) writable() bool { return t.watch != nil || t.ahead }

func (t *redisTx) write(table, id string, value []byte, deleted bool) error {
	if !t.writable() {
		return errRedisReadOnly
	}
	if t.writes == nil {
		t.writes = map[redisRecordRef]redisPendingWrite{}
	}
	t.writes[redisRecordRef{table, id}] = redisPendingWrite{value: value, deleted: deleted}
	return nil
}

// redisTableWrites are a transaction's writes to one table, as the
// arguments of one command each: a record costs the server an argument,
// not a command (a bulk import writes thousands of records at once).
type redisTableWrites struct {
	puts    []any     // HSET's field, value, field, value…
	indexed []redis.Z // ZADD's members: the IDs put that are new to the index
	deleted []string  // HDEL's fields
	removed []any     // ZREM's members: the IDs deleted
}

// writesByTable groups the buffered writes by table, and counts the bytes
// they carry (for the replica's wait).
func (t *redisTx) writesByTable() (map[string]*redisTableWrites, int) {
	tables := make(map[string]*redisTableWrites)
	size := 0
	for ref, w := range t.writes {
		size += len(ref.id) + len(w.value)
		tw := tables[ref.table]
		if tw == nil {
			tw = &redisTableWrites{}
			tables[ref.table] = tw
		}
		if w.deleted {
			tw.deleted = append(tw.deleted, ref.id)
			tw.removed = append(tw.removed, ref.id)
		} else {
			tw.puts = append(tw.puts, ref.id, w.value)
			if t.unindexed(ref) {
				tw.indexed = append(tw.indexed, redis.Z{Member: ref.id})
			}
		}
	}
	return tables, size
}

// unindexed says whether a record put needs a ZADD: not when its table is
// a lookup table (store.IsLookupTable: nothing lists it, so it has no
// index), nor when the transaction read the record and found it (every
// record's ID is in its table's index, and the table is watched, so EXEC
// fails if another node deleted it since). A bulk import that replaces
// records, or writes a key's name, API key and authorization link, saves
// the server that many sorted-set entries and updates.
func (t *redisTx) unindexed(ref redisRecordRef) bool {
	if store.IsLookupTable(ref.table) {
		return false
	}
	v, read := t.reads[ref]
	return !read || v == nil
}

// queue adds the commands of a table's writes to a MULTI. A record is put
// or deleted, never both (the last write wins), so their order is free.
func (w *redisTableWrites) queue(ctx context.Context, p redis.Pipeliner, k redisTableKeys) {
	if len(w.puts) > 0 {
		p.HSet(ctx, k.records, w.puts...)
		if len(w.indexed) > 0 {
			p.ZAdd(ctx, k.index, w.indexed...)
		}
	}
	if len(w.deleted) > 0 {
		p.HDel(ctx, k.records, w.deleted...)
		p.ZRem(ctx, k.index, w.removed...)
	}
}

// Scan reads the committed records; it does not see this transaction's
// own writes (store.Backend allows that).
func (t *redisTx) Scan(table, after string, limit int) ([]store.Record, error) {
	start := "-"
	if after != "" {
		start = "(" + after
	}
	return t.scan(redisScanScript, table, start, limit)
}

// scan runs one of the scan scripts from start, a ZRANGEBYLEX bound.
func (t *redisTx) scan(script *redis.Script, table, start string, limit int) ([]store.Record, error) {
	k := t.b.keys(table)
	if err := t.watchTable(k); err != nil {
		return nil, err
	}
	t.scanned = t.scanned || t.ahead
	if limit <= 0 {
		limit = -1
	}
	if store.IsLookupTable(table) {
		return t.scanUnindexed(k, start, limit, script == redisScanReverseScript)
	}
	var scripter redis.Scripter = t.b.client
	if t.watch != nil {
		scripter = t.watch
	}
	res, err := script.Run(t.ctx, scripter, []string{k.index, k.records}, start, limit).Slice()
	if err != nil {
		return nil, redisUnavailable(err)
	}
	records := make([]store.Record, 0, len(res)/2)
	for i := 0; i+1 < len(res); i += 2 {
		id, _ := res[i].(string)
		v, _ := res[i+1].(string)
		records = append(records, store.Record{ID: id, Value: []byte(v)})
	}
	return records, nil
}

// scanUnindexed is scan for a lookup table, which has no index: it reads
// the whole hash and sorts it. Store never lists these tables; this is for
// tools and tests.
func (t *redisTx) scanUnindexed(k redisTableKeys, start string, limit int, reverse bool) ([]store.Record, error) {
	all, err := t.conn.HGetAll(t.ctx, k.records).Result()
	if err != nil {
		return nil, redisUnavailable(err)
	}
	bound, exclusive := strings.CutPrefix(start, "(")
	var records []store.Record
	for id, v := range all {
		if exclusive && (!reverse && id <= bound || reverse && id >= bound) {
			continue
		}
		records = append(records, store.Record{ID: id, Value: []byte(v)})
	}
	slices.SortFunc(records, func(a, b store.Record) int {
		if reverse {
			return strings.Compare(b.ID, a.ID)
		}
		return strings.Compare(a.ID, b.ID)
	})
	if limit >= 0 && len(records) > limit {
		records = records[:limit]
	}
	return records, nil
}

// ScanReverse is Scan in descending ID order.
func (t *redisTx) ScanReverse(table, before string, limit int) ([]store.Record, error) {
	start := "+"
	if before != "" {
		start = "(" + before
	}
	return t.scan(redisScanReverseScript, table, start, limit)
}

// Notify is ignored in View, which cannot commit.
func (t *redisTx) Notify(apiKeys ...string) {
	if !t.writable() {
		return
	}
	if t.noted == nil {
		t.noted = make(map[string]struct{})
	}
	for _, k := range apiKeys {
		if _, dup := t.noted[k]; !dup {
			t.noted[k] = struct{}{}
			t.notify = append(t.notify, k)
		}
	}
}

// Interface guards
var (
	_ store.Tx         = (*redisTx)(nil)
	_ store.Prefetcher = (*redisTx)(nil)
)
