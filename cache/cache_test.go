package cache

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/accessauth/caddy-access-auth/signature"
	"github.com/accessauth/caddy-access-auth/store"
)

// fakeLoader is an in-memory store. When gate is set, loads wait on it
// after announcing themselves on entered.
type fakeLoader struct {
	mu      sync.Mutex
	creds   map[string]*store.Credential
	err     error
	calls   atomic.Int64
	gate    chan struct{}
	entered chan struct{}
}

func newFakeLoader(creds ...*store.Credential) *fakeLoader {
	l := &fakeLoader{creds: make(map[string]*store.Credential)}
	for _, c := range creds {
		l.put(c)
	}
	return l
}

// newGatedLoader makes a loader whose loads wait for a value on gate
// after announcing themselves on entered (buffered for that many loads).
func newGatedLoader(entered int, creds ...*store.Credential) *fakeLoader {
	l := newFakeLoader(creds...)
	l.gate = make(chan struct{})
	l.entered = make(chan struct{}, entered)
	return l
}

func wantLoads(t *testing.T, l *fakeLoader, want int64) {
	t.Helper()
	if got := l.calls.Load(); got != want {
		t.Fatalf("loader called %d times, want %d", got, want)
	}
}

func (l *fakeLoader) put(c *store.Credential) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.creds[c.APIKey] = c
}

func (l *fakeLoader) fail(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.err = err
}

func (l *fakeLoader) LoadCredential(ctx context.Context, apiKey string) (*store.Credential, error) {
	l.calls.Add(1)
	if l.entered != nil {
		l.entered <- struct{}{}
	}
	if l.gate != nil {
		<-l.gate
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return nil, l.err
	}
	c, ok := l.creds[apiKey]
	if !ok {
		return nil, store.ErrNotFound
	}
	copied := *c
	return &copied, nil
}

// clock is a settable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func credential(apiKey, accessKeyID string) *store.Credential {
	return &store.Credential{
		AccessKeyID: accessKeyID,
		APIKey:      apiKey,
		Enabled:     true,
		Secret:      "secret-" + apiKey,
		Authorization: &store.CredentialAuthorization{
			ID:       "auth-" + accessKeyID,
			Enabled:  true,
			Bindings: []store.Binding{{Group: "orders", Environment: "online"}},
		},
	}
}

func newTestCache(t testing.TB, l Loader, clk *clock) *Cache {
	t.Helper()
	c, err := New(Config{MaxEntries: 10_000, Now: clk.Now}, l)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// get is Get followed by waiting for the cache's asynchronous Set, so the
// next Get sees what this one stored.
func get(t testing.TB, c *Cache, apiKey string) (*Entry, error) {
	t.Helper()
	e, err := c.Get(context.Background(), apiKey)
	c.items.Wait()
	return e, err
}

func mustGet(t testing.TB, c *Cache, apiKey string) *Entry {
	t.Helper()
	e, err := get(t, c, apiKey)
	if err != nil {
		t.Fatalf("Get(%s): %v", apiKey, err)
	}
	return e
}

func TestGetLoadsOnceThenHits(t *testing.T) {
	l := newFakeLoader(credential("K1", "ak-1"))
	c := newTestCache(t, l, newClock())

	first := mustGet(t, c, "K1")
	if first.AccessKeyID != "ak-1" || first.APIKey != "K1" || first.Secret == nil || first.Authorization == nil {
		t.Fatalf("compiled entry: %+v", first)
	}
	for range 5 {
		if again := mustGet(t, c, "K1"); again != first {
			t.Fatal("a hit returned another entry than the one loaded")
		}
	}
	s := c.Stats()
	if s.Loads != 1 || s.Misses != 1 || s.Hits != 5 {
		t.Fatalf("stats = %+v, want 1 load, 1 miss, 5 hits", s)
	}
	wantLoads(t, l, 1)
}

func TestConcurrentMissesShareOneLoad(t *testing.T) {
	l := newGatedLoader(100, credential("K1", "ak-1"))
	c := newTestCache(t, l, newClock())

	const callers = 50
	var wg sync.WaitGroup
	entries := make([]*Entry, callers)
	errs := make([]error, callers)
	for i := range callers {
		wg.Go(func() { entries[i], errs[i] = c.Get(context.Background(), "K1") })
	}
	<-l.entered
	waitFor(t, func() bool { return c.Stats().Misses == callers })
	time.Sleep(100 * time.Millisecond) // let the last callers get from counting their miss to joining the load
	close(l.gate)
	wg.Wait()

	if got := l.calls.Load(); got != 1 {
		t.Fatalf("loader called %d times for %d concurrent misses, want 1", got, callers)
	}
	for i := range callers {
		if errs[i] != nil || entries[i] != entries[0] {
			t.Fatalf("caller %d: entry %p err %v, want the shared entry %p", i, entries[i], errs[i], entries[0])
		}
	}
}

func TestUnknownKeyIsRememberedUntilInvalidated(t *testing.T) {
	l := newFakeLoader()
	clk := newClock()
	c := newTestCache(t, l, clk)

	for range 3 {
		if _, err := get(t, c, "NEW"); !errors.Is(err, ErrUnknownKey) {
			t.Fatalf("Get of an unknown key: %v, want ErrUnknownKey", err)
		}
	}
	if s := c.Stats(); s.Loads != 1 || s.NegativeHits != 2 {
		t.Fatalf("stats = %+v, want 1 load and 2 negative hits", s)
	}

	l.put(credential("NEW", "ak-new"))
	if _, err := get(t, c, "NEW"); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("within negative_ttl the key should still be unknown, got %v", err)
	}
	c.Invalidate("NEW") // what the change feed does when the key is created
	if e := mustGet(t, c, "NEW"); e.AccessKeyID != "ak-new" {
		t.Fatalf("after invalidation got %s", e.AccessKeyID)
	}
}

