package redisstore_test

import (
	"bytes"
	"testing"
	"time"

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
		serverCPU = append(serverCPU, redistest.CPU(b, addr))
	}
	bulkgen.BenchmarkImport(b, s, masterKey, serverCPU...)
}
