package boltstore

import (
	"context"
	"encoding/binary"
	"time"

	"go.etcd.io/bbolt"

	"github.com/accessauth/caddy-access-auth/store"
)

// countersBucket holds the counters: name → value (int64) and expiry (Unix
// nanoseconds, 0 = never), both big-endian.
const countersBucket = "counters"

// countersSweepInterval is how often AddCounts also deletes the expired
// counters: reads already ignore them, the sweep only returns their space.
const countersSweepInterval = 10 * time.Minute

// countRecordSize is the length of a counter's value in countersBucket.
const countRecordSize = 16

// AddCounts implements store.Counters in one bbolt transaction. An expired
// counter starts again from 0.
func (b *Backend) AddCounts(ctx context.Context, deltas []store.CountDelta) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	now := time.Now()
	sweep := b.sweepDue(now)
	return boltErr(b.db.Update(func(tx *bbolt.Tx) error {
		bucket, err := tx.CreateBucketIfNotExists([]byte(countersBucket))
		if err != nil {
			return err
		}
		for _, d := range deltas {
			value := countValue(bucket.Get([]byte(d.Name)), now) + d.Delta
			var expires int64
			if !d.ExpiresAt.IsZero() {
				expires = d.ExpiresAt.UnixNano()
			}
			// A new slice each time: bbolt keeps the value until the commit.
			record := binary.BigEndian.AppendUint64(make([]byte, 0, countRecordSize), uint64(value))
			record = binary.BigEndian.AppendUint64(record, uint64(expires))
			if err := bucket.Put([]byte(d.Name), record); err != nil {
				return err
			}
		}
		if sweep {
			return sweepCounters(bucket, now)
		}
		return nil
	}))
}

// Counts implements store.Counters.
func (b *Backend) Counts(ctx context.Context, names []string) ([]int64, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := time.Now()
	values := make([]int64, len(names))
	err := b.db.View(func(tx *bbolt.Tx) error {
		bucket := tx.Bucket([]byte(countersBucket))
		if bucket == nil {
			return nil
		}
		for i, name := range names {
			values[i] = countValue(bucket.Get([]byte(name)), now)
		}
		return nil
	})
	if err != nil {
		return nil, boltErr(err)
	}
	return values, nil
}

// sweepDue says whether the AddCounts starting at now sweeps, and claims
// the sweep so concurrent callers do not repeat it.
func (b *Backend) sweepDue(now time.Time) bool {
	last := b.countersSwept.Load()
	return now.UnixNano()-last >= int64(countersSweepInterval) &&
		b.countersSwept.CompareAndSwap(last, now.UnixNano())
}

// countValue reads a counter's record: 0 when missing, malformed or
// expired at now.
func countValue(record []byte, now time.Time) int64 {
	if len(record) != countRecordSize || countExpired(record, now) {
		return 0
	}
	return int64(binary.BigEndian.Uint64(record[:8]))
}

// countExpired says whether a counter's record has expired at now.
func countExpired(record []byte, now time.Time) bool {
	expires := int64(binary.BigEndian.Uint64(record[8:]))
	return expires != 0 && expires <= now.UnixNano()
}

// sweepCounters deletes the counters expired at now.
func sweepCounters(bucket *bbolt.Bucket, now time.Time) error {
	var expired [][]byte
	err := bucket.ForEach(func(name, record []byte) error {
		if len(record) != countRecordSize || countExpired(record, now) {
			expired = append(expired, append([]byte(nil), name...))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, name := range expired {
		if err := bucket.Delete(name); err != nil {
			return err
		}
	}
	return nil
}

// Interface guard
var _ store.Counters = (*Backend)(nil)