func TestUnknownKeyExpiresAfterNegativeTTL(t *testing.T) {
	l := newFakeLoader()
	clk := newClock()
	c := newTestCache(t, l, clk)

	if _, err := get(t, c, "NEW"); !errors.Is(err, ErrUnknownKey) {
		t.Fatal(err)
	}
	l.put(credential("NEW", "ak-new"))
	clk.advance(DefaultNegativeTTL)
	if e := mustGet(t, c, "NEW"); e.AccessKeyID != "ak-new" {
		t.Fatalf("got %s", e.AccessKeyID)
	}
	wantLoads(t, l, 2)
}

func TestEntriesRefreshAfterTTL(t *testing.T) {
	l := newFakeLoader(credential("K1", "ak-1"))
	clk := newClock()
	c := newTestCache(t, l, clk)

	mustGet(t, c, "K1")
	l.put(credential("K1", "ak-changed"))
	clk.advance(DefaultTTL - time.Second)
	if e := mustGet(t, c, "K1"); e.AccessKeyID != "ak-1" {
		t.Fatalf("before TTL got %s, want the cached entry", e.AccessKeyID)
	}
	clk.advance(time.Second)
	if e := mustGet(t, c, "K1"); e.AccessKeyID != "ak-changed" {
		t.Fatalf("after TTL got %s, want a reload", e.AccessKeyID)
	}
}

func TestStaleEntriesServeWhileStoreIsDown(t *testing.T) {
	l := newFakeLoader(credential("K1", "ak-1"))
	clk := newClock()
	c := newTestCache(t, l, clk)

	want := mustGet(t, c, "K1")
	l.fail(store.ErrUnavailable)

	clk.advance(DefaultTTL + DefaultMaxStale - time.Second)
	if e, err := get(t, c, "K1"); err != nil || e != want {
		t.Fatalf("within max_stale: %v %v, want the stale entry", e, err)
	}
	if s := c.Stats(); s.Stale != 1 || s.Loads != 2 {
		t.Fatalf("stats = %+v, want a failed refresh and 1 stale answer", s)
	}

	clk.advance(time.Second)
	if _, err := get(t, c, "K1"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("past max_stale: %v, want ErrUnavailable", err)
	}

	l.fail(nil) // recovery needs nothing but the store answering again
	if e := mustGet(t, c, "K1"); e == want {
		t.Fatal("after recovery the stale entry was served instead of a fresh one")
	}
}

func TestMissWhileStoreIsDownIsUnavailable(t *testing.T) {
	l := newFakeLoader(credential("K1", "ak-1"))
	l.fail(fmt.Errorf("dial tcp: %w", store.ErrUnavailable))
	c := newTestCache(t, l, newClock())

	_, err := get(t, c, "K1")
	if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrUnknownKey) {
		t.Fatalf("got %v, want ErrUnavailable", err)
	}
	if s := c.Stats(); s.Unavailable != 1 {
		t.Fatalf("stats = %+v", s)
	}
}

func TestNegativeMaxStaleDisablesStaleServing(t *testing.T) {
	l := newFakeLoader(credential("K1", "ak-1"))
	clk := newClock()
	c, err := New(Config{MaxEntries: 100, MaxStale: -1, Now: clk.Now}, l)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	mustGet(t, c, "K1")
	l.fail(store.ErrUnavailable)
	clk.advance(DefaultTTL)
	if _, err := get(t, c, "K1"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("got %v, want ErrUnavailable", err)
	}
}

