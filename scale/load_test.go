package scale

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/accessauth/caddy-access-auth/internal/bulkgen"
	"github.com/accessauth/caddy-access-auth/internal/gatewaytest"
	"github.com/accessauth/caddy-access-auth/signature"
)

// expectedStatus are the answers the gateway may give under faults.
var expectedStatus = map[int]bool{200: true, 401: true, 403: true, 429: true, 503: true}

// load drives signed requests over the bulk keys, picked by a Zipf law,
// spread over the nodes that are up; every request carries a fresh date
// and nonce. It counts every answer by status and keeps the latencies of
// the 200s.
type load struct {
	nodes []*gatewaytest.Node
	down  []atomic.Bool // nodes a fault has taken away, skipped
	keys  int

	mu         sync.Mutex
	statuses   map[int]int
	unexpected []string
	latencies  []time.Duration
	transport  atomic.Int64 // requests to a node that was going down
	lastBad    atomic.Int64 // unix nanos of the last answer other than 200
}

func newLoad(nodes []*gatewaytest.Node, keys int) *load {
	return &load{nodes: nodes, down: make([]atomic.Bool, len(nodes)), keys: keys, statuses: map[int]int{}}
}

// run sends load from workers goroutines until ctx ends.
func (l *load) run(ctx context.Context, workers int) *sync.WaitGroup {
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers, IdleConnTimeout: time.Minute}}
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			zipf := rand.NewZipf(rng, 1.1, 1, uint64(l.keys-1))
			for i := w; ctx.Err() == nil; i++ {
				n := i % len(l.nodes)
				if l.down[n].Load() {
					time.Sleep(time.Millisecond)
					continue
				}
				l.one(ctx, client, l.nodes[n], int(zipf.Uint64()))
			}
		})
	}
	return &wg
}

func (l *load) one(ctx context.Context, client *http.Client, n *gatewaytest.Node, key int) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, n.Site+"/x", nil)
	if err := signature.Sign(req, signature.JDCloud2, bulkgen.APIKey(key), bulkgen.Secret(key)); err != nil {
		panic(err)
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() == nil || !errors.Is(err, context.Canceled) {
			l.transport.Add(1) // the node was killed under the request
		}
		return
	}
	resp.Body.Close()
	took := time.Since(start)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.statuses[resp.StatusCode]++
	if resp.StatusCode == http.StatusOK {
		l.latencies = append(l.latencies, took)
		return
	}
	l.lastBad.Store(time.Now().UnixNano())
	if !expectedStatus[resp.StatusCode] && len(l.unexpected) < 20 {
		l.unexpected = append(l.unexpected, resp.Status+" from "+n.Name)
	}
}

// figures returns the counts so far and the sorted latencies of the 200s.
func (l *load) figures() (total, ok, unexpected int, sorted []time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for status, n := range l.statuses {
		total += n
		if !expectedStatus[status] {
			unexpected += n
		}
	}
	sorted = slices.Clone(l.latencies)
	slices.Sort(sorted)
	return total, l.statuses[http.StatusOK], unexpected, sorted
}
