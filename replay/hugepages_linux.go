package replay

import (
	"syscall"
	"unsafe"
)

// hugePageSize is the size of a transparent huge page on Linux's common
// architectures.
const hugePageSize = 2 << 20

// adviseHugePages asks Linux to back the table's whole 2 MiB pages with
// huge pages, when its transparent huge pages are "madvise" (as commonly
// set): each nonce lands on a random bucket, and with 4 KiB pages nearly
// every lookup also misses the TLB, whose page walk the bucket's prefetch
// does not hide. Without the kernel's support the advice is ignored.
func adviseHugePages(buckets []nonceBucket) {
	if len(buckets) == 0 {
		return
	}
	start := uintptr(unsafe.Pointer(&buckets[0]))
	end := start + uintptr(len(buckets))*unsafe.Sizeof(buckets[0])
	first, last := (start+hugePageSize-1)&^(hugePageSize-1), end&^(hugePageSize-1)
	if first >= last {
		return
	}
	_, _, _ = syscall.Syscall(syscall.SYS_MADVISE, first, last-first, syscall.MADV_HUGEPAGE)
}
