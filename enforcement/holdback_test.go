package enforcement

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// TestCheckedBodyHoldsTheLastByteBack: a reader gets a matching body whole
// whatever its buffer sizes, and never the whole of a tampered one.
func TestCheckedBodyHoldsTheLastByteBack(t *testing.T) {
	body := []byte(strings.Repeat("0123456789", 1000))
	checked := func(data []byte, wrap func(io.Reader) io.Reader) *checkedBody {
		return &checkedBody{body: io.NopCloser(wrap(bytes.NewReader(data))), remaining: 1 << 20, hash: sha256.New(), want: sha256.Sum256(body)}
	}
	wraps := map[string]func(io.Reader) io.Reader{
		"plain":    func(r io.Reader) io.Reader { return r },
		"one byte": iotest.OneByteReader,
		"half":     iotest.HalfReader,
		"data+EOF": iotest.DataErrReader,
	}
	for name, wrap := range wraps {
		t.Run(name, func(t *testing.T) {
			if err := iotest.TestReader(checked(body, wrap), body); err != nil {
				t.Fatal(err)
			}
			for _, size := range []int{1, 2, 7, 4096} {
				got, err := io.ReadAll(iotest.OneByteReader(io.LimitReader(checked(body, wrap), 1<<30)))
				if size > 1 {
					got, err = readWith(checked(body, wrap), size)
				}
				if err != nil || !bytes.Equal(got, body) {
					t.Fatalf("buffer %d: %d bytes, %v", size, len(got), err)
				}
				tampered := bytes.Clone(body)
				tampered[len(tampered)/2] ^= 1
				got, err = readWith(checked(tampered, wrap), size)
				if !errors.Is(err, ErrBodyMismatch) || len(got) >= len(body) {
					t.Fatalf("buffer %d: tampered body gave %d of %d bytes, %v", size, len(got), len(body), err)
				}
			}
		})
	}
}

func readWith(r io.Reader, size int) ([]byte, error) {
	var out []byte
	buf := make([]byte, size)
	for {
		n, err := r.Read(buf)
		out = append(out, buf[:n]...)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}
