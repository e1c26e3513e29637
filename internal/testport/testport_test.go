package testport

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// A port handed out stays reserved until its test ends, for this process
// and for others, and is never handed out twice meanwhile.
func TestFreeReserves(t *testing.T) {
	if port := os.Getenv("TESTPORT_HELD"); port != "" { // the other process
		if p, _ := strconv.Atoi(port); canLock(t, p) {
			t.Fatalf("port %s's lock taken while another process holds it", port)
		}
		return
	}
	var held int
	t.Run("held", func(t *testing.T) {
		held = Free(t)
		seen := map[int]bool{held: true}
		for range 100 {
			p := Free(t)
			if seen[p] {
				t.Fatalf("port %d handed out twice", p)
			}
			seen[p] = true
		}
		if canLock(t, held) {
			t.Fatalf("port %d's lock taken again in this process", held)
		}
		other := exec.Command(os.Args[0], "-test.run", "^TestFreeReserves$")
		other.Env = append(os.Environ(), "TESTPORT_HELD="+strconv.Itoa(held))
		if out, err := other.CombinedOutput(); err != nil {
			t.Fatalf("other process: %v\n%s", err, out)
		}
	})
	if !canLock(t, held) {
		t.Errorf("port %d still reserved after its test ended", held)
	}
}

// canLock reports whether port's lock can be taken now (releasing it).
func canLock(t *testing.T, port int) bool {
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "caddy-access-auth-test-ports", strconv.Itoa(port)), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return tryLock(f)
}
