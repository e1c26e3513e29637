package bulkgen

import (
	"context"
	"io"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/accessauth/caddy-access-auth/store"
)

// BenchmarkImport streams b.N generated keys with their authorizations into
// s (whose master key is masterKey) and reports keys/s and the live heap
// the import added, sampled at every MiB of input, then exports
// them and reports the heap the export added likewise: the figures of bulk
// import and export, whatever the engine under s. serverCPU, when given,
// is the CPU time the engine's server processes have used so far: the
// import's share of it is reported per key too.
func BenchmarkImport(b *testing.B, s *store.Store, masterKey []byte, serverCPU ...func() time.Duration) {
	b.Helper()
	pr, pw := io.Pipe()
	heap := &heapSampler{every: 1 << 20}
	heap.sample()
	go func() {
		pw.CloseWithError(Write(io.MultiWriter(pw, heap), Spec{Keys: b.N, Group: "bulk", MasterKey: masterKey}))
	}()
	b.ResetTimer()
	cpu, server := processCPU(), sumCPU(serverCPU)
	sum, err := s.ImportFrom(context.Background(), pr, store.Actor{Name: "bench"})
	cpu, server = processCPU()-cpu, sumCPU(serverCPU)-server
	b.StopTimer()
	if err != nil || sum.Keys != b.N {
		b.Fatalf("import: %+v %v", sum, err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "keys/s")
	// The machine is shared: keys per second of this process's CPU (the
	// generator's included) says what a core does when it is not.
	if cpu > 0 {
		b.ReportMetric(float64(b.N)/cpu.Seconds(), "keys/cpu-s")
	}
	if len(serverCPU) > 0 {
		// What the machine's cores spend on the engine's side, whatever
		// else shares them.
		b.ReportMetric(float64(server.Microseconds())/float64(b.N), "server-cpu-µs/key")
	}
	b.ReportMetric(float64(heap.peak-heap.base)/(1<<20), "MiB-heap-added")
	b.ReportMetric(float64(heap.peakRSS-heap.baseRSS)/(1<<20), "MiB-anon-rss-added")

	// The export of what was imported streams too.
	out := &heapSampler{every: 1 << 20}
	out.sample()
	if err := s.ExportTo(context.Background(), out); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(out.peak-out.base)/(1<<20), "MiB-heap-added-by-export")
}

func sumCPU(clocks []func() time.Duration) time.Duration {
	var total time.Duration
	for _, c := range clocks {
		total += c()
	}
	return total
}

// heapSampler records the live heap every `every` bytes written through it:
// after a collection it forces for the base, then as the last collection
// the runtime ran by itself marked it. Forcing one at every sample took up
// to 40 % of the process's CPU at the start of an import, which the keys/s
// figures then counted.
type heapSampler struct {
	every, written   int
	base, peak       uint64
	baseRSS, peakRSS int64
}

func (h *heapSampler) sample() {
	if h.base == 0 {
		runtime.GC()
	}
	live := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(live)
	heap := live[0].Value.Uint64()
	rss := residentBytes()
	if h.base == 0 {
		h.base, h.baseRSS = heap, rss
	}
	h.peak, h.peakRSS = max(h.peak, heap), max(h.peakRSS, rss)
}

// residentBytes is this process's anonymous RSS (Linux), 0 where unknown:
// bbolt maps its file, and those pages are the file's, reclaimable, not
// the import's.
func residentBytes() int64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(raw)) {
		if rest, ok := strings.CutPrefix(line, "RssAnon:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func (h *heapSampler) Write(p []byte) (int, error) {
	if h.written/h.every != (h.written+len(p))/h.every {
		h.sample()
	}
	h.written += len(p)
	return len(p), nil
}
