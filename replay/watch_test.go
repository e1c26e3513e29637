package replay

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// A full nonce table is reported at WARN, once for each interval in which
// it narrowed the dates it accepts, never while it only drops nonces that
// change no answer.
func TestWatchNonceTablesWarnsWhenFull(t *testing.T) {
	const interval = 10 * time.Millisecond
	core, logs := observer.New(zapcore.InfoLevel)
	table := NewLocalNonces(WithMaxNonces(1)) // one bucket of 10
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		WatchTables(ctx, zap.New(core), interval, table)
	}()
	defer func() { cancel(); <-done }()

	now := time.Now()
	fill := func(prefix string, n int, ttl time.Duration) {
		for i := range n {
			table.Record(ctx, table.Prepare("K", prefix+strconv.Itoa(i)), now, now, ttl+time.Duration(i)*time.Second)
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
