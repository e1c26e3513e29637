//go:build linux && !race

package replay

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The table of the default size stays out of the heap, so it does not
// raise the collector's goal, and its mapping goes when it is dropped.
func TestLocalNoncesOutsideTheHeap(t *testing.T) {
	heapBefore := heapAlloc()
	l := NewLocalNonces()
	if grew := heapAlloc() - heapBefore; grew > 1<<20 {
		t.Errorf("a table of %d buckets took %d bytes of heap", len(l.buckets), grew)
	}
	if seen, _ := l.Seen(t.Context(), "key", "nonce", time.Now(), 60e9); seen {
		t.Fatal("a fresh nonce counted as seen")
	}
	if seen, _ := l.Seen(t.Context(), "key", "nonce", time.Now(), 60e9); !seen {
		t.Fatal("a replayed nonce counted as fresh")
	}
	runtime.KeepAlive(l)

	vmBefore := virtualMemory(t)
	for range 40 { // 40 × 38 MiB would be 1.5 GiB of mappings kept
		_ = NewLocalNonces()
		runtime.GC()
	}
	runtime.GC()
	runtime.GC()
	if grew := virtualMemory(t) - vmBefore; grew > 256<<20 {
		t.Errorf("dropped tables still map %d MiB", grew>>20)
	}
}

func heapAlloc() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// virtualMemory is the process's VmSize in bytes.
func virtualMemory(t *testing.T) int64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(raw)) {
		if rest, ok := strings.CutPrefix(line, "VmSize:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmSize in /proc/self/status")
	return 0
}
