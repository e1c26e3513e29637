package replay

import (
	"bytes"
	"errors"
	"strconv"
	"testing"
	"time"
)

// savedTable is a table of size holding nonces n0…n99 of key K1 (each
// kept an hour and i seconds), a horizon for K2's group and a date bound,
// and its saved form.
func savedTable(t testing.TB, clk *nonceClock, size int) (*LocalNonces, []byte) {
	t.Helper()
	n := NewLocalNonces(WithNonceClock(clk.Now), WithMaxNonces(size), WithVouchesFrom(testNow.Add(-time.Minute)))
	for i := range 100 {
		if seen(t, n, "K1", "n"+strconv.Itoa(i), time.Hour+time.Duration(i)*time.Second) {
			t.Fatalf("nonce %d seen before", i)
		}
	}
	raise(&n.horizons[uint8(n.locate("K2", "x").fingerprint)], seconds(n.since(testNow.Add(20*time.Minute))))
	var buf bytes.Buffer
	if _, err := n.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return n, buf.Bytes()
}

// A saved table, read into a table of the same, a smaller or a larger size
// later on, refuses the replays of the nonces it held, refuses what its
// horizon and date bound refused, takes fresh nonces, and forgets what
// expired meanwhile.
func TestLocalNoncesSurviveSaving(t *testing.T) {
	for _, size := range []int{1000, 40, 100_000} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			clk := &nonceClock{now: testNow}
			_, saved := savedTable(t, clk, 1000)
			clk.advance(30 * time.Second) // the next process starts
			n, err := ReadLocalNonces(bytes.NewReader(saved), WithNonceClock(clk.Now), WithMaxNonces(size))
			if err != nil {
				t.Fatal(err)
			}
			if size >= 1000 && n.Len() < 100 {
				t.Fatalf("%d nonces after reading, want at least 100", n.Len())
			}
			for i := range 100 {
				// A replay expires with its original: it carries its date.
				ttl := time.Hour + time.Duration(i)*time.Second - 30*time.Second
				if v := n.record(n.locate("K1", "n"+strconv.Itoa(i)), clk.Now(), ttl); v == Fresh {
					t.Fatalf("nonce %d fresh after reading", i)
				}
			}
			if v := n.record(n.locate("K1", "fresh"), clk.Now(), 3*time.Hour); v != Fresh {
				t.Fatalf("a fresh nonce: %d", v)
			}
			if v := n.record(n.locate("K2", "y"), clk.Now(), 10*time.Minute); v != TooOld {
				t.Fatalf("K2's nonce expiring before its horizon: %d, want too old", v)
			}
			if n.VouchesFor(testNow.Add(-2*time.Minute)) || !n.VouchesFor(testNow.Add(-time.Minute)) {
				t.Fatal("the date bound did not go over")
			}
			clk.advance(2 * time.Hour)
			if n.Len() != 1 {
				t.Fatalf("%d nonces 2h on, want the fresh one", n.Len())
			}
		})
	}
}

// A table read after its nonces expired holds none.
func TestLocalNoncesSavedLongAgo(t *testing.T) {
	clk := &nonceClock{now: testNow}
	_, saved := savedTable(t, clk, 1000)
	clk.advance(3 * time.Hour)
	n, err := ReadLocalNonces(bytes.NewReader(saved), WithNonceClock(clk.Now), WithMaxNonces(1000))
	if err != nil {
		t.Fatal(err)
	}
	if n.Len() != 0 || !n.Horizon().IsZero() {
		t.Fatalf("%d nonces, horizon %v, want none", n.Len(), n.Horizon())
	}
}

// Whatever is wrong with the input, the reader refuses it.
func TestReadLocalNoncesRefusesDamage(t *testing.T) {
	clk := &nonceClock{now: testNow}
	_, saved := savedTable(t, clk, 1000)
	flip := func(i int) []byte {
		b := bytes.Clone(saved)
		b[i] ^= 1
		return b
	}
	for _, tc := range []struct {
		name  string
		input []byte
	}{
		{"empty", nil},
		{"another format", append([]byte("SQLite format 3\x00"), saved[16:]...)},
		{"another version", flip(8)},
		{"a key changed", flip(12)},
		{"a nonce changed", flip(len(saved) - 10)},
		{"torn", saved[:len(saved)-20]},
		{"no checksum", saved[:len(saved)-4]},
		{"trailing bytes", append(bytes.Clone(saved), 0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ReadLocalNonces(bytes.NewReader(tc.input), WithNonceClock(clk.Now), WithMaxNonces(1000)); !errors.Is(err, ErrSavedNonces) {
				t.Fatalf("error %v, want ErrSavedNonces", err)
			}
		})
	}
}

// A successor of another size vouches for what its predecessor did, also
// for the nonces the predecessor records until it hands over.
func TestLocalNoncesSuccessor(t *testing.T) {
	clk := &nonceClock{now: testNow}
	old, _ := savedTable(t, clk, 1000)
	next := old.Successor(WithNonceClock(clk.Now), WithMaxNonces(5000))
	seen(t, old, "K1", "late", time.Hour)
	old.HandOver(next)
	for _, nonce := range []string{"n0", "n99", "late"} {
		if !seen(t, next, "K1", nonce, time.Hour) {
			t.Fatalf("nonce %s fresh in the successor", nonce)
		}
	}
	if next.VouchesFor(testNow.Add(-2 * time.Minute)) {
		t.Fatal("the date bound did not go over")
	}
	if seen(t, next, "K1", "fresh", time.Hour) {
		t.Fatal("a fresh nonce seen in the successor")
	}
}

// FuzzReadLocalNonces: any input is read into a table or refused with
// ErrSavedNonces, never a panic; what is read saves back to input that
// reads again.
func FuzzReadLocalNonces(f *testing.F) {
	clk := &nonceClock{now: testNow}
	_, saved := savedTable(f, clk, 40)
	f.Add(saved)
	f.Add(saved[:100])
	f.Add([]byte(savedMagic))
	f.Fuzz(func(t *testing.T, input []byte) {
		n, err := ReadLocalNonces(bytes.NewReader(input), WithNonceClock(clk.Now), WithMaxNonces(40))
		if err != nil {
			if !errors.Is(err, ErrSavedNonces) {
				t.Fatalf("error %v, want ErrSavedNonces", err)
			}
			return
		}
		var again bytes.Buffer
		if _, err := n.WriteTo(&again); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadLocalNonces(&again, WithNonceClock(clk.Now), WithMaxNonces(40)); err != nil {
			t.Fatalf("a table read from valid input saves to invalid input: %v", err)
		}
	})
}
