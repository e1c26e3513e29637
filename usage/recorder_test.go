package usage

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/accessauth/caddy-access-auth/store"
)

// memAdder is a fake store: it sums what it is given, or fails with err.
type memAdder struct {
	mu      sync.Mutex
	err     error
	calls   int
	counts  map[string]int64
	expires map[string]time.Time
}

func newMemAdder() *memAdder {
	return &memAdder{counts: map[string]int64{}, expires: map[string]time.Time{}}
}

func (m *memAdder) AddCounts(_ context.Context, deltas []store.CountDelta) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls++
	if m.err != nil {
		return m.err
	}
	for _, d := range deltas {
		m.counts[d.Name] += d.Delta
		m.expires[d.Name] = d.ExpiresAt
	}
	return nil
}

func (m *memAdder) snapshot() map[string]int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.counts)
}

func (m *memAdder) fail(err error) {
	m.mu.Lock()
	m.err = err
	m.mu.Unlock()
}

var (
	day1 = time.Date(2026, 12, 3, 23, 59, 59, 0, time.UTC)
	day2 = day1.Add(2 * time.Second) // the next UTC day
)

func TestRecorderFlushesPerKeyGroupDay(t *testing.T) {
	tests := []struct {
		name    string
		records func(r *Recorder)
		want    map[string]int64
	}{
		{"nothing recorded adds nothing", func(*Recorder) {}, map[string]int64{}},
		{"allowed and limited per key, group and UTC day", func(r *Recorder) {
			r.Record("ak-1", "pay", false, day1)
			r.Record("ak-1", "pay", false, day1)
			r.Record("ak-1", "pay", true, day1)
			r.Record("ak-1", "pay", false, day2)
			r.Record("ak-1", "ship", false, day1)
			r.Record("ak-2", "pay", true, day1.In(time.FixedZone("x", 3600))) // same instant, another zone
		}, map[string]int64{
			"usage/ak-1/2026-12-03/pay/allowed":  2,
			"usage/ak-1/2026-12-03/pay/limited":  1,
			"usage/ak-1/2026-12-04/pay/allowed":  1,
			"usage/ak-1/2026-12-03/ship/allowed": 1,
			"usage/ak-2/2026-12-03/pay/limited":  1,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := newMemAdder()
			r := New(m, zap.NewNop())
			tc.records(r)
			if waiting := r.Flush(context.Background()); waiting != 0 {
				t.Errorf("%d requests waiting after a flush the store took", waiting)
			}
			if got := m.snapshot(); !maps.Equal(got, tc.want) {
				t.Errorf("store has %v, want %v", got, tc.want)
			}
			if len(tc.want) == 0 && m.calls != 0 {
				t.Errorf("%d AddCounts for nothing", m.calls)
			}
			for name := range tc.want {
				if _, exp := store.DailyUsageCounter("ak-1", "pay", false, day1); name == "usage/ak-1/2026-12-03/pay/allowed" && !m.expires[name].Equal(exp) {
					t.Errorf("%s expires %v, want %v", name, m.expires[name], exp)
				}
			}
			// A second flush adds only what came since.
			r.Record("ak-1", "pay", false, day1)
			r.Flush(context.Background())
			if got := m.snapshot()["usage/ak-1/2026-12-03/pay/allowed"]; got != tc.want["usage/ak-1/2026-12-03/pay/allowed"]+1 {
				t.Errorf("after a second flush: %d", got)
			}
		})
	}
}

func TestRecorderRetriesWhatTheStoreRefused(t *testing.T) {
	m := newMemAdder()
	r := New(m, zap.NewNop())
	m.fail(store.ErrUnavailable)
	r.Record("ak-1", "pay", false, day1)
	r.Record("ak-1", "pay", true, day1)
	if waiting := r.Flush(context.Background()); waiting != 2 {
		t.Errorf("waiting = %d, want 2", waiting)
	}
	r.Record("ak-1", "pay", false, day1)
	if waiting := r.Flush(context.Background()); waiting != 3 {
		t.Errorf("waiting = %d, want 3", waiting)
	}
	m.fail(nil)
	if waiting := r.Flush(context.Background()); waiting != 0 {
		t.Errorf("waiting = %d once the store is back, want 0", waiting)
	}
	want := map[string]int64{"usage/ak-1/2026-12-03/pay/allowed": 2, "usage/ak-1/2026-12-03/pay/limited": 1}
	if got := m.snapshot(); !maps.Equal(got, want) {
		t.Errorf("store has %v, want %v", got, want)
	}
}

