package redistest

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// CPU returns the CPU time (user and system) the server at addr has
// used so far, from its INFO cpu.
func CPU(b testing.TB, addr string) func() time.Duration {
	rc := redis.NewClient(&redis.Options{Addr: addr})
	b.Cleanup(func() { rc.Close() })
	return func() time.Duration {
		info, err := rc.Info(context.Background(), "cpu").Result()
		if err != nil {
			b.Fatalf("INFO cpu of %s: %v", addr, err)
		}
		var total float64
		for line := range strings.Lines(info) {
			name, value, _ := strings.Cut(strings.TrimSpace(line), ":")
			if name == "used_cpu_user" || name == "used_cpu_sys" {
				seconds, err := strconv.ParseFloat(value, 64)
				if err != nil {
					b.Fatalf("INFO cpu of %s: %q", addr, line)
				}
				total += seconds
			}
		}
		return time.Duration(total * float64(time.Second))
	}
}
