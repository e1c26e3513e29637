package redisstore

import (
	"context"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/accessauth/caddy-access-auth/internal/redistest"
)

// BenchmarkRedisNoncesConcurrent compares the CPU time of the lean path
// with go-redis's pipelines under 32 concurrent callers (a gateway's
// load): cpu-ns/op is this process's user+system time per Seen,
// redis-cpu-ns/op redis-server's (INFO cpu) per Seen.
func BenchmarkRedisNoncesConcurrent(b *testing.B) {
	srv := redistest.Start(b, redistest.Options{})
	backend, err := Open(context.Background(), Options{Addrs: []string{srv.Addr}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { backend.Close() })
	paths := []struct {
		name   string
		nonces *Nonces
	}{
		{"pipe", backend.Nonces()},
		{"go-redis", &Nonces{client: backend.client, prefix: backend.prefix + ":nonce:"}},
	}
	serverCPU := redistest.CPU(b, srv.Addr)
	var seq atomic.Int64
	for _, path := range paths {
		b.Run(path.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(16)
			start, serverStart := cpuTime(b), serverCPU()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					nonce := strconv.FormatInt(seq.Add(1), 10)
					if _, err := path.nonces.Seen(ctx, "0123456789ABCDEF0123456789ABCDEF", nonce, time.Now(), time.Minute); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64((cpuTime(b)-start).Nanoseconds())/float64(b.N), "cpu-ns/op")
			b.ReportMetric(float64((serverCPU()-serverStart).Nanoseconds())/float64(b.N), "redis-cpu-ns/op")
		})
	}
}

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
