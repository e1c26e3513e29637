package enforcement

import (
	"context"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/accessauth/caddy-access-auth/signature"
)

// nonceClock is a settable clock for LocalNonces.
type nonceClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *nonceClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *nonceClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func seen(t testing.TB, n NonceStore, apiKey, nonce string, ttl time.Duration) bool {
	t.Helper()
	s, err := n.Seen(context.Background(), apiKey, nonce, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestLocalNoncesRemember(t *testing.T) {
	clk := &nonceClock{now: testNow}
	n := NewLocalNonces(WithNonceClock(clk.Now))
	const ttl = 30 * time.Minute

	if seen(t, n, "K1", "n1", ttl) {
		t.Fatal("a fresh nonce was reported seen")
	}
	if !seen(t, n, "K1", "n1", ttl) {
		t.Fatal("a replayed nonce was not noticed")
	}
	if seen(t, n, "K2", "n1", ttl) {
		t.Fatal("nonces of another key were mixed up")
	}
	if seen(t, n, "K1n", "1", ttl) || seen(t, n, "K", "1n1", ttl) {
		t.Fatal("key and nonce were not kept apart")
	}
	clk.advance(ttl - time.Second)
	if !seen(t, n, "K1", "n1", ttl) {
		t.Fatal("a nonce was forgotten before its ttl")
	}
	clk.advance(ttl)
	if seen(t, n, "K1", "n1", ttl) {
		t.Fatal("a nonce was remembered past its ttl")
	}
}

func TestLocalNoncesForgetExpiredEntries(t *testing.T) {
	clk := &nonceClock{now: testNow}
	n := NewLocalNonces(WithNonceClock(clk.Now))
	for i := range 5000 {
		seen(t, n, "K1", "old-"+strconv.Itoa(i), time.Second)
	}
	clk.advance(2 * time.Second)
	for i := range 5000 {
		seen(t, n, "K1", "new-"+strconv.Itoa(i), time.Hour)
	}
	// A generation holding only expired nonces is dropped by the next
	// insertion into its shard.
	if got := n.Len(); got > 5600 {
		t.Fatalf("%d nonces kept; expired ones are not being forgotten", got)
	}
}

// Generations retire as time passes: a nonce is still refused until its ttl
// is over, whenever it came within its generation, and forgotten after.
func TestLocalNoncesKeepEachNonceItsTTL(t *testing.T) {
	clk := &nonceClock{now: testNow}
	n := NewLocalNonces(WithNonceClock(clk.Now))
	const ttl = 10 * time.Minute
	batch := func(minute int) []string {
		var b []string
		for i := range 200 {
			b = append(b, strconv.Itoa(minute)+"-"+strconv.Itoa(i))
		}
		return b
	}
	for minute := range 40 {
		for _, nonce := range batch(minute) {
			if seen(t, n, "K1", nonce, ttl) {
				t.Fatalf("minute %d: fresh nonce %s reported seen", minute, nonce)
			}
		}
		if minute >= 9 {
			for _, nonce := range batch(minute - 9) {
				if !seen(t, n, "K1", nonce, ttl) {
					t.Fatalf("minute %d: nonce %s of 9 minutes ago (ttl 10m) was forgotten", minute, nonce)
				}
			}
		}
		if minute >= 11 {
			for _, nonce := range batch(minute - 11) {
				if seen(t, n, "K1", nonce, ttl) {
					t.Fatalf("minute %d: nonce %s of 11 minutes ago (ttl 10m) still refused", minute, nonce)
				}
			}
		}
		clk.advance(time.Minute)
	}
	// Two generations at most: the nonces of the last 20 minutes, re-sent
	// ones included, not the 8000 of all 40.
	if got := n.Len(); got > 20*200*2 {
		t.Fatalf("%d nonces kept", got)
	}
}

func TestLocalNoncesStayBounded(t *testing.T) {
	const limit = 64 * 8
	clk := &nonceClock{now: testNow}
	n := NewLocalNonces(WithNonceClock(clk.Now), WithMaxNonces(limit))
	for i := range 20 * limit {
		if seen(t, n, "K1", strconv.Itoa(i), time.Hour) {
			t.Fatalf("nonce %d reported seen", i)
		}
	}
	if got := n.Len(); got > limit {
		t.Fatalf("%d nonces kept, limit %d", got, limit)
	}
	// The newest nonces survive the evictions.
	if !seen(t, n, "K1", strconv.Itoa(20*limit-1), time.Hour) {
		t.Fatal("the newest nonce was evicted")
	}
}

func TestLocalNoncesConcurrently(t *testing.T) {
	n := NewLocalNonces()
	var wg sync.WaitGroup
	var mu sync.Mutex
	fresh := 0
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				// Every goroutine pair sends the same nonces: each is fresh once.
				if !seen(t, n, "K1", strconv.Itoa(g%4)+"-"+strconv.Itoa(i), time.Minute) {
					mu.Lock()
					fresh++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if fresh != 4000 {
		t.Fatalf("%d nonces accepted as fresh, want 4000", fresh)
	}
}

func BenchmarkLocalNoncesSeen(b *testing.B) {
	n := NewLocalNonces()
	nonces := make([]string, 1<<16)
	for i := range nonces {
		nonces[i] = "3f2b8c1e-8a4d-4c7e-9b1a-" + strconv.Itoa(1e11+i)
	}
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		n.Seen(ctx, "0123456789ABCDEF0123456789ABCDEF", nonces[i&(len(nonces)-1)], time.Minute)
		i++
	}
}

// BenchmarkLocalNoncesFull is the steady state of a busy node: every
// nonce fresh, the store at its default size.
func BenchmarkLocalNoncesFull(b *testing.B) {
	n := NewLocalNonces()
	ctx := context.Background()
	for i := range DefaultMaxNonces {
		n.Seen(ctx, "0123456789ABCDEF0123456789ABCDEF", "fill-"+strconv.Itoa(i), time.Hour)
	}
	nonces := make([]string, 1<<20)
	for i := range nonces {
		nonces[i] = "3f2b8c1e-8a4d-4c7e-9b1a-" + strconv.Itoa(1e11+i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		n.Seen(ctx, "0123456789ABCDEF0123456789ABCDEF", nonces[i&(len(nonces)-1)], time.Hour)
		i++
	}
}

// clockedNonces records the clock readings it was handed.
type clockedNonces struct {
	*LocalNonces
	readings []time.Time
}

func (n *clockedNonces) SeenAt(ctx context.Context, apiKey, nonce string, at time.Time, ttl time.Duration) (bool, error) {
	n.readings = append(n.readings, at)
	return n.LocalNonces.SeenAt(ctx, apiKey, nonce, at, ttl)
}

// TestNoncesTakeTheChecksClock: on the wall clock, a nonce store that can
// take the check's clock reading gets the caller's, so a request reads the
// clock once; a replay is still refused.
func TestNoncesTakeTheChecksClock(t *testing.T) {
	nonces := &clockedNonces{LocalNonces: NewLocalNonces()}
	c, err := NewChecker(Config{Group: "orders", Nonces: nonces, TempDir: t.TempDir()}, testKeys())
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now()
	r := signedRequest(t, http.MethodGet, bodyURL, "", "GOOD", secretOf("GOOD"), signature.JDCloud2, signature.WithTime(at))
	if d := c.CheckAt(context.Background(), r, originalOf(r), netip.MustParseAddr("203.0.113.5"), at); d.Reason != Allowed {
		t.Fatalf("first: %s", d.Reason)
	}
	if d := c.CheckAt(context.Background(), r, originalOf(r), netip.MustParseAddr("203.0.113.5"), at); d.Reason != ReplayedNonce {
		t.Fatalf("replay: %s", d.Reason)
	}
	if len(nonces.readings) != 2 || !nonces.readings[0].Equal(at) {
		t.Fatalf("SeenAt got %v, want the caller's reading %v twice", nonces.readings, at)
	}
}
