package caddymodule

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/accessauth/caddy-access-auth/enforcement"
)

// fakeSharedNonces is a shared nonce store that can be made unreachable.
type fakeSharedNonces struct {
	down bool
	seen map[string]bool
}

func (f *fakeSharedNonces) Seen(_ context.Context, apiKey, nonce string, _ time.Duration) (bool, error) {
	if f.down {
		return false, errors.New("connection refused")
	}
	k := apiKey + ":" + nonce
	was := f.seen[k]
	f.seen[k] = true
	return was, nil
}

// countingNonces counts the calls that reach this node's memory.
type countingNonces struct {
	enforcement.NonceStore
	calls int
}

func (c *countingNonces) Seen(ctx context.Context, apiKey, nonce string, ttl time.Duration) (bool, error) {
	c.calls++
	return c.NonceStore.Seen(ctx, apiKey, nonce, ttl)
}

func TestFallbackNonces(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	shared := &fakeSharedNonces{seen: map[string]bool{}}
	local := &countingNonces{NonceStore: enforcement.NewLocalNonces(enforcement.WithNonceClock(clock))}
	n := newFallbackNonces(shared)
	n.local, n.now = local, clock
	const ttl = time.Minute

	steps := []struct {
		name      string
		down      bool
		advance   time.Duration
		nonce     string
		wantSeen  bool
		wantLocal int // calls that reached memory so far
	}{
		{"store up: fresh", false, 0, "a", false, 0},
		{"store up: replay", false, 0, "a", true, 0},
		{"store down: fresh", true, 0, "b", false, 1},
		{"store down: replay to this node", true, 0, "b", true, 2},
		{"store down: a nonce the store saw", true, 0, "a", false, 3},
		{"store back: a nonce accepted during the outage", false, 0, "b", true, 4},
		{"store back: fresh", false, 0, "c", false, 5},
		{"store back: replay", false, 0, "c", true, 5},
		{"outage nonces expired: memory no longer asked", false, ttl + time.Second, "d", false, 5},
	}
	for _, s := range steps {
		shared.down = s.down
		now = now.Add(s.advance)
		seen, err := n.Seen(context.Background(), "KEY", s.nonce, ttl)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if seen != s.wantSeen || local.calls != s.wantLocal {
			t.Errorf("%s: seen %v with %d calls to memory, want %v with %d", s.name, seen, local.calls, s.wantSeen, s.wantLocal)
		}
	}
}
