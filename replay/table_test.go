package replay

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/accessauth/caddy-access-auth/internal/pollute"
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

func seen(t testing.TB, n Seer, apiKey, nonce string, ttl time.Duration) bool {
	t.Helper()
	s, err := n.Seen(context.Background(), apiKey, nonce, time.Now(), ttl)
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

// remembers reports whether n holds apiKey's nonce unexpired, without
// recording it.
func remembers(n *LocalNonces, apiKey, nonce string) bool {
	p := n.locate(apiKey, nonce)
	p.bucket.mu.Lock()
	defer p.bucket.mu.Unlock()
	_, found := p.bucket.find(p.fingerprint, seconds(n.since(n.now())))
	return found
}

// A pair longer than the hashing buffer takes the streamed hash; it is
// remembered and kept apart all the same.
func TestLocalNoncesRememberLongNonces(t *testing.T) {
	n := NewLocalNonces()
	long := strings.Repeat("n", 200)
	for _, c := range []struct{ apiKey, nonce string }{
		{"K1", long}, {"K1", long + "x"}, {"K1" + long, ""}, {"K1" + long[:100], long[100:]},
	} {
		if seen(t, n, c.apiKey, c.nonce, time.Hour) {
			t.Fatalf("fresh (%d-byte key, %d-byte nonce) reported seen", len(c.apiKey), len(c.nonce))
		}
		if !seen(t, n, c.apiKey, c.nonce, time.Hour) {
			t.Fatalf("replayed (%d-byte key, %d-byte nonce) not noticed", len(c.apiKey), len(c.nonce))
		}
	}
}

// Each nonce is kept its own ttl, to the second rounded up: never less.
func TestLocalNoncesKeepEachNonceItsTTL(t *testing.T) {
	for _, c := range []struct {
		name         string
		start        time.Duration // from the store's creation
		ttl, elapsed time.Duration
		want         bool
	}{
		{"within", 0, 10 * time.Minute, 9 * time.Minute, true},
		{"past", 0, 10 * time.Minute, 11 * time.Minute, false},
		{"a nanosecond short", 700 * time.Millisecond, 10 * time.Second, 10*time.Second - 1, true},
		{"a second past", 700 * time.Millisecond, 10 * time.Second, 11 * time.Second, false},
		{"short ttl", 0, time.Minute, 2 * time.Minute, false},
		{"long ttl", 0, time.Hour, 2 * time.Minute, true},
		{"before the store", -time.Hour, 10 * time.Minute, 9 * time.Minute, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			clk := &nonceClock{now: testNow}
			n := NewLocalNonces(WithNonceClock(clk.Now))
			clk.advance(c.start)
			seen(t, n, "K1", "n1", c.ttl)
			clk.advance(c.elapsed)
			if got := remembers(n, "K1", "n1"); got != c.want {
				t.Fatalf("remembered %v after %v with ttl %v, want %v", got, c.elapsed, c.ttl, c.want)
			}
		})
	}
}

// A stream of nonces over time: each is refused until its ttl is over and
// forgotten after, whenever it came.
func TestLocalNoncesOverTime(t *testing.T) {
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
	// Unexpired at minute 40: minutes 31 to 39, each 200 new nonces and 200
	// of 11 minutes before sent again.
	if got, want := n.Len(), 9*400; got != want {
		t.Fatalf("%d nonces remembered, want %d", got, want)
	}
}

// noncesStep sends a nonce after advancing the clock.
type noncesStep struct {
	after time.Duration
	nonce string
	ttl   time.Duration
}

func noncesSteps(prefix string, count int, after, ttl time.Duration) []noncesStep {
	steps := make([]noncesStep, count)
	for i := range steps {
		steps[i] = noncesStep{after, prefix + strconv.Itoa(i), ttl}
	}
	return steps
}

