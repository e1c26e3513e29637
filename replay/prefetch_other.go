//go:build !amd64 && !arm64

package replay

// prefetchBucket does nothing where no prefetch instruction is wired up:
// the bucket is then loaded when it is used.
func prefetchBucket(*nonceBucket) {}
