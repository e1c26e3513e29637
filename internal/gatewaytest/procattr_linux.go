package gatewaytest

import "syscall"

// procAttr has the kernel kill Caddy when the test binary dies, so an
// interrupted run (a panic, a timeout) leaves no server behind.
func procAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} }
