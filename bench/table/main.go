// Command table runs the benchmarks behind the performance targets
// (docs/operations.md) and prints their table, each target judged as a
// ratio measured in this one run, with its parts beside it (`make bench`).
// It runs, from the module root: the micro-benchmarks of the check and of
// its crypto floor, the signature schemes and the cache (-count rounds,
// each a fresh go test, so the check and its floor alternate and one
// round's ratio is taken within one process; the median round decides),
// the cache's size test, and the end-to-end benchmarks of ./bench (real
// Caddy and redis-server processes, once). Progress goes to stderr, the
// table to stdout and to bench/results/<date and time>.md.
//
// With -short every step is brief (the micro-benchmarks a few hundred
// iterations, the end-to-end rounds few and short): the figures then only
// show that the harness works, as its test in `make test` checks.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

func main() {
	count := flag.Int("count", 8, "rounds of the micro-benchmarks (the median round decides)")
	short := flag.Bool("short", false, "brief runs that check the harness, not the code's speed")
	resultsDir := flag.String("results", "bench/results", "directory for the result file (empty: none)")
	flag.Parse()
	if err := run(os.Stdout, *count, *short, *resultsDir); err != nil {
		fmt.Fprintln(os.Stderr, "table:", err)
		os.Exit(1)
	}
}

// run measures, prints the table to w and saves it in resultsDir. It
// fails when a step failed, after printing what was measured.
func run(w io.Writer, count int, short bool, resultsDir string) error {
	start := time.Now()
	r := results{}
	microTime := []string{}
	e2e := []string{"-bench", ".", "-benchtime", "1x", "-timeout", "20m", "./bench/"}
	if short {
		microTime = []string{"-benchtime", "200x"}
		e2e = append([]string{"-short"}, e2e...)
	}
	micro := func(pattern, pkg string) []string {
		return append(append([]string{"-bench", pattern, "-benchmem"}, microTime...), pkg)
	}
	type step struct {
		what string
		args []string
	}
	var steps []step
	for range count {
		steps = append(steps,
			step{"the request check on a cached key and its crypto floor", micro("^(BenchmarkCheckCachedJDCloud2|BenchmarkCryptoFloorJDCloud2|BenchmarkCheckWithPlan)$", "./enforcement/")},
			step{"signature verification per scheme", micro("^(BenchmarkVerify(JDCloud2|SigV4|Aliyun)|BenchmarkParseJDCloud2)$", "./signature/")},
			step{"cache hits", micro("^(BenchmarkGetHit|BenchmarkGetAtHit)$", "./cache/")})
	}
	steps = append(steps,
		step{"memory per cached key", []string{"-run", "^TestEntrySize$", "-v", "./cache/"}},
		step{"end to end: real Caddy, redis-server and signed load", e2e})
	var failed []string
	for i, s := range steps {
		fmt.Fprintf(os.Stderr, "== %d/%d %s (%s)\n", i+1, len(steps), s.what, time.Since(start).Round(time.Second))
		if err := r.run(s.args); err != nil {
			// The table still shows what was measured; its rows say the rest.
			fmt.Fprintf(os.Stderr, "table: %s: %v\n", s.what, err)
			failed = append(failed, s.what)
		}
	}
	var table strings.Builder
	r.print(&table, count, short, time.Since(start))
	io.WriteString(w, table.String())
	if resultsDir != "" {
		path := filepath.Join(resultsDir, start.UTC().Format("2006-01-02T1504Z")+".md")
		if err := os.MkdirAll(resultsDir, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, []byte(table.String()), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "table: saved as %s\n", path)
	}
	if len(failed) > 0 {
		return fmt.Errorf("steps failed: %s", strings.Join(failed, "; "))
	}
	return nil
}

// moduleRoot is where go test runs: the working directory, the module's
// root under `make bench`.
var moduleRoot = ""

// results holds every metric reported, by benchmark name (without the
// GOMAXPROCS suffix) and unit, one value per run.
type results map[string]map[string][]float64

var (
	benchLine = regexp.MustCompile(`^(Benchmark\S+?)(-\d+)?\s+\d+\s+(.*)$`)
	entrySize = regexp.MustCompile(`about (\d+) bytes per cached key, (\d+) once its secret derived a signing key`)
)

