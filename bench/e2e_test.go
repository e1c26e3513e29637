//go:build linux

package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/accessauth/caddy-access-auth/bench/loadgen"
	"github.com/accessauth/caddy-access-auth/cache"
	"github.com/accessauth/caddy-access-auth/internal/gatewaytest"
	"github.com/accessauth/caddy-access-auth/internal/redistest"
	"github.com/accessauth/caddy-access-auth/signature"
	"github.com/accessauth/caddy-access-auth/store"
	redisstore "github.com/accessauth/caddy-access-auth/store/redis"
)

func TestMain(m *testing.M) { gatewaytest.Main(m) }

// Parameters of the throughput benchmarks: rounds of saturating load from
// loadWorkers concurrent clients (a gateway serves many at once; Redis
// checks of concurrent requests share round trips) alternate between the
// open and the checked route (open first in even pairs, checked first in
// odd ones, so drift of the machine cancels out; many short pairs, since
// the ratios reported are medians of pairs), then rounds of one request at
// a time measure the added latency without queueing. 64 clients keep both
// cores nearly busy (32 left ~10 % idle, whose wake-ups add CPU time per
// request). With -short (the table's harness test) the rounds are few and
// short: the figures are then only as good as the harness check needs.
const (
	loadWorkers  = 64
	warmUp       = 500 * time.Millisecond
	roundLength  = 500 * time.Millisecond
	roundPairs   = 30
	latencyRound = time.Second
	latencyPairs = 3
	// A CPU profile of Caddy under the checked route's load splits the
	// added CPU (profiled for a second less than the round, within it).
	// 30 s gives ~1,500 samples on this VM (it drops about half of them).
	profileRound = 30 * time.Second
)

// rounds returns the number of round pairs and each round's length.
func rounds() (pairs int, length, latency, profile time.Duration) {
	if testing.Short() {
		return 3, 200 * time.Millisecond, 200 * time.Millisecond, 2 * time.Second
	}
	return roundPairs, roundLength, latencyRound, profileRound
}

// throughputSite answers "ok" on /open/ and, behind access_auth, on
// /checked/ (with the replay protection given): itself, or, with upstream
// set, through reverse_proxy from the upstream at that address.
func throughputSite(replay, upstream string) string {
	answer := `respond "ok"`
	if upstream != "" {
		// An idle connection kept for every client: none is closed and
		// dialled again between requests.
		answer = `reverse_proxy ` + upstream + ` {
			transport http {
				keepalive_idle_conns_per_host ` + strconv.Itoa(2*loadWorkers) + `
			}
		}`
	}
	return `	handle /open/* {
		` + answer + `
	}
	handle /checked/* {
		access_auth bench {
			replay_protection ` + replay + `
		}
		` + answer + `
	}`
}

// startUpstream starts the API behind the proxied routes, in this process
// (its CPU time counts as the load generator's), and returns its address.
// It answers "ok".
func startUpstream(b *testing.B) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ok")
	}))
	b.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// BenchmarkThroughputLocalReplay is the ≥ 0.95 target's companion for a
// route that answers itself, the hardest case: the embedded store, replay
// protection in the node's memory.
func BenchmarkThroughputLocalReplay(b *testing.B) { throughputLocal(b, "") }

// BenchmarkThroughputLocalReplayProxied is the ≥ 0.95 target: an API
// gateway's route, reverse_proxy to an upstream.
func BenchmarkThroughputLocalReplayProxied(b *testing.B) { throughputLocal(b, startUpstream(b)) }

func throughputLocal(b *testing.B, upstream string) {
	c := gatewaytest.Start(b, "local", "", throughputSite("local", upstream))
	key := c.AuthorizedKey("bench", "bench")
	measureOverhead(b, c, key, nil, true)
}

// BenchmarkThroughputRedisReplay is the ≥ 0.85 target's companion for a
// route that answers itself: the store and replay protection in a real
// redis-server on this machine.
func BenchmarkThroughputRedisReplay(b *testing.B) { throughputRedis(b, "") }

// BenchmarkThroughputRedisReplayProxied is the ≥ 0.85 target, and the
// Redis commands per request: reverse_proxy to an upstream.
func BenchmarkThroughputRedisReplayProxied(b *testing.B) { throughputRedis(b, startUpstream(b)) }

func throughputRedis(b *testing.B, upstream string) {
	srv := redistest.Start(b, redistest.Options{})
	c := gatewaytest.Start(b, "redis", redisStore(b, srv.Addr), throughputSite("store", upstream))
	key := c.AuthorizedKey("bench", "bench")
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	b.Cleanup(func() { rdb.Close() })
	measureOverhead(b, c, key, rdb, false)
}

