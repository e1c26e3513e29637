package gatewaytest

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// CPUTime is the CPU time (user and system) the node's process has used,
// to the clock tick (10 ms).
func (n *Node) CPUTime() time.Duration {
	n.t.Helper()
	return ProcessCPUTime(n.t, n.PID())
}

// ProcessCPUTime is the CPU time (user and system) process pid has used, to
// the clock tick (10 ms).
func ProcessCPUTime(t testing.TB, pid int) time.Duration {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatalf("CPU time needs Linux's /proc: %v", err)
	}
	// The command name in parentheses may hold spaces: fields count from
	// after its closing parenthesis; utime and stime are fields 14 and 15.
	fields := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+1:]))
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("reading /proc/%d/stat: %q", pid, raw)
	}
	const ticksPerSecond = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / ticksPerSecond
}

// RSS is the node's resident memory in bytes.
func (n *Node) RSS() int64 {
	n.t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", n.PID()))
	if err != nil {
		n.t.Fatalf("RSS needs Linux's /proc: %v", err)
	}
	for line := range strings.Lines(string(raw)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				n.t.Fatalf("VmRSS %q", rest)
			}
			return kb << 10
		}
	}
	n.t.Fatal("no VmRSS in /proc/<pid>/status")
	return 0
}
