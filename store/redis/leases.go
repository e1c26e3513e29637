package redisstore

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// leaseScript adds up to ARGV[1] to the counter KEYS[1] without taking it
// beyond ARGV[2], sets its expiry to ARGV[3] (Unix ms, 0: none) when it
// adds, and answers {added, value}. One key: Cluster-safe.
var leaseScript = redis.NewScript(`
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local grant = math.min(tonumber(ARGV[1]), tonumber(ARGV[2]) - used)
if grant <= 0 then
	return {0, used}
end
used = redis.call('INCRBY', KEYS[1], grant)
if tonumber(ARGV[3]) > 0 then
	redis.call('PEXPIREAT', KEYS[1], ARGV[3])
end
return {grant, used}
`)

// Lease takes a block of up to want tokens of a budget shared by several
// nodes: it adds them to the counter name (at CounterKey) unless that would
// take it beyond limit, in which case it adds what is left. It returns what
// it added and the counter's value after (docs/usage-plans.md).
func (b *Backend) Lease(ctx context.Context, name string, want, limit int64, expiresAt time.Time) (granted, used int64, err error) {
	var expiry int64
	if !expiresAt.IsZero() {
		expiry = expiresAt.UnixMilli()
	}
	v, err := leaseScript.Run(ctx, b.client, []string{b.CounterKey(name)}, want, limit, expiry).Int64Slice()
	if err != nil || len(v) != 2 {
		return 0, 0, redisUnavailable(err)
	}
	return v[0], v[1], nil
}

// nodesScript records node ARGV[2] as alive until ARGV[1] + ARGV[3] (Unix
// ms) in the sorted set KEYS[1] (scores: until when), drops the nodes no
// longer alive, keeps the set as long as its last node, and answers how
// many are.
var nodesScript = redis.NewScript(`
local now = tonumber(ARGV[1])
local ttl = tonumber(ARGV[3])
redis.call('ZADD', KEYS[1], now + ttl, ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], last[2])
return redis.call('ZCARD', KEYS[1])
`)

// Nodes announces node as alive for ttl among the nodes sharing budgets
// and returns how many are alive (the divisor of a node's local share of a
// budget while Redis fails, docs/usage-plans.md).
func (b *Backend) Nodes(ctx context.Context, node string, ttl time.Duration) (int64, error) {
	n, err := nodesScript.Run(ctx, b.client, []string{b.prefix + ":nodes"}, time.Now().UnixMilli(), node, ttl.Milliseconds()).Int64()
	if err != nil {
		return 0, redisUnavailable(err)
	}
	return n, nil
}
