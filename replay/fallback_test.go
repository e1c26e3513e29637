package replay

import (
	"context"
	"errors"
	"fmt"
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

func TestFallbackNonces(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	shared := &fakeSharedNonces{seen: map[string]bool{}}
	n := newFallbackNonces(shared, enforcement.NewLocalNonces(enforcement.WithNonceClock(clock)))
	n.now = clock
	const ttl = time.Minute

	steps := []struct {
		name     string
		down     bool
		advance  time.Duration
		nonce    string
		wantSeen bool
	}{
		{"store up: fresh", false, 0, "a", false},
		{"store up: replay", false, 0, "a", true},
		{"store down: fresh", true, 0, "b", false},
		{"store down: replay to this node", true, 0, "b", true},
		{"store down: a nonce accepted while the store was up", true, 0, "a", true},
		{"store back: a nonce accepted during the outage", false, 0, "b", true},
		{"store back: fresh", false, 0, "c", false},
		{"store back: replay", false, 0, "c", true},
		{"outage nonces expired: the store answers", false, ttl + time.Second, "d", false},
		{"store down again: a nonce accepted while it was up", true, 0, "d", true},
	}
	for _, s := range steps {
		shared.down = s.down
		now = now.Add(s.advance)
		seen, err := n.Seen(context.Background(), "KEY", s.nonce, ttl)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if seen != s.wantSeen {
			t.Errorf("%s: seen %v, want %v", s.name, seen, s.wantSeen)
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

// freshNonces is a shared store that answers at once: what
// BenchmarkFallbackNonces measures is the node's own table.
type freshNonces struct{}

func (freshNonces) Seen(context.Context, string, string, time.Duration) (bool, error) {
	return false, nil
}

// BenchmarkFallbackNonces is what replay protection in the store adds to
// the store's round trip on this node: recording the nonce in the node's
// table (of the default size, so a bucket rarely cached).
func BenchmarkFallbackNonces(b *testing.B) {
	n := newFallbackNonces(freshNonces{}, enforcement.NewLocalNonces())
	var uuids [1 << 16]string // as JD Cloud's SDKs send them
	for i := range uuids {
		uuids[i] = fmt.Sprintf("6f1c0b0e-3c6a-4d8e-9b1f-%012x", i)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		n.SeenAt(context.Background(), "ak-06h3qb9kll9vp69skt6hgdlo1c", uuids[i%len(uuids)], time.Now(), time.Minute)
	}
}
