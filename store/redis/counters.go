package redisstore

import (
	"context"
	"errors"

	"github.com/redis/go-redis/v9"

	"github.com/accessauth/caddy-access-auth/store"
)

// CounterKey is the Redis key of the counter name: a plain integer at
// <KeyPrefix>:count:<name>, outside the data set's hash tag so counters
// spread over a Cluster, and one key per counter so a script may INCRBY it.
func (b *Backend) CounterKey(name string) string {
	return b.prefix + ":count:" + name
}

// AddCounts implements store.Counters with one pipeline of INCRBY and
// PEXPIREAT per counter (a Cluster client splits it by node). A pipeline
// is not a transaction: when it fails part of it may have applied, so a
// caller that sends it again may count some deltas twice.
func (b *Backend) AddCounts(ctx context.Context, deltas []store.CountDelta) error {
	_, err := b.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, d := range deltas {
			key := b.CounterKey(d.Name)
			p.IncrBy(ctx, key, d.Delta)
			if !d.ExpiresAt.IsZero() {
				p.PExpireAt(ctx, key, d.ExpiresAt)
			}
		}
		return nil
	})
	if err != nil {
		return redisUnavailable(err)
	}
	return nil
}

// Counts implements store.Counters with one pipeline of GETs: MGET would
// fail across the slots of a Cluster.
func (b *Backend) Counts(ctx context.Context, names []string) ([]int64, error) {
	if len(names) == 0 {
		return []int64{}, nil
	}
	cmds := make([]*redis.StringCmd, len(names))
	_, err := b.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, name := range names {
			cmds[i] = p.Get(ctx, b.CounterKey(name))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, redisUnavailable(err)
	}
	values := make([]int64, len(names))
	for i, cmd := range cmds {
		v, err := cmd.Int64()
		switch {
		case errors.Is(err, redis.Nil):
		case err != nil:
			return nil, redisUnavailable(err)
		default:
			values[i] = v
		}
	}
	return values, nil
}

// Interface guard
var _ store.Counters = (*Backend)(nil)
