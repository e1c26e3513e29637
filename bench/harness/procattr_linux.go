package harness

import "syscall"

// procAttr has the kernel kill Caddy when the benchmark process dies, so an
// interrupted run leaves no server behind.
func procAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} }
