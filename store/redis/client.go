package redisstore

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultKeyPrefix is the Redis namespace when Options.KeyPrefix is empty.
const DefaultKeyPrefix = "access_auth"

// Options says how to reach Redis. Either URLs or Addrs name the
// servers: one address is a standalone server, several are a Cluster, and
// with MasterName they are Sentinels.
type Options struct {
	// URLs are redis:// or rediss:// URLs (user:pass@host:port/db). A URL
	// with addr= parameters names several Cluster nodes (go-redis's
	// ParseClusterURL form).
	URLs []string
	// Addrs are host:port pairs.
	Addrs []string
	// Cluster uses the Cluster protocol even with a single address.
	Cluster bool
	// MasterName selects Sentinel: the addresses are the sentinels'.
	MasterName string
	// Username, Password, DB and TLS override what the URLs say when set.
	Username string
	Password string
	DB       int
	TLS      *tls.Config
	// KeyPrefix namespaces every key; DefaultKeyPrefix when empty.
	KeyPrefix string
}

// checkRedisKeyPrefix refuses prefixes that would break the hash tag.
func checkRedisKeyPrefix(prefix string) error {
	for _, r := range prefix {
		if r <= ' ' || r > '~' || r == '{' || r == '}' {
			return fmt.Errorf("redis key prefix %q: only printable ASCII without spaces and braces", prefix)
		}
	}
	return nil
}

// redisUniversalOptions merges URLs, addresses and explicit settings, and sets
// short timeouts: a dead Redis must turn into a quick 503, not a hung request.
func redisUniversalOptions(o Options) (*redis.UniversalOptions, error) {
	u := &redis.UniversalOptions{
		Addrs:                 o.Addrs,
		MasterName:            o.MasterName,
		IsClusterMode:         o.Cluster,
		DialTimeout:           time.Second,
		DialerRetries:         1,
		DialerRetryTimeout:    20 * time.Millisecond,
		ReadTimeout:           time.Second,
		WriteTimeout:          time.Second,
		PoolTimeout:           time.Second,
		MaxRetries:            1,
		ContextTimeoutEnabled: true,
	}
	if len(o.URLs) > 0 && len(o.Addrs) > 0 {
		return nil, errors.New("redis: give either URLs or addresses, not both")
	}
	for i, raw := range o.URLs {
		p, err := parseRedisURL(raw)
		if err != nil {
			return nil, err
		}
		sameTLS := (p.TLSConfig == nil) == (u.TLSConfig == nil)
		if i > 0 && (p.Username != u.Username || p.Password != u.Password || p.DB != u.DB || !sameTLS) {
			return nil, errors.New("redis: all URLs must have the same scheme, user, password and database")
		}
		u.Addrs = append(u.Addrs, p.Addrs...)
		u.Username, u.Password, u.DB, u.TLSConfig = p.Username, p.Password, p.DB, p.TLSConfig
		u.IsClusterMode = u.IsClusterMode || p.IsClusterMode
	}
	if len(u.Addrs) == 0 {
		return nil, errors.New("redis: no address")
	}
	if o.Username != "" {
		u.Username = o.Username
	}
	if o.Password != "" {
		u.Password = o.Password
	}
	if o.DB != 0 {
		u.DB = o.DB
	}
	if o.TLS != nil {
		u.TLSConfig = o.TLS
	}
	if o.MasterName != "" && u.IsClusterMode {
		return nil, errors.New("redis: Sentinel (master name) and Cluster exclude each other")
	}
	clustered := o.MasterName == "" && (len(u.Addrs) > 1 || u.IsClusterMode)
	if clustered && u.DB != 0 {
		return nil, fmt.Errorf("redis: a Cluster has only database 0, not %d", u.DB)
	}
	return u, nil
}

// redisClusterReload is how often a Cluster client reloads the slot map
// while it is in use. go-redis's default (a minute) keeps a node dialling a
// dead master for most of a minute after the Cluster promoted its replica;
// a slot map is small, and one read a second follows a failover within
// about a second of the promotion.
const redisClusterReload = time.Second

// newRedisClient is redis.NewUniversalClient with the Cluster's slot map
// reloaded every redisClusterReload (UniversalOptions cannot say so).
func newRedisClient(u *redis.UniversalOptions) redis.UniversalClient {
	if u.MasterName != "" || (len(u.Addrs) == 1 && !u.IsClusterMode) {
		return redis.NewUniversalClient(u)
	}
	o := u.Cluster()
	o.ClusterStateReloadInterval = redisClusterReload
	return redis.NewClusterClient(o)
}

// parseRedisURL reads one redis:// or rediss:// URL.
func parseRedisURL(raw string) (*redis.UniversalOptions, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("redis URL: %w", err)
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return nil, fmt.Errorf("redis URL %s: scheme must be redis or rediss", u.Redacted())
	}
	if u.Query().Has("addr") {
		c, err := redis.ParseClusterURL(raw)
		if err != nil {
			return nil, fmt.Errorf("redis URL %s: %w", u.Redacted(), err)
		}
		return &redis.UniversalOptions{Addrs: c.Addrs, Username: c.Username, Password: c.Password,
			TLSConfig: c.TLSConfig, IsClusterMode: true}, nil
	}
	s, err := redis.ParseURL(raw)
	if err != nil {
		return nil, fmt.Errorf("redis URL %s: %w", u.Redacted(), err)
	}
	return &redis.UniversalOptions{Addrs: []string{s.Addr}, Username: s.Username, Password: s.Password,
		DB: s.DB, TLSConfig: s.TLSConfig}, nil
}
