package redisstore_test

import (
	"context"
	"errors"
	"testing"

	"github.com/accessauth/caddy-access-auth/internal/redistest"
	"github.com/accessauth/caddy-access-auth/store"
	redisstore "github.com/accessauth/caddy-access-auth/store/redis"
)

// TestUpdateAhead: a write merged before its transaction commits as it was
// merged when nothing it read changed meanwhile, or when only this
// process's own writes of other records came in between; it is merged
// again, on what the store then holds, when another node or this process
// wrote a record it read, and when it scanned (a range cannot be checked).
func TestUpdateAhead(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t, redistest.Options{})
	b := openRedis(t, redisstore.Options{Addrs: []string{srv.Addr}})
	otherNode := openRedis(t, redisstore.Options{Addrs: []string{srv.Addr}})

	tests := []struct {
		name      string
		scan      bool
		meanwhile func() // between the merge and the transaction
		wantRuns  int
	}{
		{name: "nothing meanwhile", meanwhile: func() {}, wantRuns: 1},
		{name: "own write of another record", meanwhile: func() { put(t, b, "t", "other", "x") }, wantRuns: 1},
		{name: "own writes of other tables", meanwhile: func() {
			put(t, b, "u", "a", "x")
			put(t, b, "u", "b", "y")
		}, wantRuns: 1},
		{name: "own write of the record read", meanwhile: func() { put(t, b, "t", "in", "changed here") }, wantRuns: 2},
		{name: "another node's write of another record", meanwhile: func() { put(t, otherNode, "t", "other", "x") }, wantRuns: 2},
		{name: "another node's write of the record read", meanwhile: func() { put(t, otherNode, "t", "in", "changed there") }, wantRuns: 2},
		{name: "a scan", scan: true, meanwhile: func() {}, wantRuns: 1 + 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			put(t, b, "t", "in", "before")
			runs := 0
			merge := func(tx store.Tx) error {
				runs++
				if tt.scan {
					if _, err := tx.Scan("t", "", 10); err != nil {
						return err
					}
				}
				in, err := tx.Get("t", "in")
				if err != nil {
					return err
				}
				return tx.Put("t", "out", append([]byte("merged from "), in...))
			}
			var visible bool
			err := b.UpdateAhead(ctx, merge, func() error { tt.meanwhile(); return nil }, func() { visible = true })
			if err != nil || !visible {
				t.Fatalf("UpdateAhead = %v, visible %v", err, visible)
			}
			if runs != tt.wantRuns {
				t.Errorf("merged %d times, want %d", runs, tt.wantRuns)
			}
			want := "merged from " + mustGet(t, b, "t", "in")
			if got := mustGet(t, b, "t", "out"); got != want {
				t.Errorf("out = %q, want %q", got, want)
			}
		})
	}

	t.Run("ready fails", func(t *testing.T) {
		refused := errors.New("the batch before failed")
		err := b.UpdateAhead(ctx, func(tx store.Tx) error { return tx.Put("t", "never", []byte("x")) },
			func() error { return refused }, func() { t.Error("visible called") })
		if !errors.Is(err, refused) {
			t.Fatalf("UpdateAhead = %v, want ready's error", err)
		}
		if got := mustGet(t, b, "t", "never"); got != "" {
			t.Errorf("a write whose ready failed was committed: %q", got)
		}
	})

	t.Run("an error of the merge ahead is the transaction's to give", func(t *testing.T) {
		put(t, b, "t", "gate", "closed")
		runs := 0
		err := b.UpdateAhead(ctx, func(tx store.Tx) error {
			runs++
			v, err := tx.Get("t", "gate")
			if err != nil || string(v) == "closed" {
				return errors.Join(err, errors.New("gate closed"))
			}
			return tx.Put("t", "through", []byte("yes"))
		}, func() error { put(t, otherNode, "t", "gate", "open"); return nil }, nil)
		if err != nil || runs != 2 || mustGet(t, b, "t", "through") != "yes" {
			t.Fatalf("UpdateAhead = %v after %d runs, through = %q", err, runs, mustGet(t, b, "t", "through"))
		}
	})
}
