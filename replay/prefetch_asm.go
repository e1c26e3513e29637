//go:build amd64 || arm64

package replay

// prefetchBucket asks the CPU to load both cache lines of b, and returns
// without waiting for them (prefetch_$GOARCH.s).
//
//go:noescape
func prefetchBucket(b *nonceBucket)