// measureOverhead compares /checked/ with /open/ under the same signed load
// and reports the throughput ratio and the latency the check adds. The
// wall-clock ratio is disturbed by whatever else runs on a shared machine,
// so the CPU time per request of every process of the run is measured too:
// Caddy's (the gateway's own capacity; the difference is the check's cost
// in situ, "added-cpu-µs/req"), and Caddy's plus the load generator's (this
// process) plus redis-server's (rdb: its client, nil without Redis) — what
// a dedicated, saturated machine's wall-clock ratio would be; the latter as
// the median of round pairs ("machine-cpu-ratio") and over all rounds
// ("machine-cpu-ratio-all"). With Redis, the commands it ran per checked
// request are counted too ("redis-cmds/req"). Last, with split, a CPU
// profile of Caddy under the checked route's load splits its CPU per
// request: the check's own ("check-in-situ-µs/req"; of it, replay
// protection's, "replay-in-situ-µs/req") and the rest of the handler around it
// ("handler-in-situ-µs/req"); what the added CPU holds besides is spent
// outside the handler (the handlers after it passing on the identity
// headers, the collector). With BENCH_PPROF=<dir>, that profile and one of
// the open route are kept there (compare them with go tool pprof
// -diff_base).
func measureOverhead(b *testing.B, c *gatewaytest.Node, key gatewaytest.Credentials, rdb *redis.Client, split bool) {
	openURL, checkedURL := c.Site+"/open/x", c.Site+"/checked/x"
	client := loadgen.NewClient(loadWorkers)
	redisProcess := 0
	if rdb != nil {
		redisProcess = redisPID(b, rdb)
	}
	cpu := func() (caddy, generator, server time.Duration) {
		caddy, generator = c.CPUTime(), gatewaytest.ProcessCPUTime(b, os.Getpid())
		if redisProcess != 0 {
			server = gatewaytest.ProcessCPUTime(b, redisProcess)
		}
		return caddy, generator, server
	}
	// The commands clients sent: Redis counts the commands the nonce
	// script runs as commands of their own besides its EVALSHA, and on
	// these routes only that script runs them.
	commands := func() int64 {
		if rdb == nil {
			return 0
		}
		return redisCalls(b, rdb, redisstore.NonceScriptCommands...)
	}
	run := func(url string, workers int, d time.Duration, t *totals) loadgen.Result {
		caddy, generator, server := cpu()
		calls := commands()
		res, err := loadgen.Run(context.Background(), loadgen.Options{
			URL: url, Scheme: signature.JDCloud2, APIKey: key.APIKey, APISecret: key.APISecret,
			Workers: workers, Duration: d, Client: client,
		})
		if err != nil {
			b.Fatal(err)
		}
		caddy2, generator2, server2 := cpu()
		t.add(totals{res.Requests, res.Elapsed, caddy2 - caddy, generator2 - generator, server2 - server, commands() - calls})
		return res
	}
	for _, url := range []string{openURL, checkedURL} {
		run(url, loadWorkers, warmUp, new(totals))
	}
	rate := func(t totals) float64 { return float64(t.requests) / t.elapsed.Seconds() }
	perRequest := func(d time.Duration, t totals) float64 { return float64(d.Nanoseconds()) / 1e3 / float64(t.requests) }
	machine := func(t totals) float64 { return perRequest(t.caddy+t.generator+t.redis, t) }

	// Each pair of adjacent rounds gives its own ratios: drift of the
	// machine between pairs cancels out, and the median drops a pair that
	// another process on the box disturbed.
	pairs, length, latencyLength, profileLength := rounds()
	var open, checked totals
	var pairRatios, pairMachineRatios, pairAdded []float64
	for pair := range pairs {
		urls := []string{openURL, checkedURL}
		if pair%2 == 1 {
			slices.Reverse(urls)
		}
		var pairOpen, pairChecked totals
		for _, url := range urls {
			t := &pairOpen
			if url == checkedURL {
				t = &pairChecked
			}
			run(url, loadWorkers, length, t)
		}
		pairRatios = append(pairRatios, rate(pairChecked)/rate(pairOpen))
		pairMachineRatios = append(pairMachineRatios, machine(pairOpen)/machine(pairChecked))
		pairAdded = append(pairAdded, perRequest(pairChecked.caddy, pairChecked)-perRequest(pairOpen.caddy, pairOpen))
		open.add(pairOpen)
		checked.add(pairChecked)
	}

	var openLatency, checkedLatency []time.Duration
	for pair := range latencyPairs {
		urls := []string{openURL, checkedURL}
		if pair%2 == 1 {
			slices.Reverse(urls)
		}
		for _, url := range urls {
			res := run(url, 1, latencyLength, new(totals))
			if url == checkedURL {
				checkedLatency = append(checkedLatency, res.Latencies...)
			} else {
				openLatency = append(openLatency, res.Latencies...)
			}
		}
	}
	slices.Sort(openLatency)
	slices.Sort(checkedLatency)
	// Where the added CPU goes (split): a CPU profile of Caddy under the
	// checked route's load tells the check's share from the handler's
	// around it.
	dir := os.Getenv("BENCH_PPROF")
	keep := dir != ""
	if !keep && split {
		dir = b.TempDir()
	}
	profile := func(route, url string, t *totals) string {
		path := filepath.Join(dir, strings.TrimPrefix(b.Name(), "Benchmark")+"-"+route+".pprof")
		profileUnderLoad(b, c, path, profileLength, func() int64 { return run(url, loadWorkers, profileLength, t).Requests })
		return path
	}
	var shares handlerShares
	var profiled totals
	if split || keep {
		path := profile("checked", checkedURL, &profiled)
		if keep {
			profile("open", openURL, new(totals))
		}
		var err error
		if shares, err = profileShares(path); err != nil {
			b.Fatal(err)
		}
	}

	µs := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
	added := func(p float64) float64 {
		return µs(loadgen.Percentile(checkedLatency, p)) - µs(loadgen.Percentile(openLatency, p))
	}
	b.ReportMetric(loadWorkers, "clients")
	b.ReportMetric(float64(pairs), "pairs")
	b.ReportMetric(rate(checked)/rate(open), "ratio")
	b.ReportMetric(median(pairRatios), "ratio-median-pair")
	b.ReportMetric(perRequest(open.caddy, open)/perRequest(checked.caddy, checked), "cpu-ratio")
	b.ReportMetric(machine(open)/machine(checked), "machine-cpu-ratio-all")
	b.ReportMetric(median(pairMachineRatios), "machine-cpu-ratio")
	b.ReportMetric(median(pairAdded), "added-cpu-µs/req")
	if split {
		profiledCPU := perRequest(profiled.caddy, profiled)
		b.ReportMetric(shares.check*profiledCPU, "check-in-situ-µs/req")
		b.ReportMetric(shares.replay*profiledCPU, "replay-in-situ-µs/req")
		b.ReportMetric(shares.handler*profiledCPU, "handler-in-situ-µs/req")
		b.ReportMetric(float64(shares.samples), "profile-samples")
	}
	b.ReportMetric(rate(open), "open-req/s")
	b.ReportMetric(rate(checked), "checked-req/s")
	b.ReportMetric(perRequest(open.caddy, open), "open-cpu-µs/req")
	b.ReportMetric(perRequest(checked.caddy, checked), "checked-cpu-µs/req")
	b.ReportMetric(perRequest(open.generator, open), "open-client-cpu-µs/req")
	b.ReportMetric(perRequest(checked.generator, checked), "checked-client-cpu-µs/req")
	if rdb != nil {
		b.ReportMetric(perRequest(checked.redis, checked), "redis-cpu-µs/req")
		// The open rounds' commands (the change feed's reads, the
		// metrics' pings) count against the checked requests: an upper
		// bound.
		b.ReportMetric(float64(open.commands+checked.commands)/float64(checked.requests), "redis-cmds/req")
	}
	b.ReportMetric(µs(loadgen.Percentile(openLatency, 0.5)), "open-p50-µs")
	b.ReportMetric(µs(loadgen.Percentile(openLatency, 0.99)), "open-p99-µs")
	b.ReportMetric(added(0.5), "added-p50-µs")
	b.ReportMetric(added(0.99), "added-p99-µs")
}

