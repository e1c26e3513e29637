package redisstore

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/accessauth/caddy-access-auth/store"
)

// How long an Update waits for a replica to acknowledge its write before
// it answers store.ErrUnavailable: redisReplicaWait, and a second more for
// every redisReplicaRate bytes written, so that a large import has time to
// cross the network.
const (
	redisReplicaWait = time.Second
	redisReplicaRate = 32 << 20
)

// redisReplicaTimeout is the wait for a write of size bytes.
func redisReplicaTimeout(size int) time.Duration {
	return redisReplicaWait + time.Duration(size/redisReplicaRate)*time.Second
}

// awaitReplica returns once a replica of the master holds the write just
// committed on rtx's connection, or store.ErrUnavailable after
// redisReplicaTimeout. Redis replicates asynchronously: without this, a
// write the master alone had is gone when Sentinel or the Cluster promotes
// the replica.
//
// replication is the master's INFO replication taken in the commit's
// MULTI. A write waits when the master has a replica, or had one when this
// node last wrote to it: a replica whose link broke may still be promoted.
// A master never seen with a replica (a single server, or the survivor of
// a failover whose old master is gone) acknowledges alone, since no
// promotion can drop its writes.
//
// A write that timed out is on the master all the same, and is kept there
// unless a failover drops it: a client retrying a create may meet its own
// name as name_taken.
//
// The error is a redisFnError: Update must not run fn again over a write
// that committed.
func (b *Backend) awaitReplica(ctx context.Context, rtx *redis.Tx, replication string, size int) error {
	master, replicas := parseRedisReplication(replication)
	switch {
	case master == "":
		return nil // not a master's INFO: nothing to wait for
	case replicas > 0:
		b.replicatedMaster.Store(&master)
	case !b.seenReplicated(master):
		return nil
	}
	timeout := redisReplicaTimeout(size)
	acked, err := rtx.Wait(ctx, 1, timeout).Result()
	if err != nil {
		return redisFnError{redisUnavailable(err)}
	}
	if acked < 1 {
		return redisFnError{fmt.Errorf("%w: redis: no replica acknowledged the write within %v (%d connected)",
			store.ErrUnavailable, timeout, replicas)}
	}
	return nil
}

// seenReplicated says whether master is the last master seen with a replica.
func (b *Backend) seenReplicated(master string) bool {
	seen := b.replicatedMaster.Load()
	return seen != nil && *seen == master
}

// parseRedisReplication reads a master's replication ID and its number of
// connected replicas from INFO replication; the ID is empty when the
// server is not a master.
func parseRedisReplication(info string) (master string, replicas int) {
	var role string
	for line := range strings.Lines(info) {
		name, value, _ := strings.Cut(strings.TrimRight(line, "\r\n"), ":")
		switch name {
		case "role":
			role = value
		case "master_replid":
			master = value
		case "connected_slaves":
			replicas, _ = strconv.Atoi(value)
		}
	}
	if role != "master" {
		return "", 0
	}
	return master, max(replicas, 0)
}
