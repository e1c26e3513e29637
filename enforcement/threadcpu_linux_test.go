//go:build linux

package enforcement

import (
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// reportThreadCPU has b report, beside ns/op, the CPU time its goroutine's
// thread spent per operation (thread-cpu-ns/op): on a machine shared with
// other work, wall time counts the time the thread waited for a core, CPU
// time does not. Call it before the loop; the returned func after it.
func reportThreadCPU(b *testing.B) func() {
	runtime.LockOSThread()
	start := threadCPU()
	return func() {
		spent := threadCPU() - start
		runtime.UnlockOSThread()
		if b.N > 0 {
			b.ReportMetric(float64(spent)/float64(b.N), "thread-cpu-ns/op")
		}
	}
}

func threadCPU() int64 {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts) != nil {
		return 0
	}
	return ts.Nano()
}
