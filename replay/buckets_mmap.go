//go:build linux && !race

package replay

import (
	"runtime"
	"syscall"
	"unsafe"
)

// newBuckets returns n empty buckets for owner, mapped outside the Go heap
// and unmapped once owner is unreachable. The garbage collector lets the
// heap grow by as much as it holds live before it collects: a table of
// tens of MiB on the heap, most of it never touched, would let any churn
// (a bulk import, say) grow the resident memory by as much
// (docs/operations.md, "Scale and faults"). Mapped, the table holds no
// pointers the collector must see, and its pages become resident as
// buckets are first used. Where the mapping fails, the heap serves.
func newBuckets(owner *LocalNonces, n int) []nonceBucket {
	size := n * int(unsafe.Sizeof(nonceBucket{}))
	mem, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		return make([]nonceBucket, n)
	}
	runtime.AddCleanup(owner, func(mem []byte) { _ = syscall.Munmap(mem) }, mem)
	return unsafe.Slice((*nonceBucket)(unsafe.Pointer(unsafe.SliceData(mem))), n)
}