func TestCallerContextEndsWaitButNotTheSharedLoad(t *testing.T) {
	l := newGatedLoader(1, credential("K1", "ak-1"))
	c := newTestCache(t, l, newClock())

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, err := c.Get(ctx, "K1")
		done <- err
	}()
	<-l.entered
	cancel()
	if err := <-done; !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled caller got %v", err)
	}
	close(l.gate)
	waitFor(t, func() bool { c.items.Wait(); _, ok := c.items.Get("K1"); return ok })
	if e := mustGet(t, c, "K1"); e.AccessKeyID != "ak-1" || l.calls.Load() != 1 {
		t.Fatalf("the load of the canceled caller should have landed (calls %d)", l.calls.Load())
	}
}

func TestFillRacingInvalidationDoesNotLand(t *testing.T) {
	l := newGatedLoader(2, credential("K1", "ak-old"))
	c := newTestCache(t, l, newClock())

	got := make(chan *Entry)
	go func() {
		e, _ := c.Get(context.Background(), "K1")
		got <- e
	}()
	<-l.entered
	// The load reads the record from before a change whose invalidation
	// arrives while it is in flight.
	c.Invalidate("K1")
	l.gate <- struct{}{}
	if e := <-got; e.AccessKeyID != "ak-old" {
		t.Fatalf("the racing caller got %s", e.AccessKeyID)
	}
	c.items.Wait()

	l.put(credential("K1", "ak-new"))
	go func() { <-l.entered; l.gate <- struct{}{} }()
	if e := mustGet(t, c, "K1"); e.AccessKeyID != "ak-new" {
		t.Fatalf("after the invalidation got %s: the racing fill landed", e.AccessKeyID)
	}
	wantLoads(t, l, 2)
}

func TestMissAfterInvalidationDoesNotJoinOlderLoad(t *testing.T) {
	l := newGatedLoader(2, credential("K1", "ak-old"))
	c := newTestCache(t, l, newClock())

	first := make(chan *Entry)
	go func() { e, _ := c.Get(context.Background(), "K1"); first <- e }()
	<-l.entered
	c.Invalidate("K1")
	second := make(chan *Entry)
	go func() { e, _ := c.Get(context.Background(), "K1"); second <- e }()
	<-l.entered // the second miss started its own load
	l.gate <- struct{}{}
	l.gate <- struct{}{}
	<-first
	<-second
	wantLoads(t, l, 2)
}