// profileUnderLoad saves a CPU profile of Caddy, taken from its admin
// endpoint while load runs, at path, and logs how many requests the load
// sent (to read the profile per request).
func profileUnderLoad(b *testing.B, c *gatewaytest.Node, path string, length time.Duration, load func() (requests int64)) {
	got := make(chan error, 1)
	go func() {
		resp, err := http.Get(c.Admin + "/debug/pprof/profile?seconds=" + strconv.Itoa(int(length/time.Second)-1))
		if err != nil {
			got <- err
			return
		}
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		if err == nil {
			err = os.MkdirAll(filepath.Dir(path), 0o755)
		}
		if err == nil {
			err = os.WriteFile(path, raw, 0o644)
		}
		got <- err
	}()
	requests := load()
	if err := <-got; err != nil {
		b.Fatalf("profiling caddy: %v", err)
	}
	b.Logf("caddy's CPU profile under load: %s (%d requests in %v)", path, requests, length)
}

// totals sums rounds of load: requests, wall-clock time, the CPU time of
// each process, and the commands Redis ran.
type totals struct {
	requests                int64
	elapsed                 time.Duration
	caddy, generator, redis time.Duration
	commands                int64
}

func (t *totals) add(o totals) {
	t.requests += o.requests
	t.elapsed += o.elapsed
	t.caddy += o.caddy
	t.generator += o.generator
	t.redis += o.redis
	t.commands += o.commands
}

