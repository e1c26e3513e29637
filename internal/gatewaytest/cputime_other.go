//go:build !linux

package gatewaytest

import (
	"errors"
	"time"
)

func processCPUClock(int) (time.Duration, error) {
	return 0, errors.New("needs Linux's process CPU-time clocks")
}