// A store made for one nonce is one bucket: which nonce gives way when it
// is full, decided.
func TestLocalNoncesEvictTheFirstToExpire(t *testing.T) {
	const hour = time.Hour
	for _, c := range []struct {
		name                  string
		steps                 [][]noncesStep
		remembered, forgotten []string
	}{{
		name:       "empty slots first",
		steps:      [][]noncesStep{noncesSteps("a", bucketSlots, 0, hour)},
		remembered: []string{"a0", "a5", "a9"},
	}, {
		name: "expired slots before unexpired nonces",
		steps: [][]noncesStep{
			noncesSteps("short", bucketSlots/2, 0, time.Second),
			noncesSteps("long", bucketSlots/2, 0, hour),
			{{after: 2 * time.Second, nonce: "late", ttl: hour}},
			noncesSteps("new", bucketSlots/2-1, 0, hour),
		},
		remembered: []string{"long0", "long4", "late", "new0", "new3"},
		forgotten:  []string{"short0", "short4"},
	}, {
		name: "full: the oldest goes",
		steps: [][]noncesStep{
			noncesSteps("a", bucketSlots, time.Second, hour),
			{{after: time.Second, nonce: "b", ttl: hour}},
		},
		remembered: []string{"a1", "a9", "b"},
		forgotten:  []string{"a0"},
	}, {
		name: "full: the first to expire goes, not the first in",
		steps: [][]noncesStep{
			{{after: time.Second, nonce: "long", ttl: 2 * hour}},
			noncesSteps("a", bucketSlots-1, time.Second, hour),
			{{after: time.Second, nonce: "b", ttl: hour}},
		},
		remembered: []string{"long", "a1", "a8", "b"},
		forgotten:  []string{"a0"},
	}} {
		t.Run(c.name, func(t *testing.T) {
			clk := &nonceClock{now: testNow}
			n := NewLocalNonces(WithNonceClock(clk.Now), WithMaxNonces(1))
			if len(n.buckets) != 1 {
				t.Fatalf("%d buckets, want 1", len(n.buckets))
			}
			for _, steps := range c.steps {
				for _, s := range steps {
					clk.advance(s.after)
					if seen(t, n, "K1", s.nonce, s.ttl) {
						t.Fatalf("fresh nonce %s reported seen", s.nonce)
					}
				}
			}
			for _, nonce := range c.remembered {
				if !remembers(n, "K1", nonce) {
					t.Errorf("%s was forgotten", nonce)
				}
			}
			for _, nonce := range c.forgotten {
				if remembers(n, "K1", nonce) {
					t.Errorf("%s is still remembered", nonce)
				}
			}
		})
	}
}

// A flood of 20 times the store's size, one nonce a second: the store
// stays within its table and keeps the newest nonces. A nonce among the
// last maxNonces is lost only when 10 newer ones share its bucket: 0.03 %
// of them.
func TestLocalNoncesFloodKeepsTheNewest(t *testing.T) {
	const size = 1000
	clk := &nonceClock{now: testNow}
	n := NewLocalNonces(WithNonceClock(clk.Now), WithMaxNonces(size))
	for i := range 20 * size {
		clk.advance(time.Second)
		if seen(t, n, "K1", strconv.Itoa(i), 24*time.Hour) {
			t.Fatalf("nonce %d reported seen", i)
		}
	}
	if got, slots := n.Len(), len(n.buckets)*bucketSlots; got > slots {
		t.Fatalf("%d nonces remembered in %d slots", got, slots)
	}
	lost := 0
	for i := 19 * size; i < 20*size; i++ {
		if !remembers(n, "K1", strconv.Itoa(i)) {
			lost++
		}
	}
	if lost > size/100 || !remembers(n, "K1", strconv.Itoa(20*size-1)) {
		t.Fatalf("%d of the newest %d nonces lost (the newest among them: %v)", lost, size, !remembers(n, "K1", strconv.Itoa(20*size-1)))
	}
}

// A store filled to its size within a ttl loses almost none: the design
// predicts 0.028 % (buckets of 10, 3.33 nonces a bucket on average,
// Poisson), 37 of 131072; the bound is 0.1 %. Each nonce expires a second
// after the one before, as those of requests signed one after the other
// do: a nonce displaced is older than every later one, which the table
// still takes.
func TestLocalNoncesHoldTheirSize(t *testing.T) {
	const size = 1 << 17
	n := NewLocalNonces(WithMaxNonces(size))
	for i := range size {
		if seen(t, n, "K1", "fill-"+strconv.Itoa(i), time.Hour+time.Duration(i)*time.Second) {
			t.Fatalf("fresh nonce %d reported seen", i)
		}
	}
	lost := size - n.Len()
	if int(n.Displaced()) != lost {
		t.Errorf("%d nonces displaced, %d lost", n.Displaced(), lost)
	}
	t.Logf("%d of %d nonces lost (%.3f %%)", lost, size, 100*float64(lost)/size)
	if lost*1000 >= size {
		t.Fatalf("%d of %d nonces lost, want under 0.1 %%", lost, size)
	}
	for i := range size {
		if !remembers(n, "K1", "fill-"+strconv.Itoa(i)) {
			lost--
		}
	}
	if lost != 0 {
		t.Fatalf("Len and the lookups disagree by %d", lost)
	}
}

