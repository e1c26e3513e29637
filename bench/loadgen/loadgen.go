// Package loadgen sends signed requests to an HTTP endpoint from concurrent
// workers for a while and reports how many were served and how long each
// took. Every request is signed anew (a fresh date and nonce), as real
// clients do, so replay protection sees a new nonce every time.
package loadgen

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/accessauth/caddy-access-auth/signature"
)

// Options describe one round of load.
type Options struct {
	URL       string // GET target
	Scheme    signature.Scheme
	APIKey    string
	APISecret string
	Workers   int           // concurrent requests, default 1
	Duration  time.Duration // how long the round lasts
	// WantStatus is the status every answer must have, default 200.
	WantStatus int
	Client     *http.Client // default NewClient(Workers)
}

// Result is what a round measured.
type Result struct {
	Requests int64         // answered with WantStatus
	Elapsed  time.Duration // from the first request to the last answer
	// Latencies of the answered requests, sorted, signing excluded.
	Latencies []time.Duration
}

// Throughput is answered requests per second.
func (r Result) Throughput() float64 { return float64(r.Requests) / r.Elapsed.Seconds() }

// Percentile returns the latency below which a fraction p (0..1) of the
// requests fell, 0 without requests.
func (r Result) Percentile(p float64) time.Duration {
	return Percentile(r.Latencies, p)
}

// Percentile returns the p-quantile (0..1) of sorted durations, nearest
// rank; 0 when there are none.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// NewClient is an HTTP client that keeps a warm connection per worker.
func NewClient(workers int) *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns:        2 * workers,
			MaxIdleConnsPerHost: 2 * workers,
			IdleConnTimeout:     time.Minute,
		},
	}
}

// Run sends signed GETs of o.URL from o.Workers workers until o.Duration
// has passed or ctx ends. An answer of another status or a transport error
// ends the round with an error.
func Run(ctx context.Context, o Options) (Result, error) {
	workers := max(o.Workers, 1)
	want := o.WantStatus
	if want == 0 {
		want = http.StatusOK
	}
	client := o.Client
	if client == nil {
		client = NewClient(workers)
	}
	ctx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()

	var (
		failure   atomic.Pointer[error]
		mu        sync.Mutex
		latencies []time.Duration
		wg        sync.WaitGroup
	)
	fail := func(err error) {
		failure.CompareAndSwap(nil, &err)
		cancel()
	}
	start := time.Now()
	for range workers {
		wg.Go(func() {
			own := make([]time.Duration, 0, 4096)
			for ctx.Err() == nil {
				took, err := one(client, o, want)
				if err != nil {
					if ctx.Err() == nil {
						fail(err)
					}
					break
				}
				own = append(own, took)
			}
			mu.Lock()
			latencies = append(latencies, own...)
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := failure.Load(); err != nil {
		return Result{}, *err
	}
	slices.Sort(latencies)
	return Result{Requests: int64(len(latencies)), Elapsed: elapsed, Latencies: latencies}, nil
}

// one signs and sends one request and times it (signing excluded).
func one(client *http.Client, o Options, want int) (time.Duration, error) {
	req, err := http.NewRequest(http.MethodGet, o.URL, nil)
	if err != nil {
		return 0, err
	}
	if err := signature.Sign(req, o.Scheme, o.APIKey, o.APISecret); err != nil {
		return 0, err
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	took := time.Since(start)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != want {
		return 0, fmt.Errorf("GET %s: status %d, want %d: %.200s", o.URL, resp.StatusCode, want, body)
	}
	return took, nil
}
