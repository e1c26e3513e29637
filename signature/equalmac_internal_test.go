package signature

import (
	"crypto/hmac"
	"crypto/sha256"
	"testing"
)

// TestEqualMAC: equal MACs match; every single-byte difference, at every
// position and with every bit pattern, is found; so is a difference in
// every byte at once.
func TestEqualMAC(t *testing.T) {
	a := sha256.Sum256([]byte("a MAC"))
	b := a
	if !equalMAC(&a, &b) {
		t.Fatal("equal MACs do not match")
	}
	for i := range a {
		for x := 1; x < 256; x++ {
			b := a
			b[i] ^= byte(x)
			if equalMAC(&a, &b) || equalMAC(&b, &a) {
				t.Fatalf("byte %d differing by %#x matches", i, x)
			}
		}
	}
	var zero, ones [sha256.Size]byte
	for i := range ones {
		ones[i] = 0xff
	}
	if equalMAC(&zero, &ones) || !equalMAC(&zero, &zero) {
		t.Fatal("all bytes differing, or none")
	}
}

// FuzzEqualMAC: equalMAC agrees with hmac.Equal.
func FuzzEqualMAC(f *testing.F) {
	f.Add(make([]byte, 32), make([]byte, 32))
	f.Fuzz(func(t *testing.T, x, y []byte) {
		var a, b [sha256.Size]byte
		copy(a[:], x)
		copy(b[:], y)
		if got, want := equalMAC(&a, &b), hmac.Equal(a[:], b[:]); got != want {
			t.Fatalf("equalMAC(%x, %x) = %v, hmac.Equal %v", a, b, got, want)
		}
	})
}

func BenchmarkEqualMAC(b *testing.B) {
	x := sha256.Sum256([]byte("a MAC"))
	y := x
	y[31] ^= 1
	var n int
	for b.Loop() {
		if equalMAC(&x, &y) {
			n++
		}
	}
	_ = n
}
