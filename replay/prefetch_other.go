//go:build !amd64 && !arm64

package enforcement

// prefetchBucket does nothing where no prefetch instruction is wired up:
// the bucket is then loaded when it is used.
func prefetchBucket(*nonceBucket) {}