// run runs go test with args (no tests unless -run says so), echoing its
// output to stderr and collecting the metrics.
func (r results) run(args []string) error {
	if !slices.Contains(args, "-run") {
		args = append([]string{"-run", "^$"}, args...)
	}
	cmd := exec.Command("go", append([]string{"test", "-count=1"}, args...)...)
	cmd.Dir = moduleRoot
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintln(os.Stderr, line)
		r.parse(line)
	}
	return cmd.Wait()
}

func (r results) parse(line string) {
	if m := entrySize.FindStringSubmatch(line); m != nil {
		r.add("TestEntrySize", "B/key", m[1])
		r.add("TestEntrySize", "B/key-with-signing-key", m[2])
		return
	}
	m := benchLine.FindStringSubmatch(strings.TrimSpace(line))
	if m == nil {
		return
	}
	fields := strings.Fields(m[3])
	for i := 0; i+1 < len(fields); i += 2 {
		r.add(m[1], fields[i+1], fields[i])
	}
}

func (r results) add(name, unit, value string) {
	v, err := strconv.ParseFloat(value, 64)
	if err != nil {
		return
	}
	if r[name] == nil {
		r[name] = map[string][]float64{}
	}
	r[name][unit] = append(r[name][unit], v)
}

// get returns the median of a metric and whether it was measured.
func (r results) get(name, unit string) (float64, bool) {
	return median(r[name][unit])
}

// ratios returns, round by round, a metric of one benchmark divided by
// that of another measured in the same round (process).
func (r results) ratios(name, over, unit string) []float64 {
	a, b := r[name][unit], r[over][unit]
	out := make([]float64, 0, min(len(a), len(b)))
	for i := range min(len(a), len(b)) {
		if b[i] > 0 {
			out = append(out, a[i]/b[i])
		}
	}
	return out
}

func median(values []float64) (float64, bool) {
	if len(values) == 0 {
		return 0, false
	}
	values = slices.Clone(values)
	slices.Sort(values)
	return values[len(values)/2], true
}

// row is one line of the table.
type row struct{ what, target, measured, verdict string }

// The end-to-end benchmarks of each route, by replay protection.
const (
	localRespond = "BenchmarkThroughputLocalReplay"
	localProxied = "BenchmarkThroughputLocalReplayProxied"
	redisRespond = "BenchmarkThroughputRedisReplay"
	redisProxied = "BenchmarkThroughputRedisReplayProxied"
	planRespond  = "BenchmarkThroughputLocalReplayPlan"
)

