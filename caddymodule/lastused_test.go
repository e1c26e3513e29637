package caddymodule

import (
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/accessauth/caddy-access-auth/signature"
)

func TestUsageKeepsTheLatestUse(t *testing.T) {
	u := newUsage()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	u.record("ak-a", at)
	u.record("ak-a", at.Add(-time.Second)) // a request that finished later but started earlier
	u.record("ak-b", at.Add(time.Second))
	got := u.take()
	if len(got) != 2 || !got["ak-a"].Equal(at) || !got["ak-b"].Equal(at.Add(time.Second)) {
		t.Errorf("took %v", got)
	}
	if again := u.take(); len(again) != 0 {
		t.Errorf("second take %v, want nothing", again)
	}
}

// last_used_at tells when a key was last let through, approximately
// (docs/admin-api.md).
func TestLastUsedAt(t *testing.T) {
	defer func(d time.Duration) { usageFlushInterval = d }(usageFlushInterval)
	usageFlushInterval = 20 * time.Millisecond
	startCaddy(t, "access_auth {\nstore file "+filepath.Join(t.TempDir(), "store.db")+"\n}",
		"http://localhost:9080 {\naccess_auth orders\nrespond ok\n}")
	waitGroupConfigured(t, "orders")
	used, _ := newAuthorizedKey(t, "used", nil, [2]string{"orders", "*"})
	unused, _ := newAuthorizedKey(t, "unused", nil)

	type keyTimes struct {
		LastUsedAt *time.Time `json:"last_used_at"`
		UpdatedAt  time.Time  `json:"updated_at"`
	}
	var before keyTimes
	adminDo(t, "GET", "/access-auth/keys/"+used.ID, nil, http.StatusOK, &before)
	if before.LastUsedAt != nil {
		t.Fatalf("a new key has last_used_at %v", before.LastUsedAt)
	}
	sent := time.Now()
	if a := send(t, signed(t, "GET", siteURL+"/x", "", signature.JDCloud2, used.APIKey, used.APISecret)); a.status != http.StatusOK {
		t.Fatalf("signed request: %d %s", a.status, a.body)
	}
	// A refused request is no use of the key.
	if a := send(t, signed(t, "GET", siteURL+"/x", "", signature.JDCloud2, unused.APIKey, unused.APISecret)); a.status != http.StatusForbidden {
		t.Fatalf("unbound key: %d %s", a.status, a.body)
	}

	var after keyTimes
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		adminDo(t, "GET", "/access-auth/keys/"+used.ID, nil, http.StatusOK, &after)
		if after.LastUsedAt != nil || time.Now().After(deadline) {
			break
		}
	}
	if after.LastUsedAt == nil {
		t.Fatal("last_used_at still null 5s after the key was used")
	}
	if after.LastUsedAt.Before(sent.Add(-time.Second)) || after.LastUsedAt.After(time.Now()) {
		t.Errorf("last_used_at %v, want about %v", after.LastUsedAt, sent)
	}
	if !after.UpdatedAt.Equal(before.UpdatedAt) {
		t.Errorf("using the key changed updated_at: %v → %v", before.UpdatedAt, after.UpdatedAt)
	}
	var other keyTimes
	adminDo(t, "GET", "/access-auth/keys/"+unused.ID, nil, http.StatusOK, &other)
	if other.LastUsedAt != nil {
		t.Errorf("a refused key got last_used_at %v", other.LastUsedAt)
	}
}

// BenchmarkUsageRecord is what recording a use adds to an allowed request,
// with every core recording the same key.
func BenchmarkUsageRecord(b *testing.B) {
	u := newUsage()
	now := time.Now()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			u.record("ak-06h1rsio1aaqcv30t9ahtvoe00", now)
		}
	})
}
