// Package testport hands loopback TCP ports to the servers the tests start
// (Caddy, redis-server). A port found free is reserved by an exclusive lock
// on a file named after it until the test ends, so that test binaries
// running side by side (go test ./... runs packages in parallel) never take
// the same port between finding it free and binding it. Caddy listens with
// SO_REUSEPORT: two servers on one port would not fail, they would silently
// share its connections.
package testport

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// redisDefault is never handed out: a system Redis may listen there.
const redisDefault = 6379

// Free returns a loopback port that was free a moment ago and that no
// other test of this machine holds until t ends.
func Free(t testing.TB) int {
	t.Helper()
	dir := filepath.Join(os.TempDir(), "caddy-access-auth-test-ports")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		t.Fatalf("testport: %v", err)
	}
	for range 1000 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("testport: find a free port: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if port == redisDefault {
			continue
		}
		lock, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(port)), os.O_CREATE|os.O_RDWR, 0o666)
		if err != nil {
			t.Fatalf("testport: %v", err)
		}
		if !tryLock(lock) {
			lock.Close() // another test holds it
			continue
		}
		t.Cleanup(func() { lock.Close() }) // closing releases the lock
		return port
	}
	t.Fatal("testport: no free port after 1000 tries")
	return 0
}