// A nonce that had to give way is not forgotten: its replay, and any nonce
// expiring no later, is refused (the table cannot tell them apart); nonces
// expiring later are taken.
func TestLocalNoncesRefuseWhatTheyCannotVouchFor(t *testing.T) {
	clk := &nonceClock{now: testNow}
	n := NewLocalNonces(WithNonceClock(clk.Now), WithMaxNonces(1))
	if len(n.buckets) != 1 {
		t.Fatalf("%d buckets, want 1", len(n.buckets))
	}
	ttl := func(i int) time.Duration { return time.Hour + time.Duration(i)*time.Second }
	record := func(nonce string, i int) Verdict { return n.record(n.locate("K1", nonce), clk.Now(), ttl(i)) }
	for i := range bucketSlots {
		if v := record("n"+strconv.Itoa(i), i); v != Fresh {
			t.Fatalf("nonce %d: %d, want fresh", i, v)
		}
	}
	if n.Displaced() != 0 || !n.Horizon().IsZero() {
		t.Fatalf("a table with room displaced %d, horizon %v", n.Displaced(), n.Horizon())
	}
	// The bucket is full: the nonce expiring first (n0) gives way.
	if v := record("new", 20); v != Fresh {
		t.Fatalf("a nonce expiring after all others: %d, want fresh", v)
	}
	if want := testNow.Add(ttl(0)); n.Displaced() != 1 || n.Narrowed() != 1 || !n.Horizon().Equal(want) {
		t.Fatalf("displaced %d (narrowing %d), horizon %v; want 1 (1), %v", n.Displaced(), n.Narrowed(), n.Horizon(), want)
	}
	if v := record("n0", 0); v != TooOld {
		t.Fatalf("the displaced nonce again: %d, want too old", v)
	}
	if s := seen(t, n, "K1", "n0", ttl(0)); !s {
		t.Fatal("Seen lets the displaced nonce through")
	}
	if v := record("other", 0); v != TooOld {
		t.Fatalf("another nonce expiring with the displaced one: %d, want too old", v)
	}
	if v := record("n1", 1); v != Replayed {
		t.Fatalf("a nonce still held: %d, want seen", v)
	}
	// A nonce displaced in the second half of its time changes no answer:
	// counted, not as narrowing.
	clk.advance(ttl(1) - 10*time.Minute)
	if v := record("late", 40); v != Fresh || n.Displaced() != 2 || n.Narrowed() != 1 {
		t.Fatalf("a nonce displacing one near its expiry: %d, displaced %d (narrowing %d), want fresh, 2 (1)", v, n.Displaced(), n.Narrowed())
	}
	// Once the horizon has passed, its nonces could not get through the
	// date check anyway: the table takes nonces as before.
	clk.advance(10 * time.Minute)
	if v := record("later", 50); v != Fresh {
		t.Fatalf("a nonce after the horizon passed: %d, want fresh", v)
	}
}

// A key holder whose own nonces are dropped moves its key group's horizon,
// not another key's: requests dated ahead of the clock, which expire last,
// cannot shut every other key out.
func TestLocalNoncesHorizonIsPerKeyGroup(t *testing.T) {
	clk := &nonceClock{now: testNow}
	n := NewLocalNonces(WithNonceClock(clk.Now), WithMaxNonces(1)) // one bucket of 10
	group := func(apiKey string) uint8 { return uint8(n.locate(apiKey, "x").fingerprint) }
	other := "B"
	for i := 0; group(other) == group("A"); i++ {
		other = "B" + strconv.Itoa(i)
	}
	record := func(apiKey, nonce string, ttl time.Duration) Verdict {
		return n.record(n.locate(apiKey, nonce), clk.Now(), ttl)
	}
	// A fills the bucket with nonces dated ahead, then displaces its own.
	for i := range bucketSlots + 1 {
		if v := record("A", "a"+strconv.Itoa(i), 45*time.Minute+time.Duration(i)*time.Second); v != Fresh {
			t.Fatalf("A's nonce %d: %d, want fresh", i, v)
		}
	}
	if n.Displaced() != 1 {
		t.Fatalf("%d displaced, want 1", n.Displaced())
	}
	if v := record("A", "a-late", 30*time.Minute); v != TooOld {
		t.Fatalf("A's nonce expiring before its horizon: %d, want too old", v)
	}
	if v := record(other, "b", 30*time.Minute); v != Fresh {
		t.Fatalf("another key's nonce expiring before A's horizon: %d, want fresh", v)
	}
}