func TestRecorderBoundsWhatWaits(t *testing.T) {
	m := newMemAdder()
	core, logs := observer.New(zap.InfoLevel)
	r := New(m, zap.New(core))
	r.maxPending = 3
	m.fail(errors.New("down"))
	for i := range 5 {
		r.Record("ak-"+strconv.Itoa(i), "pay", false, day1)
		r.Record("ak-"+strconv.Itoa(i), "pay", false, day1)
	}
	if waiting := r.Flush(context.Background()); waiting != 6 {
		t.Errorf("waiting = %d, want 6 (3 counters of 2)", waiting)
	}
	lost := logs.FilterMessageSnippet("daily usage lost").All()
	if len(lost) != 1 || lost[0].ContextMap()["requests"] != int64(4) {
		t.Errorf("logged %v, want one line losing 4 requests", logs.All())
	}
	m.fail(nil)
	r.Flush(context.Background())
	var total int64
	for _, n := range m.snapshot() {
		total += n
	}
	if total != 6 {
		t.Errorf("the store got %d requests, want the 6 kept", total)
	}
}

func TestRecorderCloseFlushes(t *testing.T) {
	m := newMemAdder()
	r := New(m, zap.NewNop())
	r.Start(time.Hour) // no tick during the test: Close must flush
	r.Record("ak-1", "pay", false, day1)
	r.Close()
	if got := m.snapshot(); got["usage/ak-1/2026-12-03/pay/allowed"] != 1 {
		t.Errorf("after Close the store has %v", got)
	}
}

