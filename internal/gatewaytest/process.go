package gatewaytest

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// CPUTime is the CPU time (user and system) the node's process has used,
// to the nanosecond.
func (n *Node) CPUTime() time.Duration {
	n.t.Helper()
	return ProcessCPUTime(n.t, n.PID())
}

// ProcessCPUTime is the CPU time (user and system) process pid has used,
// its exited threads' included, to the nanosecond: the scheduler's own
// account, read from the process's CPU-time clock. (/proc/<pid>/stat
// counts 10 ms clock ticks, each charged whole to the thread it
// interrupts: a 500 ms round of load read ±1 tick a core.)
func ProcessCPUTime(t testing.TB, pid int) time.Duration {
	t.Helper()
	d, err := processCPUClock(pid)
	if err != nil {
		t.Fatalf("CPU time of process %d: %v", pid, err)
	}
	return d
}

// RSS is the node's resident memory in bytes.
func (n *Node) RSS() int64 { return n.status("VmRSS") }

// AnonRSS is the node's resident anonymous memory in bytes: RSS without
// the pages of mapped files (the embedded store maps its database, and
// those pages are the file's, reclaimable).
func (n *Node) AnonRSS() int64 { return n.status("RssAnon") }

// status reads a size in kB from /proc/<pid>/status, in bytes.
func (n *Node) status(field string) int64 {
	n.t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", n.PID()))
	if err != nil {
		n.t.Fatalf("%s needs Linux's /proc: %v", field, err)
	}
	for line := range strings.Lines(string(raw)) {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				n.t.Fatalf("%s %q", field, rest)
			}
			return kb << 10
		}
	}
	n.t.Fatalf("no %s in /proc/<pid>/status", field)
	return 0
}
