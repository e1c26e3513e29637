package gatewaytest

import (
	"syscall"
	"time"
	"unsafe"
)

// processCPUClock reads the CPU-time clock of process pid (Linux's
// MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED), what clock_getcpuclockid
// returns): the run time of all its threads, exited ones included.
func processCPUClock(pid int) (time.Duration, error) {
	const cpuClockSched = 2
	clock := uintptr(^pid<<3 | cpuClockSched)
	var ts syscall.Timespec
	if _, _, errno := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clock, uintptr(unsafe.Pointer(&ts)), 0); errno != 0 {
		return 0, errno
	}
	return time.Duration(ts.Nano()), nil
}