// TestInvalidationStress races readers against writers that change the
// store and invalidate: once the writers are done, every Get must see the
// last version. Run with -race.
func TestInvalidationStress(t *testing.T) {
	l := newFakeLoader(credential("K1", "v0"))
	c := newTestCache(t, l, newClock())

	var version atomic.Int64
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for range 4 {
		readers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
					if _, err := c.Get(context.Background(), "K1"); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	for range 300 {
		v := version.Add(1)
		l.put(credential("K1", fmt.Sprint("v", v)))
		c.Invalidate("K1")
		if v%50 == 0 {
			c.InvalidateAll()
		}
		runtime.Gosched()
	}
	close(stop)
	readers.Wait()
	c.items.Wait()

	want := fmt.Sprint("v", version.Load())
	for range 3 {
		if e := mustGet(t, c, "K1"); e.AccessKeyID != want {
			t.Fatalf("after the last invalidation got %s, want %s", e.AccessKeyID, want)
		}
	}
}

func TestFollowAppliesTheChangeFeed(t *testing.T) {
	l := newFakeLoader(credential("K1", "ak-1"), credential("K2", "ak-2"))
	c := newTestCache(t, l, newClock())
	mustGet(t, c, "K1")
	mustGet(t, c, "K2")

	feed := make(chan store.Change)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	followed := make(chan struct{})
	go func() { c.Follow(ctx, feed); close(followed) }()

	l.put(credential("K1", "ak-1b"))
	l.put(credential("K2", "ak-2b"))
	feed <- store.Change{Revision: 7, APIKeys: []string{"K1"}}
	waitFor(t, func() bool { return c.Stats().Invalidations == 1 })
	if e := mustGet(t, c, "K1"); e.AccessKeyID != "ak-1b" {
		t.Fatalf("K1 after its change: %s", e.AccessKeyID)
	}
	if e := mustGet(t, c, "K2"); e.AccessKeyID != "ak-2" {
		t.Fatalf("K2 was not named but changed: %s", e.AccessKeyID)
	}

	feed <- store.Change{Reset: true}
	waitFor(t, func() bool { return c.Stats().Resets == 1 })
	if e := mustGet(t, c, "K2"); e.AccessKeyID != "ak-2b" {
		t.Fatalf("K2 after a reset: %s", e.AccessKeyID)
	}

	close(feed)
	select {
	case <-followed:
	case <-time.After(5 * time.Second):
		t.Fatal("Follow did not return when the feed closed")
	}
	if c.Stats().Resets != 2 {
		t.Fatal("a closed feed should drop the cache")
	}
}

func TestFollowReturnsWhenContextEnds(t *testing.T) {
	c := newTestCache(t, newFakeLoader(), newClock())
	ctx, cancel := context.WithCancel(context.Background())
	followed := make(chan struct{})
	go func() { c.Follow(ctx, make(chan store.Change)); close(followed) }()
	cancel()
	select {
	case <-followed:
	case <-time.After(5 * time.Second):
		t.Fatal("Follow did not return when its context ended")
	}
}

// TestEntrySize measures the memory a cached key costs, ristretto's
// counters and maps included (at most 1 KiB per key, docs/operations.md). The
// cache's own share is held to 768 bytes, leaving the rest to the signing
// key the key's Secret derives on its first verification, which is
// measured too and reported.
func TestEntrySize(t *testing.T) {
	const keys = 10_000
	apiKeys := make([]string, keys)
	for i := range apiKeys {
		apiKeys[i] = fmt.Sprintf("%032X", i)
	}
	// Like the store, build every credential from fresh strings.
	l := loaderFunc(func(_ context.Context, apiKey string) (*store.Credential, error) {
		cr := credential(strings.Clone(apiKey), "ak-"+strings.ToLower(apiKey[20:]))
		cr.Secret = apiKey + apiKey
		cr.Authorization.AllowedIPs = []string{"10.0.0.0/8", "192.0.2.7"}
		cr.Authorization.Bindings = []store.Binding{
			{Group: strings.Clone("orders"), Environment: strings.Clone("online")},
			{Group: strings.Clone("billing"), Environment: strings.Clone("*")},
		}
		return cr, nil
	})

	before := heapInUse()
	c, err := New(Config{MaxEntries: keys}, l)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, k := range apiKeys {
		c.Get(context.Background(), k)
	}
	c.items.Wait()
	stored := 0
	c.items.IterValues(func(*item) bool { stored++; return false })
	if stored < keys*9/10 {
		t.Fatalf("only %d of %d keys were stored", stored, keys)
	}
	cached := heapInUse() - before
	for _, k := range apiKeys {
		if e, err := c.Get(context.Background(), k); err == nil {
			verifySigned(t, e, k, k+k)
		}
	}
	verified := heapInUse() - before

	perKey, withSigningKey := cached/int64(stored), verified/int64(stored)
	t.Logf("about %d bytes per cached key, %d once its secret derived a signing key (%d keys stored)", perKey, withSigningKey, stored)
	if perKey > 768 {
		t.Fatalf("the cache takes %d bytes per key, its share of the 1 KiB per key is 768", perKey)
	}
}

func verifySigned(t *testing.T, e *Entry, apiKey, apiSecret string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "http://api.example.com/v1/orders", nil)
	if err := signature.Sign(req, signature.JDCloud2, apiKey, apiSecret); err != nil {
		t.Fatal(err)
	}
	var cr signature.Credentials
	if err := signature.Parse(req.Header, signature.AllSchemes, &cr); err != nil {
		t.Fatal(err)
	}
	r := signature.Request{Method: req.Method, Host: req.Host, Path: req.URL.EscapedPath(), RawQuery: req.URL.RawQuery, Header: req.Header}
	if !signature.Verify(&r, &cr, e.Secret, emptySHA256) {
		t.Fatal("a request signed with the key's secret did not verify")
	}
}

const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

type loaderFunc func(ctx context.Context, apiKey string) (*store.Credential, error)

func (f loaderFunc) LoadCredential(ctx context.Context, apiKey string) (*store.Credential, error) {
	return f(ctx, apiKey)
}

func heapInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 5s")
		}
		time.Sleep(time.Millisecond)
	}
}

func BenchmarkGetHit(b *testing.B) {
	c := newTestCache(b, newFakeLoader(credential("K1", "ak-1")), newClock())
	mustGet(b, c, "K1")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Get(ctx, "K1"); err != nil {
			b.Fatal(err)
		}
	}
}

// At the default size the admission sketch is what a cache holds from the
// start, and the collector's headroom doubles it (admissionCounters).
func TestEmptyCacheHeapAtDefaultSize(t *testing.T) {
	before := heapInUse()
	c, err := New(Config{}, loaderFunc(func(context.Context, string) (*store.Credential, error) {
		return nil, store.ErrNotFound
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const limit = 28 << 20
	if held := heapInUse() - before; held > limit {
		t.Fatalf("an empty cache of %d entries holds %.1f MiB, want at most %d MiB", DefaultMaxEntries, float64(held)/(1<<20), limit>>20)
	}
}
