//go:build !linux

package redistest

import "syscall"

// procAttr has nothing to add where the parent's death cannot be signalled.
func procAttr() *syscall.SysProcAttr { return nil }
