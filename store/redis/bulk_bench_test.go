package redisstore_test

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/accessauth/caddy-access-auth/internal/bulkgen"
	"github.com/accessauth/caddy-access-auth/internal/redistest"
	"github.com/accessauth/caddy-access-auth/store"
	redisstore "github.com/accessauth/caddy-access-auth/store/redis"
)

// BenchmarkImportFromCluster: a bulk import into a Redis Cluster of three
// masters, each with a replica that every batch waits for (keys/s, heap
// added; docs/operations.md).
func BenchmarkImportFromCluster(b *testing.B) {
	cl := redistest.StartClusterWithReplicas(b)
	masterKey := bytes.Repeat([]byte{3}, store.MasterKeySize)
	s, err := store.Open(openRedis(b, redisstore.Options{Addrs: cl.Addrs()}), store.Options{MasterKeys: [][]byte{masterKey}})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	var serverCPU []func() time.Duration
	for _, addr := range cl.Addrs() {
		serverCPU = append(serverCPU, redisCPU(b, addr))
	}
	bulkgen.BenchmarkImport(b, s, masterKey, serverCPU...)
}

// redisCPU returns the CPU time (user and system) the server at addr has
// used so far, from its INFO cpu.
func redisCPU(b *testing.B, addr string) func() time.Duration {
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
