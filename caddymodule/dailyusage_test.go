package caddymodule

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/accessauth/caddy-access-auth/signature"
	"github.com/accessauth/caddy-access-auth/store"
)

// TestHandlerRecordsDailyUsage: requests let through count as the key's
// allowed ones of the route's group; refused ones (401 here) do not count.
func TestHandlerRecordsDailyUsage(t *testing.T) {
	h, st, key := servingHandler(t)
	next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })
	tests := []struct {
		name   string
		signed bool
		status int
	}{
		{"signed", true, http.StatusOK},
		{"signed again", true, http.StatusOK},
		{"unsigned", false, http.StatusUnauthorized},
		{"signed a third time", true, http.StatusOK},
	}
	for _, tc := range tests {
		r := httptest.NewRequest("GET", "http://api.example.com/orders/1", nil)
		if tc.signed {
			if err := signature.Sign(r, signature.JDCloud2, key.APIKey, key.APISecret); err != nil {
				t.Fatal(err)
			}
		}
		w := httptest.NewRecorder()
		if err := h.ServeHTTP(w, caddyhttp.PrepareRequest(r, caddy.NewReplacer(), w, nil), next); err != nil || w.Code != tc.status {
			t.Fatalf("%s: %d, %v; want %d", tc.name, w.Code, err, tc.status)
		}
	}
	if waiting := st.daily.Flush(context.Background()); waiting != 0 {
		t.Fatalf("%d requests not flushed", waiting)
	}
	allowed, _ := store.DailyUsageCounter(key.ID, "orders", false, time.Now())
	limited, _ := store.DailyUsageCounter(key.ID, "orders", true, time.Now())
	got, err := st.store.Counts(context.Background(), []string{allowed, limited})
	if err != nil || !slices.Equal(got, []int64{3, 0}) {
		t.Errorf("daily counts %v, %v; want [3 0]", got, err)
	}
}
