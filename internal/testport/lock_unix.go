//go:build unix

package testport

import (
	"os"
	"syscall"
)

// tryLock takes an exclusive lock on f without waiting. The lock belongs to
// this open file: a second open of the same file, even in this process,
// does not get it.
func tryLock(f *os.File) bool {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil
}
