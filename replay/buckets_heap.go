//go:build !linux || race

package replay

// newBuckets returns n empty buckets on the heap: the race detector sees
// only the Go heap's memory, and other systems keep the portable path
// (buckets_mmap.go maps them on Linux).
func newBuckets(_ *LocalNonces, n int) []nonceBucket {
	return make([]nonceBucket, n)
}
