package scale

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/accessauth/caddy-access-auth/internal/gatewaytest"
)

// memoryRows adds RSS per node, per cached key and the cache hit ratio.
// The cached keys of a node are the credentials it loaded (cache misses),
// an upper bound of what its cache holds.
func memoryRows(t *testing.T, tbl *table, nodes []*gatewaytest.Node, baseRSS []int64) {
	var hits, lookups float64
	var rss []string
	worst := 0.0
	for i, n := range nodes {
		h, m := n.CacheLookups("hit"), n.CacheLookups("miss")
		hits += h
		lookups += h + m + n.CacheLookups("negative_hit")
		now := n.RSS()
		rss = append(rss, mib(now))
		if m > 0 {
			worst = max(worst, float64(now-baseRSS[i])/m)
		}
	}
	tbl.add("RSS per node", "—", strings.Join(rss, ", "), true)
	// Meaningful at size only: with few keys the heap's growth under load
	// (buffers, GC headroom) dwarfs what the cached keys take.
	tbl.add("RSS added under load ÷ credentials loaded (worst node)", "≤ 1 KiB", fmt.Sprintf("%.0f B", worst), worst <= targetPerCachedKey)
	tbl.add("cache hit ratio", "—", fmt.Sprintf("%.1f %%", 100*hits/max(lookups, 1)), true)
}

// soak holds the load for d (when set) and adds the slopes of RSS,
// goroutines and open files of each node, per hour: flat is the target.
func soak(t *testing.T, tbl *table, ld *load, nodes []*gatewaytest.Node, d time.Duration) {
	if d <= 0 {
		return
	}
	type sample struct{ at, rss, goroutines, files float64 }
	series := make([][]sample, len(nodes))
	began := time.Now()
	for time.Since(began) < d {
		for i, n := range nodes {
			series[i] = append(series[i], sample{
				at:         time.Since(began).Hours(),
				rss:        float64(n.RSS()),
				goroutines: n.Metric("go_goroutines", ""),
				files:      float64(openFiles(t, n.PID())),
			})
		}
		time.Sleep(min(10*time.Second, d/10))
	}
	for i, all := range series {
		s := all[len(all)/2:] // the first half warms up: caches fill, pools grow
		// slope is the least-squares slope of v per hour, and how far it
		// would move v's mean in an hour.
		slope := func(v func(sample) float64) (perHour, share float64) {
			var n, sx, sy, sxx, sxy float64
			for _, p := range s {
				n++
				sx, sy, sxx, sxy = sx+p.at, sy+v(p), sxx+p.at*p.at, sxy+p.at*v(p)
			}
			if d := n*sxx - sx*sx; d != 0 && sy != 0 {
				perHour = (n*sxy - sx*sy) / d
				share = perHour / (sy / n)
			}
			return perHour, share
		}
		rss, rssShare := slope(func(p sample) float64 { return p.rss })
		gor, gorShare := slope(func(p sample) float64 { return p.goroutines })
		files, filesShare := slope(func(p sample) float64 { return p.files })
		flat := max(rssShare, gorShare, filesShare) <= maxSoakGrowth
		tbl.add(fmt.Sprintf("soak %v, %s: slope of RSS / goroutines / open files per hour (second half)", d, nodes[i].Name),
			fmt.Sprintf("flat (≤ %.0f %% an hour)", 100*maxSoakGrowth),
			fmt.Sprintf("%s / %.1f / %.1f", mib(int64(rss)), gor, files), flat)
	}
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
