package scale

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/accessauth/caddy-access-auth/internal/gatewaytest"
)

// memoryRows adds RSS per node and the cache hit ratio.
func memoryRows(tbl *table, nodes []*gatewaytest.Node) {
	var hits, lookups float64
	var rss []string
	for _, n := range nodes {
		h := n.CacheLookups("hit")
		hits += h
		lookups += h + n.CacheLookups("miss") + n.CacheLookups("negative_hit")
		rss = append(rss, mib(n.RSS()))
	}
	tbl.add("RSS per node", "—", strings.Join(rss, ", "), true)
	tbl.add("cache hit ratio", "—", fmt.Sprintf("%.1f %%", 100*hits/max(lookups, 1)), true)
}

// maxFill is how many keys cachedKeyRows loads at most.
const maxFill = 50000

// cachedKeyRows fills the cache of n, a node that has served nothing yet,
// with up to maxFill keys, none revoked, and adds what a cached key takes: the live heap
// it adds (each side of a collection) and the RSS. The RSS also grows by
// the nonce table's pages the requests touch (up to its size) and by the
// collector's headroom (about the live heap), which at the campaign's
// sizes outweigh the keys: the live heap is the figure judged.
func cachedKeyRows(t *testing.T, tbl *table, n *gatewaytest.Node, keys, workers int) {
	fill := min(keys/2, maxFill) // the revoker starts at keys/2
	// The first tenth warms the node up (connections, buffers, pools), so
	// that the figures count the keys alone.
	warm := fill / 10
	callEvery(t, n, 0, warm, 1, workers)
	heapBefore, rssBefore := liveHeap(t, n), n.RSS()
	missesBefore := n.CacheLookups("miss")
	callEvery(t, n, warm, fill, 1, workers)
	loaded := n.CacheLookups("miss") - missesBefore
	// Ristretto may drop an entry it was given: a sample of the keys again
	// tells the share it holds.
	const sampleEvery = 10
	hitsBefore := n.CacheLookups("hit")
	sampled := callEvery(t, n, warm, fill, sampleEvery, workers)
	cached := loaded * (n.CacheLookups("hit") - hitsBefore) / float64(sampled)
	heapAdded, rssAdded := liveHeap(t, n)-heapBefore, n.RSS()-rssBefore
	if cached < float64(fill-warm)/2 {
		t.Errorf("the cache holds ~%.0f of %d keys loaded", cached, fill-warm)
		return
	}
	perKey := float64(heapAdded) / cached
	tbl.add(fmt.Sprintf("live heap added ÷ keys cached (%.0f keys on a fresh node)", cached), "≤ 1 KiB",
		fmt.Sprintf("%.0f B", perKey), perKey <= targetPerCachedKey)
	tbl.add("RSS added ÷ keys cached (nonce table pages and GC headroom included)", "—",
		fmt.Sprintf("%.0f B (%s)", float64(rssAdded)/cached, mib(rssAdded)), true)
}

