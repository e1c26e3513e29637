package caddymodule

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

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
	n := newFallbackNonces(shared, local)
	n.now = clock
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

// A full nonce table is reported at WARN, once for each interval in which
// it narrowed the dates it accepts, never while it only drops nonces that
// change no answer.
func TestWatchNonceTablesWarnsWhenFull(t *testing.T) {
	const interval = 10 * time.Millisecond
	core, logs := observer.New(zapcore.InfoLevel)
	table := enforcement.NewLocalNonces(enforcement.WithMaxNonces(1)) // one bucket of 10
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		watchNonceTables(ctx, zap.New(core), interval, table)
	}()
	defer func() { cancel(); <-done }()

	now := time.Now()
	fill := func(prefix string, n int, ttl time.Duration) {
		for i := range n {
			if _, err := table.SeenAt(ctx, "K", prefix+strconv.Itoa(i), now, ttl+time.Duration(i)*time.Second); err != nil {
				t.Fatal(err)
			}
		}
	}
	fill("a", 10, time.Hour)
	time.Sleep(5 * interval)
	if n := logs.Len(); n != 0 {
		t.Fatalf("%d warnings while the table had room", n)
	}
	fill("b", 3, 2*time.Hour) // each displaces a nonce with most of its time to go
	for deadline := time.Now().Add(2 * time.Second); logs.Len() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no warning within 2s")
		}
	}
	time.Sleep(5 * interval)
	entries := logs.All()
	if len(entries) != 1 {
		t.Fatalf("%d warnings for one burst, want 1", len(entries))
	}
	e := entries[0]
	if e.Level != zapcore.WarnLevel || !strings.Contains(e.Message, "nonce table is full") {
		t.Fatalf("logged %s %q", e.Level, e.Message)
	}
	if got := e.ContextMap()["nonces_dropped_early"]; got != uint64(3) {
		t.Fatalf("nonces_dropped_early %v, want 3", got)
	}
	if horizon, ok := e.ContextMap()["horizon"].(time.Time); !ok || horizon.IsZero() {
		t.Fatalf("horizon %v", e.ContextMap()["horizon"])
	}
}
