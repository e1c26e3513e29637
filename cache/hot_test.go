package cache

import (
	"context"
	"strconv"
	"testing"
	"time"
)

// The hot table answers repeated hits without ristretto; every way an
// entry leaves the cache must reach it too.
func TestHotTableFollowsInvalidation(t *testing.T) {
	tests := []struct {
		name   string
		change func(c *Cache, clk *clock)
	}{
		{"invalidate", func(c *Cache, _ *clock) { c.Invalidate("K1") }},
		{"invalidate another key", func(c *Cache, _ *clock) { c.Invalidate("K2", "K1") }},
		{"invalidate all", func(c *Cache, _ *clock) { c.InvalidateAll() }},
		{"ttl", func(_ *Cache, clk *clock) { clk.advance(DefaultTTL) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newFakeLoader(credential("K1", "ak-1"))
			clk := newClock()
			c := newTestCache(t, l, clk)
			mustGet(t, c, "K1")
			mustGet(t, c, "K1") // found in ristretto: enters the hot table
			if e := mustGet(t, c, "K1"); e.AccessKeyID != "ak-1" || l.calls.Load() != 1 {
				t.Fatalf("hot hit: %s after %d loads", e.AccessKeyID, l.calls.Load())
			}
			l.put(credential("K1", "ak-2"))
			tt.change(c, clk)
			if e := mustGet(t, c, "K1"); e.AccessKeyID != "ak-2" {
				t.Fatalf("after the change the cache served %s", e.AccessKeyID)
			}
		})
	}
}

// A key that shares a slot with another displaces it without serving it.
func TestHotTableSlotsHoldTheirKey(t *testing.T) {
	l := newFakeLoader()
	c := newTestCache(t, l, newClock())
	// More keys than slots: some share one.
	for i := range hotSlots + 100 {
		l.put(credential(key(i), "ak-"+key(i)))
	}
	ctx := context.Background()
	for round := range 2 {
		for i := range hotSlots + 100 {
			e, err := c.Get(ctx, key(i))
			if err != nil || e.APIKey != key(i) {
				t.Fatalf("round %d: Get(%s) = %v, %v", round, key(i), e, err)
			}
		}
		c.items.Wait()
	}
}

func key(i int) string { return "K" + time.Duration(i).String() }

func BenchmarkGetAtHit(b *testing.B) {
	c, err := New(Config{MaxEntries: 1000}, newFakeLoader(credential("K1", "ak-1")))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	mustGet(b, c, "K1")
	mustGet(b, c, "K1")
	ctx := context.Background()
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.GetAt(ctx, "K1", now); err != nil {
			b.Fatal(err)
		}
	}
}

// ristretto stores asynchronously: the Set of a load that returned may land
// after an Invalidate that followed it. The entry it stores is older than
// the invalidation and must never be served.
func TestInvalidateBeatsABufferedSet(t *testing.T) {
	l := newFakeLoader()
	c := newTestCache(t, l, newClock())
	ctx := context.Background()
	stale := 0
	for i := range 3000 {
		l.put(credential("K1", "ak-"+strconv.Itoa(i)))
		if _, err := c.Get(ctx, "K1"); err != nil { // loads, stores in the background
			t.Fatal(err)
		}
		l.put(credential("K1", "ak-"+strconv.Itoa(i)+"-changed"))
		c.Invalidate("K1")
		for range 3 {
			if e, err := c.Get(ctx, "K1"); err != nil || e.AccessKeyID != "ak-"+strconv.Itoa(i)+"-changed" {
				stale++
			}
		}
	}
	if stale > 0 {
		t.Fatalf("%d lookups after an invalidation served the entry from before it", stale)
	}
}

// The Get after a load is a hit, even before ristretto stores the entry
// (asynchronously): one load per key.
func TestGetAfterLoadHits(t *testing.T) {
	l := newFakeLoader()
	c := newTestCache(t, l, newClock())
	ctx := context.Background()
	const keys = 2000
	for i := range keys {
		l.put(credential(key(i), "ak"))
		for range 2 {
			if _, err := c.Get(ctx, key(i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got := l.calls.Load(); got != keys {
		t.Fatalf("%d loads for %d keys fetched twice each", got, keys)
	}
}