func TestRecorderStartFlushesEveryInterval(t *testing.T) {
	m := newMemAdder()
	r := New(m, zap.NewNop())
	r.Start(10 * time.Millisecond)
	defer r.Close()
	r.Record("ak-1", "pay", false, day1)
	deadline := time.Now().Add(10 * time.Second)
	for m.snapshot()["usage/ak-1/2026-12-03/pay/allowed"] != 1 {
		if time.Now().After(deadline) {
			t.Fatal("no flush within 10 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRecorderConcurrentRecordsAllCounted records from several goroutines
// while flushes run back to back, so that slots are published, retire
// and are sealed meanwhile: no request is lost or counted twice.
func TestRecorderConcurrentRecordsAllCounted(t *testing.T) {
	m := newMemAdder()
	r := New(m, zap.NewNop())
	const workers, each = 4, 2000
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				r.Record("ak-"+strconv.Itoa(i%97), "g"+strconv.Itoa(w%2), i%3 == 0, day1)
			}
		}()
	}
	stop := make(chan struct{})
	flushed := make(chan struct{})
	go func() {
		defer close(flushed)
		for {
			select {
			case <-stop:
				return
			default:
				r.Flush(context.Background())
			}
		}
	}()
	wg.Wait()
	close(stop)
	<-flushed
	r.Flush(context.Background())
	var total int64
	for _, n := range m.snapshot() {
		total += n
	}
	if total != workers*each {
		t.Errorf("the store counted %d requests, want %d", total, workers*each)
	}
}

// TestRecorderRetiresIdleSlots: a slot that counted nothing for
// retireAfter flushes leaves the map, so a long-running node's memory
// follows the keys in use, not every key of the day (yesterday's slots
// leave so too); the retired slot is sealed, so a Record that still found
// it counts elsewhere, and the key's next request makes a new slot.
func TestRecorderRetiresIdleSlots(t *testing.T) {
	m := newMemAdder()
	r := New(m, zap.NewNop())
	now := time.Now()
	r.Record("ak-idle", "pay", false, now)
	r.Record("ak-yesterday", "pay", false, now.AddDate(0, 0, -1))
	r.Flush(context.Background()) // publishes them
	idle := (*r.slots.Load())[slotKey{"ak-idle", "pay", dayOf(now)}]
	if idle == nil {
		t.Fatal("ak-idle's slot was not published")
	}
	for range retireAfter {
		r.Record("ak-busy", "pay", false, now)
		r.Flush(context.Background())
	}
	published := func() (keys []string) {
		for k := range *r.slots.Load() {
			keys = append(keys, k.accessKeyID)
		}
		slices.Sort(keys)
		return keys
	}
	if got := published(); !slices.Equal(got, []string{"ak-busy"}) {
		t.Fatalf("slots kept %v, want [ak-busy]", got)
	}
	if idle.add(false) {
		t.Fatal("a Record that found the retired slot counted there: no flush reads it again")
	}
	r.Record("ak-idle", "pay", false, now)
	r.Flush(context.Background())
	name, _ := store.DailyUsageCounter("ak-idle", "pay", false, now)
	if got := m.snapshot()[name]; got != 2 {
		t.Errorf("ak-idle counted %d requests, want 2", got)
	}
	if got := published(); !slices.Equal(got, []string{"ak-busy", "ak-idle"}) {
		t.Errorf("slots %v, want [ak-busy ak-idle]", got)
	}
}

// TestRecorderPublishesWhenItPays: beside a big map, one new key's slot
// waits (its requests take the mutex, and are counted every flush) until
// publishEvery flushes have passed; enough new keys are published at once.
func TestRecorderPublishesWhenItPays(t *testing.T) {
	m := newMemAdder()
	r := New(m, zap.NewNop())
	now := time.Now()
	const big = 800
	for i := range big {
		r.Record("ak-"+strconv.Itoa(i), "pay", false, now)
	}
	r.Flush(context.Background())
	if n := len(*r.slots.Load()); n != big {
		t.Fatalf("%d slots published, want %d", n, big)
	}
	isPublished := func(key string) bool { return (*r.slots.Load())[slotKey{key, "pay", dayOf(now)}] != nil }
	name, _ := store.DailyUsageCounter("ak-new", "pay", false, now)
	for flush := 1; flush <= publishEvery; flush++ { // fewer than retireAfter: none of the 800 retires
		r.Record("ak-new", "pay", false, now)
		r.Flush(context.Background())
		if got := m.snapshot()[name]; got != int64(flush) {
			t.Fatalf("after flush %d ak-new counted %d, want %d", flush, got, flush)
		}
		if want := flush == publishEvery; isPublished("ak-new") != want {
			t.Fatalf("after flush %d ak-new published: %v, want %v", flush, !want, want)
		}
	}
	for i := range (len(*r.slots.Load()) + 7) / 8 {
		r.Record("ak-burst-"+strconv.Itoa(i), "pay", false, now)
	}
	r.Flush(context.Background())
	if !isPublished("ak-burst-0") {
		t.Error("a burst of an eighth of the map's size was not published at once")
	}
}

// TestRecordDoesNotAllocate: once a key's slot is published, recording
// allocates nothing.
func TestRecordDoesNotAllocate(t *testing.T) {
	r := New(newMemAdder(), zap.NewNop())
	at := time.Now()
	r.Record("ak-1", "pay", false, at)
	r.Flush(context.Background())
	if allocs := testing.AllocsPerRun(100, func() { r.Record("ak-1", "pay", false, at) }); allocs != 0 {
		t.Errorf("Record allocates %v times", allocs)
	}
}

// BenchmarkRecordParallel is the hot path in the steady state: many
// goroutines recording for a set of keys whose slots exist.
func BenchmarkRecordParallel(b *testing.B) {
	r := New(newMemAdder(), zap.NewNop())
	keys := make([]string, 64)
	at := time.Now()
	for i := range keys {
		keys[i] = "ak-" + strconv.Itoa(i)
		r.Record(keys[i], "pay", false, at)
	}
	r.Flush(context.Background())
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			r.Record(keys[i%len(keys)], "pay", false, at)
			i++
		}
	})
}

// hangingAdder is a store that never answers: it waits for the context.
type hangingAdder struct{ calls chan struct{} }

func (h hangingAdder) AddCounts(ctx context.Context, _ []store.CountDelta) error {
	select {
	case h.calls <- struct{}{}:
	default:
	}
	<-ctx.Done()
	return ctx.Err()
}

// TestRecorderCloseDoesNotWaitForAHungStore: Close cancels a flush in
// flight and bounds its own, then logs the requests it could not record.
func TestRecorderCloseDoesNotWaitForAHungStore(t *testing.T) {
	h := hangingAdder{calls: make(chan struct{}, 1)}
	core, logs := observer.New(zap.InfoLevel)
	r := New(h, zap.New(core))
	r.Record("ak-1", "pay", false, day1)
	r.Start(time.Millisecond)
	<-h.calls // a flush hangs
	r.Close()
	lost := logs.FilterMessageSnippet("not recorded at stop").All()
	if len(lost) != 1 || lost[0].ContextMap()["requests"] != int64(1) {
		t.Errorf("logged %v, want one line losing 1 request", logs.All())
	}
}
