package replay

import (
	"context"
	"crypto/sha256"
	"strconv"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/accessauth/caddy-access-auth/internal/pollute"
)

// BenchmarkLocalNoncesHugePages is a check's use of the table as a busy
// server makes it, in the table as made (huge pages) and in one kept to
// 4 KiB pages, alternating request by request: caches and TLB polluted,
// Prepare, the signature's worth of hashing (which the prefetch should
// hide the bucket's load behind), Record. Each is timed alone (ns/check).
func BenchmarkLocalNoncesHugePages(b *testing.B) {
	const apiKey = "0123456789ABCDEF0123456789ABCDEF"
	smallPages := func(l *LocalNonces) {
		start := uintptr(unsafe.Pointer(&l.buckets[0]))
		size := uintptr(len(l.buckets)) * unsafe.Sizeof(l.buckets[0])
		if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, start, size, syscall.MADV_NOHUGEPAGE); errno != 0 {
			b.Fatal(errno)
		}
	}
	tables := [2]*LocalNonces{NewLocalNonces(), NewLocalNonces()}
	smallPages(tables[1]) // before any page is mapped
	for _, n := range tables {
		for i := range DefaultMaxNonces / 2 { // as halfFullNonces
			n.Seen(context.Background(), apiKey, "fill-"+strconv.Itoa(i), time.Now(), 15*time.Minute)
		}
	}
	ctx := context.Background()
	polluteCaches := pollute.NewCachePolluter()
	nonce := []byte("3f2b8c1e-8a4d-4c7e-9b1a-")
	prefix := len(nonce)
	signed := make([]byte, 300)
	var spent [2]time.Duration
	for i := 0; b.Loop(); i++ {
		polluteCaches()
		nonce = strconv.AppendInt(nonce[:prefix], int64(i), 10)
		n := tables[i%2]
		start := time.Now()
		ticket := n.Prepare(apiKey, unsafe.String(&nonce[0], len(nonce)))
		for range 4 { // ~ the check's hashing
			sum := sha256.Sum256(signed)
			signed[0] = sum[0]
		}
		if v := n.Record(ctx, ticket, start, start, time.Hour); v != Fresh {
			b.Fatalf("nonce %d: %v", i, v)
		}
		spent[i%2] += time.Since(start)
	}
	half := float64(b.N) / 2
	b.ReportMetric(float64(spent[0])/half, "huge-pages-ns/check")
	b.ReportMetric(float64(spent[1])/half, "small-pages-ns/check")
}
