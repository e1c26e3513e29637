package redistest

import "syscall"

// procAttr makes a server die with the test binary, even when the test
// panics or times out before its cleanups run.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