// callEvery calls n with every step-th key of [from, to), from workers at
// once, and returns how many calls it made; each must be allowed.
func callEvery(t *testing.T, n *gatewaytest.Node, from, to, step, workers int) int {
	var next, refused atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := from + int(next.Add(1)-1)*step; i < to; i = from + int(next.Add(1)-1)*step {
				if call(n, i) != http.StatusOK {
					refused.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if r := refused.Load(); r > 0 {
		t.Errorf("%s refused %d calls of keys never revoked", n.Name, r)
	}
	return (to - from + step - 1) / step
}

// liveHeap is n's heap right after a collection (the heap profile's
// gc=1 collects first).
func liveHeap(t *testing.T, n *gatewaytest.Node) int64 {
	if status, _ := n.Request(http.MethodGet, "/debug/pprof/heap?gc=1", nil); status != http.StatusOK {
		t.Fatalf("heap profile of %s: %d", n.Name, status)
	}
	return int64(n.Metric("go_memstats_heap_alloc_bytes", ""))
}

// exportRSS streams an export out of n and returns the RSS it added at
// its peak and the bytes it wrote.
func exportRSS(t *testing.T, n *gatewaytest.Node) (added, written int64) {
	before := n.RSS()
	resp, err := http.Get(n.Admin + "/access-auth/export")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("export: %d", resp.StatusCode)
	}
	peak := before
	buf := make([]byte, 1<<20)
	for {
		k, err := io.ReadFull(resp.Body, buf)
		written += int64(k)
		peak = max(peak, n.RSS())
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return peak - before, written
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// soak holds the load for d (when set) and adds the slopes of RSS,
// goroutines and open files of each node, per hour: flat is the target.
func soak(t *testing.T, tbl *table, ld *load, nodes []*gatewaytest.Node, d time.Duration) {
	if d <= 0 {
		return
	}
	series := make([][]soakSample, len(nodes))
	began := time.Now()
	for round := 0; time.Since(began) < d; round++ {
		for i, n := range nodes {
			series[i] = append(series[i], soakSample{
				at:         time.Since(began).Hours(),
				rss:        float64(n.RSS()),
				goroutines: n.Metric("go_goroutines", ""),
				files:      float64(openFiles(t, n.PID())),
			})
			if round%6 == 0 { // what the RSS holds, for the log: each minute of a soak of 100 s or more
				t.Logf("soak %v %s: RSS %s, Go heap in use %s of %s taken from the system, the collector's goal %s",
					time.Since(began).Round(time.Second), n.Name, mib(n.RSS()),
					mib(int64(n.Metric("go_memstats_heap_inuse_bytes", ""))), mib(int64(n.Metric("go_memstats_heap_sys_bytes", ""))),
					mib(int64(n.Metric("go_memstats_next_gc_bytes", ""))))
			}
		}
		time.Sleep(min(10*time.Second, d/10))
	}
	for i, all := range series {
		s := all[len(all)/2:] // the first half warms up: caches fill, pools grow
		rss, rssFlat := soakSlope(s, func(p soakSample) float64 { return p.rss })
		gor, gorFlat := soakSlope(s, func(p soakSample) float64 { return p.goroutines })
		files, filesFlat := soakSlope(s, func(p soakSample) float64 { return p.files })
		flat := rssFlat && gorFlat && filesFlat
		tbl.add(fmt.Sprintf("soak %v, %s: slope of RSS / goroutines / open files per hour (second half)", d, nodes[i].Name),
			fmt.Sprintf("flat (≤ %.0f %% an hour, or within its noise)", 100*maxSoakGrowth),
			fmt.Sprintf("%s / %.1f / %.1f", mib(int64(rss)), gor, files), flat)
	}
}

// soakSample is one reading of a node during the soak, at hours since its
// start.
type soakSample struct{ at, rss, goroutines, files float64 }

// soakSlope is the least-squares slope of v over s per hour, and whether it
// is flat: it would move v's mean by at most maxSoakGrowth in an hour, or
// it cannot be told from the samples' noise (within two standard errors of
// zero: goroutines and open files come and go with requests, a few dozen
// of them).
func soakSlope(s []soakSample, v func(soakSample) float64) (perHour float64, flat bool) {
	var n, sx, sy, sxx, sxy float64
	for _, p := range s {
		n++
		sx, sy, sxx, sxy = sx+p.at, sy+v(p), sxx+p.at*p.at, sxy+p.at*v(p)
	}
	d := n*sxx - sx*sx
	if d == 0 || sy == 0 || n < 3 {
		return 0, true
	}
	perHour = (n*sxy - sx*sy) / d
	intercept := (sy - perHour*sx) / n
	var residuals float64
	for _, p := range s {
		r := v(p) - intercept - perHour*p.at
		residuals += r * r
	}
	stdErr := math.Sqrt(residuals / (n - 2) / (d / n))
	return perHour, perHour/(sy/n) <= maxSoakGrowth || perHour <= 2*stdErr
}

// maxSoakGrowth is the growth per hour, as a share of the mean, that the
// soak still calls flat.
const maxSoakGrowth = 0.10

func openFiles(t *testing.T, pid int) int {
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatalf("open files need Linux's /proc: %v", err)
	}
	return len(entries)
}