// Under contention for one full bucket, a nonce sent many times at once is
// let through once at most, whichever nonces give way meanwhile.
func TestLocalNoncesNeverLetAReplayThrough(t *testing.T) {
	n := NewLocalNonces(WithMaxNonces(1)) // one bucket of 10 slots
	const nonces, copies = 2000, 4
	var fresh [nonces]atomic.Int32
	var wg sync.WaitGroup
	start := time.Now().Round(0) // a date: wall clock only
	for g := range copies {
		wg.Go(func() {
			for j := range nonces {
				// Each goroutine walks the nonces from another start. A
				// nonce's expiry is fixed by it, as the check fixes it
				// from the request's date: the ttl is what remains.
				i := (j + g*nonces/copies) % nonces
				now := time.Now()
				ttl := start.Add(time.Hour + time.Duration(i%50)*time.Second).Sub(now)
				if n.record(n.locate("K1", strconv.Itoa(i)), now, ttl) == Fresh {
					fresh[i].Add(1)
				}
			}
		})
	}
	wg.Wait()
	taken := 0
	for i := range fresh {
		switch f := fresh[i].Load(); {
		case f > 1:
			t.Fatalf("nonce %d let through %d times", i, f)
		case f == 1:
			taken++
		}
	}
	if taken < bucketSlots || n.Displaced() == 0 {
		t.Fatalf("%d nonces taken, %d displaced: the test did not fill the bucket", taken, n.Displaced())
	}
}

// A bucket is two cache lines, aligned: one request touches those only.
func TestNonceBucketLayout(t *testing.T) {
	if size := unsafe.Sizeof(nonceBucket{}); size != 128 {
		t.Fatalf("a bucket is %d bytes, want 128", size)
	}
	n := NewLocalNonces()
	if addr := uintptr(unsafe.Pointer(&n.buckets[0])); addr%128 != 0 {
		t.Fatalf("the table starts at %#x, not on a 128-byte boundary", addr)
	}
	if mib := float64(len(n.buckets)*128) / (1 << 20); mib > 38.5 {
		t.Fatalf("the default table takes %.1f MiB, documented 38", mib)
	}
}

func TestLocalNoncesConcurrently(t *testing.T) {
	for _, c := range []struct {
		name   string
		groups int // goroutines sending the same nonces
	}{{"pairs", 4}, {"all eight", 1}} {
		t.Run(c.name, func(t *testing.T) {
			n := NewLocalNonces(WithMaxNonces(8000))
			var wg sync.WaitGroup
			var fresh atomic.Int64
			for g := range 8 {
				wg.Go(func() {
					for i := range 1000 {
						// Each group's goroutines send the same nonces: each is fresh once.
						if !seen(t, n, "K1", strconv.Itoa(g%c.groups)+"-"+strconv.Itoa(i), time.Minute) {
							fresh.Add(1)
						}
					}
				})
			}
			wg.Wait()
			if got, want := fresh.Load(), int64(c.groups*1000); got != want {
				t.Fatalf("%d nonces accepted as fresh, want %d", got, want)
			}
		})
	}
}

func BenchmarkLocalNoncesSeen(b *testing.B) {
	n := NewLocalNonces()
	nonces := make([]string, 1<<16)
	for i := range nonces {
		nonces[i] = "3f2b8c1e-8a4d-4c7e-9b1a-" + strconv.FormatInt(1e11+int64(i), 10)
	}
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		n.Seen(ctx, "0123456789ABCDEF0123456789ABCDEF", nonces[i&(len(nonces)-1)], time.Now(), time.Minute)
		i++
	}
}

