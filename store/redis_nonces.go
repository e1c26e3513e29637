package store

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisNonces remembers request nonces in Redis for replay protection, so a
// replay is caught whichever node it reaches. It has the method of
// enforcement.NonceStore.
type RedisNonces struct {
	client redis.UniversalClient
	prefix string // "<KeyPrefix>:nonce:"
}

// Nonces returns the nonce store on the backend's client. Its keys carry no
// hash tag, so they spread over the nodes of a Cluster.
func (b *RedisBackend) Nonces() *RedisNonces {
	return &RedisNonces{client: b.client, prefix: b.prefix + ":nonce:"}
}

// Seen records apiKey+nonce for ttl with one SET NX PX and reports whether
// it was recorded already (the request is a replay). A ttl under a
// millisecond counts as one: a nonce key must never live forever.
func (n *RedisNonces) Seen(ctx context.Context, apiKey, nonce string, ttl time.Duration) (bool, error) {
	ttl = max(ttl, time.Millisecond)
	fresh, err := n.client.SetNX(ctx, n.prefix+apiKey+":"+nonce, "1", ttl).Result()
	if err != nil {
		return false, redisUnavailable(err)
	}
	return !fresh, nil
}
