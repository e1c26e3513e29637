package loadgen

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accessauth/caddy-access-auth/signature"
)

const (
	apiKey    = "0123456789ABCDEF0123456789ABCDEF"
	apiSecret = "a secret of the load generator test"
)

// Every request is signed with the key's secret and a nonce never sent
// before.
func TestRunSignsEveryRequestWithAFreshNonce(t *testing.T) {
	secret := signature.NewSecret(apiSecret)
	var mu sync.Mutex
	nonces := make(map[string]bool)
	var bad []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var c signature.Credentials
		req := signature.Request{Method: r.Method, Host: r.Host, Path: r.URL.EscapedPath(), RawQuery: r.URL.RawQuery, Header: r.Header}
		const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
		ok := signature.Parse(r.Header, signature.AllSchemes, &c) == nil && signature.Verify(&req, &c, secret, emptySHA256)
		mu.Lock()
		defer mu.Unlock()
		if !ok || nonces[c.Nonce] {
			bad = append(bad, r.Header.Get("Authorization"))
		}
		nonces[c.Nonce] = true
	}))
	defer srv.Close()

	res, err := Run(context.Background(), Options{
		URL: srv.URL + "/x?a=1", Scheme: signature.JDCloud2, APIKey: apiKey, APISecret: apiSecret,
		Workers: 4, Duration: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bad) > 0 {
		t.Fatalf("%d requests badly signed or with a used nonce, first %q", len(bad), bad[0])
	}
	if res.Requests == 0 || int(res.Requests) != len(nonces) || len(res.Latencies) != int(res.Requests) {
		t.Fatalf("%d requests counted, %d latencies, %d seen by the server", res.Requests, len(res.Latencies), len(nonces))
	}
	if p50, p99 := res.Percentile(0.5), res.Percentile(0.99); p50 <= 0 || p99 < p50 || res.Throughput() <= 0 {
		t.Fatalf("p50 %v, p99 %v, %v req/s", p50, p99, res.Throughput())
	}
}

func TestRunStopsOnAnUnexpectedStatus(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "refused", http.StatusUnauthorized)
	}))
	defer srv.Close()
	start := time.Now()
	_, err := Run(context.Background(), Options{
		URL: srv.URL, Scheme: signature.JDCloud2, APIKey: apiKey, APISecret: apiSecret, Workers: 2, Duration: 10 * time.Second,
	})
	if err == nil || !strings.Contains(err.Error(), "status 401") {
		t.Fatalf("error %v, want one naming status 401", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("the round went on for %v after the failure", took)
	}
}

func TestPercentile(t *testing.T) {
	ms := func(n ...int) []time.Duration {
		var d []time.Duration
		for _, v := range n {
			d = append(d, time.Duration(v)*time.Millisecond)
		}
		return d
	}
	tests := []struct {
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{nil, 0.5, 0},
		{ms(7), 0.99, 7 * time.Millisecond},
		{ms(1, 2, 3, 4), 0.5, 2 * time.Millisecond},
		{ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 0.9, 9 * time.Millisecond},
		{ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 0.99, 10 * time.Millisecond},
		{ms(1, 2, 3), 0, time.Millisecond},
	}
	for _, tt := range tests {
		if got := Percentile(tt.sorted, tt.p); got != tt.want {
			t.Errorf("Percentile(%v, %v) = %v, want %v", tt.sorted, tt.p, got, tt.want)
		}
	}
}