func (r results) print(w io.Writer, count int, short bool, took time.Duration) {
	var rows []row
	add := func(what, target, measured string, pass, known bool) {
		verdict := "not measured"
		switch {
		case known && pass:
			verdict = "PASS"
		case known:
			verdict = "FAIL"
		}
		rows = append(rows, row{what, target, measured, verdict})
	}
	info := func(what, measured string) { rows = append(rows, row{what, "", measured, ""}) }
	v := func(name, unit string) float64 { x, _ := r.get(name, unit); return x }
	has := func(name, unit string) bool { _, ok := r.get(name, unit); return ok }
	µs := func(name string) float64 { return v(name, "ns/op") / 1e3 }

	// 1. The cached check against its crypto floor, round by round.
	const check, floor = "BenchmarkCheckCachedJDCloud2", "BenchmarkCryptoFloorJDCloud2"
	checkRatio, known := median(r.ratios(check, floor, "ns/op"))
	add("cached check, jdcloud2, no body ÷ its crypto floor (SHA-256 of the canonical request + HMAC-SHA256 of the string to sign, same sizes)",
		"≤ 2.0, ≤ 2 allocs/op",
		fmt.Sprintf("%.2f (median of %d rounds' ratios): check %.2f µs/op, floor %.2f µs/op (medians), %.0f allocs/op",
			checkRatio, len(r.ratios(check, floor, "ns/op")), µs(check), µs(floor), v(check, "allocs/op")),
		checkRatio <= 2.0 && v(check, "allocs/op") <= 2, known)
	for _, s := range []struct{ scheme, bench string }{{"jdcloud2", "BenchmarkVerifyJDCloud2"}, {"sigv4", "BenchmarkVerifySigV4"}, {"aliyun", "BenchmarkVerifyAliyun"}} {
		if has(s.bench, "ns/op") {
			info("  signature Parse+Verify, "+s.scheme, fmt.Sprintf("%.2f µs/op, %.0f allocs/op", µs(s.bench), v(s.bench, "allocs/op")))
		}
	}
	if has("BenchmarkCheckWithPlan", "ns/op") {
		info("  the same with a usage plan (rate and quota) on the key", fmt.Sprintf("%.2f µs/op, %.0f allocs/op", µs("BenchmarkCheckWithPlan"), v("BenchmarkCheckWithPlan", "allocs/op")))
	}
	if has("BenchmarkGetAtHit", "ns/op") {
		info("  cache hit (GetAt)", fmt.Sprintf("%.0f ns/op, %.0f allocs/op", v("BenchmarkGetAtHit", "ns/op"), v("BenchmarkGetAtHit", "allocs/op")))
	}

	// 2. The check in situ: what Caddy's CPU per request grows by with
	// the check, against the check's micro-benchmark of this run.
	// Its parts come from a CPU profile of Caddy under the checked load:
	// the check's own code in situ (against its micro-benchmark: what the
	// machine's caches and the server around it make of the same code),
	// the handler around the check, and what is left outside the handler.
	inSitu := func(bench string) (ratio float64, parts string) {
		added := v(bench, "added-cpu-µs/req")
		ratio = added / µs(check)
		parts = fmt.Sprintf("%.2f: %+.1f µs of Caddy CPU per request (%.1f → %.1f µs/req; median of %.0f pairs' differences) ÷ check %.2f µs/op",
			ratio, added, v(bench, "open-cpu-µs/req"), v(bench, "checked-cpu-µs/req"), v(bench, "pairs"), µs(check))
		if has(bench, "check-in-situ-µs/req") {
			checkInSitu, replay, handler := v(bench, "check-in-situ-µs/req"), v(bench, "replay-in-situ-µs/req"), v(bench, "handler-in-situ-µs/req")
			parts += fmt.Sprintf(" — by a CPU profile under load (%.0f samples): the check's own code %.1f µs (%.1f× its micro-benchmark; %.1f µs of it replay protection, which the micro-benchmark leaves out: %.1f× without it), the handler around it %.1f µs, the rest %+.1f µs outside the handler",
				v(bench, "profile-samples"), checkInSitu, checkInSitu/µs(check), replay, (checkInSitu-replay)/µs(check), handler, added-checkInSitu-handler)
		}
		return ratio, parts
	}
	ratio, parts := inSitu(localRespond)
	_, proxiedParts := inSitu(localProxied)
	add("the check in situ (local replay protection): Caddy's added CPU per request under load ÷ the cached check's micro-benchmark",
		"≤ 2.0", "respond route "+parts+"; proxied route "+proxiedParts,
		ratio <= 2.0, has(localRespond, "added-cpu-µs/req") && has(check, "ns/op"))

	// 3. Throughput ratios, judged on the proxied route.
	throughput := func(bench string) string {
		return fmt.Sprintf("%.3f (Caddy %.1f → %.1f µs/req, load generator and upstream %.1f → %.1f µs/req%s; wall clock %.3f, %.0f vs %.0f req/s; added latency p50 %+.0f µs, p99 %+.0f µs)",
			v(bench, "machine-cpu-ratio"), v(bench, "open-cpu-µs/req"), v(bench, "checked-cpu-µs/req"),
			v(bench, "open-client-cpu-µs/req"), v(bench, "checked-client-cpu-µs/req"), redisPart(v, has, bench),
			v(bench, "ratio-median-pair"), v(bench, "checked-req/s"), v(bench, "open-req/s"), v(bench, "added-p50-µs"), v(bench, "added-p99-µs"))
	}
	for _, t := range []struct {
		what             string
		proxied, respond string
		target           float64
	}{
		{"throughput with the check ÷ without, local replay protection", localProxied, localRespond, 0.95},
		{"throughput with the check ÷ without, replay protection in Redis", redisProxied, redisRespond, 0.85},
	} {
		add(t.what+" (by CPU time per request of every process, median of alternating pairs)", fmt.Sprintf("≥ %.2f on the proxied route", t.target),
			"proxied route "+throughput(t.proxied)+"; respond route "+throughput(t.respond),
			v(t.proxied, "machine-cpu-ratio") >= t.target, has(t.proxied, "machine-cpu-ratio"))
	}
	if has(planRespond, "machine-cpu-ratio") {
		info("  the same with a usage plan (rate and quota) on the key, local replay protection, respond route",
			fmt.Sprintf("%s (beside %.3f without a plan)", throughput(planRespond), v(localRespond, "machine-cpu-ratio")))
	}

	// 4. Redis commands per request.
	cmds := v(redisProxied, "redis-cmds/req")
	add("Redis commands per request on the hot path (nonce and plan together, replay protection in Redis)", "≤ 1.0",
		fmt.Sprintf("%.2f on the proxied route, %.2f on the respond route (the commands clients sent during the rounds, a script once, ÷ checked requests)",
			cmds, v(redisRespond, "redis-cmds/req")),
		cmds <= 1.0, has(redisProxied, "redis-cmds/req"))

	// 5. Cache miss.
	const miss = "BenchmarkCacheMiss"
	perMiss, shared := v(miss, "redis-cmds/miss"), v(miss, "redis-cmds/64-concurrent-misses")
	add("cache miss", "one Redis round trip; concurrent misses for one key share it",
		fmt.Sprintf("%.2f Redis commands per miss; 64 concurrent misses: %.2f commands; miss p50 %.0f µs, p99 %.0f µs",
			perMiss, shared, v(miss, "miss-p50-µs"), v(miss, "miss-p99-µs")),
		perMiss <= 1.05 && shared <= 1.5, has(miss, "redis-cmds/miss"))

	// 6. Plans' Redis commands.
	const planCmds = "BenchmarkPlanRedisCommands"
	add("Redis commands per request for usage plans (leases, flushes, heartbeats), under load", "≤ 0.1",
		fmt.Sprintf("%.4f over %.0f requests", v(planCmds, "plan-redis-cmds/req"), v(planCmds, "requests")),
		v(planCmds, "plan-redis-cmds/req") <= 0.1, has(planCmds, "plan-redis-cmds/req"))

	// 7. Propagation.
	const prop = "BenchmarkPropagation"
	p99 := v(prop, "p99-ms")
	add("propagation of an admin write to another node", "p99 ≤ 100 ms",
		fmt.Sprintf("p50 %.1f ms, p99 %.1f ms, max %.1f ms (admin writes on node A, node B polled until it acts on them)", v(prop, "p50-ms"), p99, v(prop, "max-ms")),
		p99 <= 100, has(prop, "p99-ms"))

	// 7. Memory.
	perKey := v("TestEntrySize", "B/key-with-signing-key")
	add("memory per cached key", "≤ 1 KiB",
		fmt.Sprintf("%.0f B with its derived signing key (%.0f B before the first verification)", perKey, v("TestEntrySize", "B/key")),
		perKey <= 1024, has("TestEntrySize", "B/key"))
	const upload = "BenchmarkUploadRSS"
	streamed, spooled := v(upload, "streamed-MiB"), v(upload, "spooled-MiB")
	add("100 MiB signed upload (within max_body)", "≤ 16 MiB RSS added",
		fmt.Sprintf("+%.1f MiB streamed (signed content hash), +%.1f MiB spooled (hashed first)", streamed, spooled),
		max(streamed, spooled) <= 16, has(upload, "streamed-MiB"))

	mode := ""
	if short {
		mode = " — SHORT MODE: a check of the harness, not a measurement"
	}
	fmt.Fprintf(w, "\nPerformance targets — %s, %s, %d CPUs, %s, %s, %d micro-benchmark rounds%s\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"),
		cpuModel(), runtime.NumCPU(), runtime.Version(), took.Round(time.Second), count, mode)
	// Shared VMs of one class differ from day to day by up to three
	// times: Caddy's own cost of a request, code this project does not
	// touch, tells how fast this one ran.
	if open, ok := r.get(localRespond, "open-cpu-µs/req"); ok {
		fmt.Fprintf(w, "Speed of this machine in this run: plain Caddy (no check) took %.1f µs of CPU per request on the respond route, %.1f µs on the proxied route.\n\n",
			open, v(localProxied, "open-cpu-µs/req"))
	}
	fmt.Fprintln(w, "| what | target | measured | |")
	fmt.Fprintln(w, "| --- | --- | --- | --- |")
	for _, row := range rows {
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", row.what, row.target, row.measured, row.verdict)
	}
}

// redisPart is a throughput row's note on redis-server's CPU time.
func redisPart(v func(string, string) float64, has func(string, string) bool, bench string) string {
	if !has(bench, "redis-cpu-µs/req") {
		return ""
	}
	return fmt.Sprintf(", redis-server %.1f µs/req", v(bench, "redis-cpu-µs/req"))
}

// cpuModel is the processor's name from /proc/cpuinfo, "" elsewhere.
func cpuModel() string {
	raw, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if name, value, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(name) == "model name" {
			return strings.TrimSpace(value)
		}
	}
	return runtime.GOARCH
}