// median returns the middle of values (sorting them).
func median(values []float64) float64 {
	slices.Sort(values)
	return values[len(values)/2]
}

// redisPID is the process ID of rdb's redis-server.
func redisPID(b *testing.B, rdb *redis.Client) int {
	info, err := rdb.Info(context.Background(), "server").Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
			if pid, err := strconv.Atoi(v); err == nil {
				return pid
			}
		}
	}
	b.Fatalf("no process_id in INFO server:\n%s", info)
	return 0
}

// BenchmarkCacheMiss is what a miss costs against a real Redis on
// loopback: Redis commands per miss (one round trip, docs/operations.md), commands
// for 64 concurrent misses of one key (they share the load), and the time
// of a miss through the cache.
func BenchmarkCacheMiss(b *testing.B) {
	srv := redistest.Start(b, redistest.Options{})
	ctx := context.Background()
	backend, err := redisstore.Open(ctx, redisstore.Options{Addrs: []string{srv.Addr}})
	if err != nil {
		b.Fatal(err)
	}
	masterKey, err := store.GenerateMasterKey()
	if err != nil {
		b.Fatal(err)
	}
	st, err := store.Open(backend, store.Options{MasterKeys: [][]byte{masterKey}})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	actor := store.Actor{Name: "bench"}
	if _, err := st.CreateGroup(ctx, store.Group{Name: "bench"}, actor); err != nil {
		b.Fatal(err)
	}
	key, err := st.CreateKey(ctx, store.NewKey{Name: "bench"}, actor)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := st.CreateAuthorization(ctx, store.NewAuthorization{
		AccessKeyID: key.ID, Bindings: []store.Binding{{Group: "bench", Environment: "*"}},
	}, actor); err != nil {
		b.Fatal(err)
	}
	c, err := cache.New(cache.Config{MaxEntries: 1000}, st)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()

	const misses = 2000
	calls := redisCalls(b, rdb)
	took := make([]time.Duration, 0, misses)
	for range misses {
		c.Invalidate(key.APIKey)
		start := time.Now()
		if _, err := c.Get(ctx, key.APIKey); err != nil {
			b.Fatal(err)
		}
		took = append(took, time.Since(start))
	}
	perMiss := float64(redisCalls(b, rdb)-calls) / misses
	slices.Sort(took)

	const trials, concurrent = 50, 64
	calls = redisCalls(b, rdb)
	for range trials {
		c.Invalidate(key.APIKey)
		var ready, wg sync.WaitGroup
		var failed atomic.Bool
		release := make(chan struct{})
		ready.Add(concurrent)
		for range concurrent {
			wg.Go(func() {
				ready.Done()
				<-release
				if _, err := c.Get(ctx, key.APIKey); err != nil {
					failed.Store(true)
				}
			})
		}
		ready.Wait()
		close(release)
		wg.Wait()
		if failed.Load() {
			b.Fatal("a concurrent miss failed")
		}
	}
	perConcurrent := float64(redisCalls(b, rdb)-calls) / trials

	b.ReportMetric(perMiss, "redis-cmds/miss")
	b.ReportMetric(perConcurrent, "redis-cmds/64-concurrent-misses")
	b.ReportMetric(float64(loadgen.Percentile(took, 0.5).Nanoseconds())/1e3, "miss-p50-µs")
	b.ReportMetric(float64(loadgen.Percentile(took, 0.99).Nanoseconds())/1e3, "miss-p99-µs")
}

