//go:build !linux

package gatewaytest

import "syscall"

func procAttr() *syscall.SysProcAttr { return nil }
