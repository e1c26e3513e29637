package redisstore

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/accessauth/caddy-access-auth/store"
)

// Timing of a Redis subscription.
const (
	// redisFeedBlock is how long one XREAD waits for new entries.
	redisFeedBlock = time.Second
	// redisFeedCheckEvery is how often the subscription compares its position
	// with the server's revision, to notice a data set that was lost or
	// replaced (a restart without persistence, a failover to a lagging
	// replica) even when no new entry arrives.
	redisFeedCheckEvery = time.Second
	// Reconnection backoff bounds.
	redisFeedMinBackoff = 50 * time.Millisecond
	redisFeedMaxBackoff = time.Second
	// redisFeedBatch is the most entries one XREAD returns.
	redisFeedBatch = 256
)

// redisFeedPos is a subscription's position: the last stream entry it
// delivered and that entry's revision.
type redisFeedPos struct {
	id  redisStreamID
	rev uint64
}

// Subscribe follows the change stream with XREAD BLOCK from the last entry
// it delivered. It starts at the stream's current end. A gap — entries
// trimmed away while the node was disconnected, a stream lost with a Redis
// restart, a revision that went backwards — is delivered as a Reset change,
// after which the feed continues from the server's current position. The
// channel closes soon (within redisFeedBlock) after ctx ends or the backend
// closes.
func (b *Backend) Subscribe(ctx context.Context) <-chan store.Change {
	out := make(chan store.Change, 64)
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(b.closing, cancel)
	// The start position is taken before Subscribe returns, so a record the
	// caller loads afterwards cannot change unseen. If Redis is unreachable
	// now, the first position taken later may be past changes that a caller
	// saw the effects of, so the feed begins with a Reset.
	pos, err := b.feedPosition(ctx)
	go func() {
		defer close(out)
		defer cancel()
		defer stop()
		b.follow(ctx, out, pos, err != nil)
	}()
	return out
}

// follow delivers changes until ctx ends. lost says the position is unknown
// or stale: the next position read from the server begins with a Reset.
func (b *Backend) follow(ctx context.Context, out chan<- store.Change, pos redisFeedPos, lost bool) {
	send := func(c store.Change) bool {
		select {
		case out <- c:
			return true
		case <-ctx.Done():
			return false
		}
	}
	backoff := redisFeedMinBackoff
	verify := lost // compare pos with the server before the next read
	// pause waits after a failed call; what was missed meanwhile is found
	// by comparing positions once the server answers again.
	pause := func() bool {
		verify = true
		ok := sleepCtx(ctx, backoff)
		backoff = min(2*backoff, redisFeedMaxBackoff)
		return ok
	}
	var checked time.Time
	for ctx.Err() == nil {
		if verify || time.Since(checked) >= redisFeedCheckEvery {
			cur, err := b.feedPosition(ctx)
			if err != nil {
				if !pause() {
					return
				}
				continue
			}
			backoff = redisFeedMinBackoff
			verify, checked = false, time.Now()
			if lost || !pos.leadsTo(cur) {
				lost, pos = false, cur
				if !send(store.Change{Revision: cur.rev, Reset: true}) {
					return
				}
			}
		}
		streams, err := b.client.XRead(ctx, &redis.XReadArgs{
			Streams: []string{b.changesKey, pos.id.String()},
			Count:   redisFeedBatch,
			Block:   redisFeedBlock,
		}).Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			if !pause() {
				return
			}
			continue
		}
		for _, s := range streams {
			for _, m := range s.Messages {
				c, id, ok := parseRedisChange(m)
				if !ok || c.Revision != pos.rev+1 {
					// Entries were trimmed away or the stream was rebuilt.
					c = store.Change{Revision: c.Revision, Reset: true}
				}
				pos = redisFeedPos{id: id, rev: c.Revision}
				if !send(c) {
					return
				}
			}
		}
	}
}

// leadsTo says whether the stream can have gone from p to cur by appends
// alone: then XREAD from p delivers everything between them.
func (p redisFeedPos) leadsTo(cur redisFeedPos) bool {
	switch {
	case cur.rev == p.rev:
		return cur.id == p.id
	case cur.rev > p.rev:
		return p.id.less(cur.id)
	default:
		return false
	}
}

// feedPosition reads the revision and the last stream entry in one MULTI.
func (b *Backend) feedPosition(ctx context.Context) (redisFeedPos, error) {
	var rev *redis.StringCmd
	var last *redis.XMessageSliceCmd
	_, err := b.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		rev = p.Get(ctx, b.revKey)
		last = p.XRevRangeN(ctx, b.changesKey, "+", "-", 1)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return redisFeedPos{}, err
	}
	var pos redisFeedPos
	if v, err := rev.Uint64(); err == nil {
		pos.rev = v
	} else if !errors.Is(err, redis.Nil) {
		return redisFeedPos{}, err
	}
	if msgs := last.Val(); len(msgs) > 0 {
		id, ok := parseRedisStreamID(msgs[0].ID)
		if !ok {
			return redisFeedPos{}, errors.New("redis: malformed stream entry ID " + msgs[0].ID)
		}
		pos.id = id
	}
	return pos, nil
}

// parseRedisChange reads a change stream entry written by redisCommitScript.
func parseRedisChange(m redis.XMessage) (store.Change, redisStreamID, bool) {
	id, ok := parseRedisStreamID(m.ID)
	if !ok {
		return store.Change{}, id, false
	}
	revField, _ := m.Values["rev"].(string)
	rev, err := strconv.ParseUint(revField, 10, 64)
	if err != nil {
		return store.Change{}, id, false
	}
	// The entry ID is the Redis server's clock when XADD ran, in the
	// commit's MULTI: the commit time, to the millisecond.
	c := store.Change{Revision: rev, At: time.UnixMilli(int64(id.ms))}
	if keys, _ := m.Values["api_keys"].(string); keys != "" {
		c.APIKeys = strings.Split(keys, "\n")
	}
	return c, id, true
}

// redisStreamID is a stream entry ID, <milliseconds>-<sequence>.
type redisStreamID struct{ ms, seq uint64 }

func parseRedisStreamID(s string) (redisStreamID, bool) {
	msPart, seqPart, ok := strings.Cut(s, "-")
	if !ok {
		return redisStreamID{}, false
	}
	ms, err1 := strconv.ParseUint(msPart, 10, 64)
	seq, err2 := strconv.ParseUint(seqPart, 10, 64)
	return redisStreamID{ms, seq}, err1 == nil && err2 == nil
}

func (id redisStreamID) String() string {
	return strconv.FormatUint(id.ms, 10) + "-" + strconv.FormatUint(id.seq, 10)
}

func (id redisStreamID) less(o redisStreamID) bool {
	return id.ms < o.ms || (id.ms == o.ms && id.seq < o.seq)
}

// sleepCtx sleeps for d, or less when ctx ends first (then it returns false).
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
