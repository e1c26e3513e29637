// Package pollute helps benchmarks see the CPU's caches as a busy server
// leaves them.
package pollute

// NewCachePolluter returns a func that does what the rest of a server's
// request does to the CPU's caches and TLB: it touches 256 random lines of
// a 16 MiB buffer.
func NewCachePolluter() func() {
	pollution := make([]byte, 16<<20)
	rng := uint64(0x9e3779b97f4a7c15)
	return func() {
		for range 256 {
			rng ^= rng << 13
			rng ^= rng >> 7
			rng ^= rng << 17
			pollution[rng%uint64(len(pollution))&^63]++
		}
	}
}