// BenchmarkLocalNoncesFull is the steady state of a busy node: every
// nonce fresh, the store at its default size.
func BenchmarkLocalNoncesFull(b *testing.B) {
	n := NewLocalNonces()
	ctx := context.Background()
	for i := range DefaultMaxNonces {
		n.Seen(ctx, "0123456789ABCDEF0123456789ABCDEF", "fill-"+strconv.Itoa(i), time.Now(), time.Hour)
	}
	nonces := make([]string, 1<<20)
	for i := range nonces {
		nonces[i] = "3f2b8c1e-8a4d-4c7e-9b1a-" + strconv.FormatInt(1e11+int64(i), 10)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		n.Seen(ctx, "0123456789ABCDEF0123456789ABCDEF", nonces[i&(len(nonces)-1)], time.Now(), time.Hour)
		i++
	}
}

// BenchmarkLocalNoncesPolluted is the store as a busy server sees it: half
// full of live nonces, every nonce fresh, and before each request the rest
// of the request's work evicting the store from the caches and the TLB.
// ns/seen is Seen alone, timed call by call (the clock reads included,
// ~50 ns here).
func BenchmarkLocalNoncesPolluted(b *testing.B) {
	const apiKey = "0123456789ABCDEF0123456789ABCDEF"
	n := halfFullNonces(apiKey)
	ctx := context.Background()
	polluteCaches := pollute.NewCachePolluter()
	nonce := []byte("3f2b8c1e-8a4d-4c7e-9b1a-")
	prefix := len(nonce)
	var spent time.Duration
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		polluteCaches()
		nonce = strconv.AppendInt(nonce[:prefix], int64(i), 10)
		start := time.Now()
		// The store keeps hashes of the nonce, not the nonce: it may change after.
		n.Seen(ctx, apiKey, unsafe.String(&nonce[0], len(nonce)), time.Now(), time.Hour)
		spent += time.Since(start)
	}
	b.ReportMetric(float64(spent)/float64(b.N), "ns/seen")
}

// halfFullNonces is a LocalNonces of the default size holding half as many
// live nonces of apiKey, kept half as long as the check keeps a nonce (two
// max_skew windows from its request's date, a date in whole seconds): they
// expire before any nonce a benchmark records after them, so a full bucket
// drops one of them. Kept longer, the benchmark's own nonces would be
// dropped first, and the table would rightly refuse the next ones of the
// same second as date_out_of_range.
func halfFullNonces(apiKey string) *LocalNonces {
	n := NewLocalNonces()
	for i := range DefaultMaxNonces / 2 {
		n.Seen(context.Background(), apiKey, "fill-"+strconv.Itoa(i), time.Now(), 15*time.Minute) // the check's default max_skew
	}
	return n
}

// testNow is the tables' clock in tests.
var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// TestLocalNoncesPeek checks that Peek gives Record's verdict without
// recording: a fresh nonce peeked twice is still fresh for Record, then
// peeks as replayed; a request older than the table vouches for is TooOld.
func TestLocalNoncesPeek(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	n := NewLocalNonces(WithNonceClock(func() time.Time { return now }), WithVouchesFrom(now.Add(-time.Minute)))
	ctx := context.Background()
	ticket := n.Prepare("KEY", "nonce")
	for _, tc := range []struct {
		name   string
		date   time.Time
		record bool
		want   Verdict
	}{
		{"fresh", now, false, Fresh},
		{"still fresh after a peek", now, true, Fresh},
		{"recorded", now, false, Replayed},
		{"before the table vouches", now.Add(-2 * time.Minute), false, TooOld},
	} {
		if got := n.Peek(ctx, ticket, tc.date, now, time.Minute); got != tc.want {
			t.Errorf("%s: Peek %v, want %v", tc.name, got, tc.want)
		}
		if tc.record {
			if got := n.Record(ctx, ticket, tc.date, now, time.Minute); got != tc.want {
				t.Errorf("%s: Record %v, want %v", tc.name, got, tc.want)
			}
		}
	}
	if seen, _ := n.Recorded(ctx, "KEY", "nonce", time.Now()); !seen {
		t.Errorf("Recorded of a recorded nonce: false")
	}
	if seen, _ := n.Recorded(ctx, "KEY", "other", time.Now()); seen {
		t.Errorf("Recorded of a fresh nonce: true")
	}
}
