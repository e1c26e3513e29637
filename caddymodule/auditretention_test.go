package caddymodule

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/accessauth/caddy-access-auth/store"
	boltstore "github.com/accessauth/caddy-access-auth/store/bolt"
)

// The node removes audit records older than audit_retention in the
// background and keeps the newer ones.
func TestPruneAuditInTheBackground(t *testing.T) {
	defer func(d time.Duration) { auditPruneInterval = d }(auditPruneInterval)
	auditPruneInterval = 60 * time.Millisecond
	backend, err := boltstore.Open(filepath.Join(t.TempDir(), "store.db"))
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Now().Add(-100 * 24 * time.Hour)
	s, err := store.Open(backend, store.Options{MasterKeys: [][]byte{bytes.Repeat([]byte{1}, store.MasterKeySize)}, Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	actor := store.Actor{Name: "t"}
	for _, g := range []string{"old-a", "old-b"} {
		if _, err := s.CreateGroup(ctx, store.Group{Name: g}, actor); err != nil {
			t.Fatal(err)
		}
	}
	clock = time.Now().Add(-89 * 24 * time.Hour)
	if _, err := s.CreateGroup(ctx, store.Group{Name: "kept"}, actor); err != nil {
		t.Fatal(err)
	}

	run, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go pruneAudit(run, s, func() time.Duration { return store.DefaultAuditRetention }, zap.NewNop(), done)
	deadline := time.Now().Add(5 * time.Second)
	var records []store.AuditRecord
	for time.Now().Before(deadline) {
		if records, _, err = s.ListAudit(ctx, store.Page{}); err != nil {
			t.Fatal(err)
		}
		if len(records) == 1 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	<-done
	if len(records) != 1 || records[0].Target != "kept" {
		t.Fatalf("audit after pruning: %+v, want only the record of kept", records)
	}
}