// redisCalls is the number of commands the server has run, INFO and the
// commands named in inner excluded.
func redisCalls(b *testing.B, rdb *redis.Client, inner ...string) int64 {
	info, err := rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	var total int64
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		name, stats, ok := strings.Cut(sc.Text(), ":calls=")
		if !ok || name == "cmdstat_info" || slices.Contains(inner, strings.TrimPrefix(name, "cmdstat_")) {
			continue
		}
		n, _, _ := strings.Cut(stats, ",")
		v, err := strconv.ParseInt(n, 10, 64)
		if err != nil {
			b.Fatalf("commandstats line %q", sc.Text())
		}
		total += v
	}
	return total
}

// BenchmarkPropagation measures an admin write on one node until another
// node, sharing its Redis, acts on it: a key disabled through node A's
// admin API, then node B polled with signed requests until it refuses the
// key; enabled again, until it accepts it.
func BenchmarkPropagation(b *testing.B) {
	srv := redistest.Start(b, redistest.Options{})
	opts := redisStore(b, srv.Addr)
	site := throughputSite("store", "")
	nodeA := gatewaytest.Start(b, "A", opts, site)
	nodeB := gatewaytest.Start(b, "B", opts, site)
	key := nodeA.AuthorizedKey("bench", "bench")
	client := loadgen.NewClient(1)
	status := func() int {
		req, err := http.NewRequest(http.MethodGet, nodeB.Site+"/checked/x", nil)
		if err == nil {
			err = signature.Sign(req, signature.JDCloud2, key.APIKey, key.APISecret)
		}
		if err != nil {
			b.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	until := func(want int) {
		for deadline := time.Now().Add(5 * time.Second); status() != want; {
			if time.Now().After(deadline) {
				b.Fatalf("node B did not answer %d within 5s", want)
			}
		}
	}
	until(http.StatusOK) // node B caches the key

	writes := 100
	if testing.Short() {
		writes = 10
	}
	lags := make([]time.Duration, 0, writes)
	for i := range writes {
		enabled, want := i%2 == 1, http.StatusUnauthorized
		if enabled {
			want = http.StatusOK
		}
		start := time.Now()
		nodeA.AdminJSON(http.MethodPatch, "/access-auth/keys/"+key.ID, map[string]bool{"enabled": enabled}, http.StatusOK, nil)
		until(want)
		lags = append(lags, time.Since(start))
	}
	slices.Sort(lags)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1e3 }
	b.ReportMetric(ms(loadgen.Percentile(lags, 0.5)), "p50-ms")
	b.ReportMetric(ms(loadgen.Percentile(lags, 0.99)), "p99-ms")
	b.ReportMetric(ms(lags[len(lags)-1]), "max-ms")
}

// BenchmarkUploadRSS sends 100 MiB signed uploads through access_auth to a
// reverse-proxied upstream and reports how much Caddy's resident memory
// grew: with a signed content hash the body streams, without one it is
// hashed and spooled to a file before it goes on.
func BenchmarkUploadRSS(b *testing.B) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprint(w, n)
	}))
	defer upstream.Close()
	c := gatewaytest.Start(b, "upload", "", "\taccess_auth bench\n\treverse_proxy "+strings.TrimPrefix(upstream.URL, "http://"))
	key := c.AuthorizedKey("bench", "bench")
	body := bytes.Repeat([]byte("0123456789abcdef"), (100<<20)/16)
	upload := func(opts ...signature.Option) float64 {
		req, err := http.NewRequest(http.MethodPut, c.Site+"/upload", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		if err := signature.Sign(req, signature.JDCloud2, key.APIKey, key.APISecret, opts...); err != nil {
			b.Fatal(err)
		}
		base := c.RSS()
		peak := base
		done := make(chan struct{})
		sampled := make(chan struct{})
		go func() {
			defer close(sampled)
			for {
				peak = max(peak, c.RSS())
				select {
				case <-done:
					return
				case <-time.After(2 * time.Millisecond):
				}
			}
		}()
		resp, err := http.DefaultClient.Do(req)
		close(done)
		<-sampled
		if err != nil {
			b.Fatal(err)
		}
		answer, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(answer) != strconv.Itoa(len(body)) {
			b.Fatalf("upload: status %d: %s", resp.StatusCode, answer)
		}
		return float64(peak-base) / (1 << 20)
	}
	upload() // first use: buffers, the temp directory
	b.ReportMetric(upload(signature.WithContentSHA256()), "streamed-MiB")
	b.ReportMetric(upload(), "spooled-MiB")
}

// redisStore is the access_auth option block of a Redis store at addr.
func redisStore(b *testing.B, addr string) string {
	return gatewaytest.RedisOptions(gatewaytest.NewMasterKey(b), "redis://"+addr)
}
