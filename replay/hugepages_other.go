//go:build !linux

package replay

// adviseHugePages does nothing where no huge page advice is wired up.
func adviseHugePages([]nonceBucket) {}
