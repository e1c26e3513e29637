package replay

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// fakeSharedNonces is a shared nonce store that can be made unreachable.
type fakeSharedNonces struct {
	down bool
	seen map[string]bool
}

func (f *fakeSharedNonces) Seen(_ context.Context, apiKey, nonce string, _ time.Time, _ time.Duration) (bool, error) {
	if f.down {
		return false, errors.New("connection refused")
	}
	k := apiKey + ":" + nonce
	was := f.seen[k]
	f.seen[k] = true
	return was, nil
}

func (f *fakeSharedNonces) Recorded(_ context.Context, apiKey, nonce string, _ time.Time) (bool, error) {
	if f.down {
		return false, errors.New("connection refused")
	}
	return f.seen[apiKey+":"+nonce], nil
}

func TestFallbackNonces(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	shared := &fakeSharedNonces{seen: map[string]bool{}}
	n := NewFallback(shared, NewLocalNonces(WithNonceClock(clock)))
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
		want := verdict(s.wantSeen)
		// Peek says what Record will, and records nothing: Record then
		// still says it.
		if got := n.Peek(context.Background(), n.Prepare("KEY", s.nonce), now, now, ttl); got != want {
			t.Errorf("%s: Peek %v, want %v", s.name, got, want)
		}
		if got := n.Record(context.Background(), n.Prepare("KEY", s.nonce), now, now, ttl); got != want {
			t.Errorf("%s: %v, want %v", s.name, got, want)
		}
	}
}

// freshNonces is a shared store that answers at once: what
// BenchmarkFallbackNonces measures is the node's own table.
type freshNonces struct{}

func (freshNonces) Seen(context.Context, string, string, time.Time, time.Duration) (bool, error) {
	return false, nil
}

func (freshNonces) Recorded(context.Context, string, string, time.Time) (bool, error) {
	return false, nil
}

// BenchmarkFallbackNonces is what replay protection in the store adds to
// the store's round trip on this node: recording the nonce in the node's
// table (of the default size, so a bucket rarely cached).
func BenchmarkFallbackNonces(b *testing.B) {
	n := NewFallback(freshNonces{}, NewLocalNonces())
	var uuids [1 << 16]string // as JD Cloud's SDKs send them
	for i := range uuids {
		uuids[i] = fmt.Sprintf("6f1c0b0e-3c6a-4d8e-9b1f-%012x", i)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		now := time.Now()
		n.Record(context.Background(), n.Prepare("ak-06h3qb9kll9vp69skt6hgdlo1c", uuids[i%len(uuids)]), now, now, time.Minute)
	}
}

// busyNonces is a shared store whose answer takes a while, during which
// the node's other requests run (and evict the stand-in's buckets from
// the CPU's cache).
type busyNonces struct{}

func (busyNonces) Seen(context.Context, string, string, time.Time, time.Duration) (bool, error) {
	runtime.Gosched()
	return false, nil
}

func (busyNonces) Recorded(context.Context, string, string, time.Time) (bool, error) {
	return false, nil
}

// BenchmarkFallbackBusy is a busy node's check around its nonce: Prepare,
// the signature's verification (an HMAC), Record, with 8 requests a core
// in flight and a store that yields before it answers. What it measures
// beyond BenchmarkFallbackNonces is whether the stand-in's bucket is still
// in the cache when Record needs it.
func BenchmarkFallbackBusy(b *testing.B) {
	n := NewFallback(busyNonces{}, NewLocalNonces())
	var seq atomic.Uint64
	b.ReportAllocs()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		mac := hmac.New(sha256.New, []byte("secret"))
		var body [256]byte
		sum := make([]byte, 0, sha256.Size)
		for pb.Next() {
			nonce := fmt.Sprintf("6f1c0b0e-3c6a-4d8e-9b1f-%012x", seq.Add(1))
			t := n.Prepare("ak-06h3qb9kll9vp69skt6hgdlo1c", nonce)
			mac.Reset()
			mac.Write(body[:])
			sum = mac.Sum(sum[:0])
			now := time.Now()
			n.Record(context.Background(), t, now, now, time.Minute)
		}
	})
}
