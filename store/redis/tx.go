package redisstore

import (
	"bytes"
	"context"
	"errors"
	"slices"

	"github.com/redis/go-redis/v9"

	"github.com/accessauth/caddy-access-auth/store"
)

// redisTx is the store.Tx of View (watch == nil: read-only) and of one attempt
// of Update.
type redisTx struct {
	ctx     context.Context
	b       *Backend
	conn    redis.Cmdable
	watch   *redis.Tx
	watched map[string]bool // record hashes already watched
	writes  map[redisRecordRef]redisPendingWrite
	reads   map[redisRecordRef][]byte // Prefetched records, nil = none
	notify  []string
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
	return v, nil
}

// Prefetch reads refs with one pipeline, after watching their tables as
// Get does, and keeps them for the Gets that follow.
func (t *redisTx) Prefetch(refs []store.RecordRef) error {
	for _, r := range refs {
		if err := t.watchTable(t.b.keys(r.Table)); err != nil {
			return err
		}
	}
	cmds := make([]*redis.StringCmd, len(refs))
	_, err := t.conn.Pipelined(t.ctx, func(p redis.Pipeliner) error {
		for i, r := range refs {
			cmds[i] = p.HGet(t.ctx, t.b.keys(r.Table).records, r.ID)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return redisUnavailable(err)
	}
	if t.reads == nil {
		t.reads = make(map[redisRecordRef][]byte, len(refs))
	}
	for i, r := range refs {
		v, err := cmds[i].Bytes()
		if err != nil && !errors.Is(err, redis.Nil) {
			return redisUnavailable(err)
		}
		t.reads[redisRecordRef{r.Table, r.ID}] = v
	}
	return nil
}

func (t *redisTx) Put(table, id string, value []byte) error {
	return t.write(table, id, value, false)
}

func (t *redisTx) Delete(table, id string) error {
	return t.write(table, id, nil, true)
}

func (t *redisTx) write(table, id string, value []byte, deleted bool) error {
	if t.watch == nil {
		return errRedisReadOnly
	}
	if t.writes == nil {
		t.writes = map[redisRecordRef]redisPendingWrite{}
	}
	t.writes[redisRecordRef{table, id}] = redisPendingWrite{value: bytes.Clone(value), deleted: deleted}
	return nil
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
	if limit <= 0 {
		limit = -1
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
	if t.watch == nil {
		return
	}
	for _, k := range apiKeys {
		if !slices.Contains(t.notify, k) {
			t.notify = append(t.notify, k)
		}
	}
}

// Interface guards
var (
	_ store.Tx         = (*redisTx)(nil)
	_ store.Prefetcher = (*redisTx)(nil)
)
