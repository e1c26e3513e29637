package store

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

var (
	key1 = bytes.Repeat([]byte{1}, MasterKeySize)
	key2 = bytes.Repeat([]byte{2}, MasterKeySize)
)

func newTestSealer(t testing.TB, keys ...[]byte) *sealer {
	t.Helper()
	s, err := newSealer(keys, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSealOpen(t *testing.T) {
	const secret = "TOP-SECRET-VALUE"
	s1 := newTestSealer(t, key1)
	sealed, err := s1.seal(secret, "ak-1")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, secret) || !strings.HasPrefix(sealed, "v1."+MasterKeyFingerprint(key1)+".") {
		t.Fatalf("sealed form %q", sealed)
	}
	if again, _ := s1.seal(secret, "ak-1"); again == sealed {
		t.Error("two seals of one secret are equal: nonce reused")
	}
	if got, err := s1.open(sealed, "ak-1"); err != nil || got != secret {
		t.Fatalf("open = %q, %v", got, err)
	}
	rotated := newTestSealer(t, key2, key1)
	if got, err := rotated.open(sealed, "ak-1"); err != nil || got != secret {
		t.Errorf("second master key does not open: %q, %v", got, err)
	}
	if resealed, _ := rotated.seal(secret, "ak-1"); !strings.HasPrefix(resealed, "v1."+MasterKeyFingerprint(key2)+".") {
		t.Errorf("the first master key does not seal: %q", resealed)
	}
	// Flip one bit of the ciphertext itself (flipping a bit of its base64
	// text may make an invalid character instead).
	dot := strings.LastIndexByte(sealed, '.')
	payload, err := base64.RawURLEncoding.DecodeString(sealed[dot+1:])
	if err != nil {
		t.Fatal(err)
	}
	payload[len(payload)-3] ^= 1
	tampered := sealed[:dot+1] + base64.RawURLEncoding.EncodeToString(payload)
	for _, tt := range []struct {
		name   string
		s      *sealer
		sealed string
		keyID  string
		want   string
	}{
		{"other key id", s1, sealed, "ak-2", "authentication failed"},
		{"tampered", s1, tampered, "ak-1", "authentication failed"},
		{"unknown master key", newTestSealer(t, key2), sealed, "ak-1", "not configured"},
		{"no prefix", s1, "plain", "ak-1", "unknown format"},
		{"no payload", s1, "v1." + MasterKeyFingerprint(key1), "ak-1", "unknown format"},
		{"bad base64", s1, "v1." + MasterKeyFingerprint(key1) + ".!!", "ak-1", "bad encoding"},
		{"short", s1, "v1." + MasterKeyFingerprint(key1) + ".AAAA", "ak-1", "authentication failed"},
	} {
		got, err := tt.s.open(tt.sealed, tt.keyID)
		if err == nil || got != "" || !errors.Is(err, ErrUnsealable) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %q, %v; want error with %q", tt.name, got, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), secret) {
			t.Errorf("%s: the error shows the secret", tt.name)
		}
	}
}

func TestNewSealerRejects(t *testing.T) {
	for name, keys := range map[string][][]byte{
		"none":  nil,
		"short": {make([]byte, 16)},
		"long":  {key1, make([]byte, 33)},
	} {
		if _, err := newSealer(keys, rand.Reader); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestMasterKeyEncoding(t *testing.T) {
	key, err := GenerateMasterKey()
	if err != nil || len(key) != MasterKeySize {
		t.Fatalf("GenerateMasterKey: %d bytes, %v", len(key), err)
	}
	if other, _ := GenerateMasterKey(); bytes.Equal(other, key) {
		t.Error("two generated keys are equal")
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		got, err := DecodeMasterKey(" " + enc.EncodeToString(key) + "\n")
		if err != nil || !bytes.Equal(got, key) {
			t.Errorf("decode %q: %v", enc.EncodeToString(key), err)
		}
	}
	if got, err := DecodeMasterKey(EncodeMasterKey(key)); err != nil || !bytes.Equal(got, key) {
		t.Errorf("round trip: %v", err)
	}
	short := base64.StdEncoding.EncodeToString(key[:16])
	for _, in := range []string{"", "not base64 at all!", short, EncodeMasterKey(append(key, 0))} {
		_, err := DecodeMasterKey(in)
		if err == nil {
			t.Errorf("DecodeMasterKey(%q) accepted", in)
		} else if in != "" && strings.Contains(err.Error(), in) {
			t.Errorf("the error repeats the input: %v", err)
		}
	}
}

func TestMasterKeyFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "dir")
	path := filepath.Join(dir, MasterKeyFileName)
	if _, err := ReadMasterKeyFile(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("read before create: %v, want fs.ErrNotExist", err)
	}
	key, err := CreateMasterKeyFile(path, key1)
	if err != nil || !bytes.Equal(key, key1) {
		t.Fatalf("create: %v", err)
	}
	for p, want := range map[string]os.FileMode{path: 0o600, dir: 0o700 | os.ModeDir} {
		if info, err := os.Stat(p); err != nil || info.Mode() != want {
			t.Errorf("%s: mode %v, want %v (%v)", p, info.Mode(), want, err)
		}
	}
	content, _ := os.ReadFile(path)
	if string(content) != EncodeMasterKey(key)+"\n" {
		t.Errorf("file holds %q", content)
	}
	again, err := ReadMasterKeyFile(path)
	if err != nil || !bytes.Equal(again, key) {
		t.Errorf("read: %v", err)
	}
	if kept, err := CreateMasterKeyFile(path, key2); err != nil || !bytes.Equal(kept, key1) {
		t.Errorf("create over an existing file: %v; want the file's key kept and returned", err)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dir, ".master.key-*")); len(leftovers) != 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}

	corrupt := filepath.Join(t.TempDir(), MasterKeyFileName)
	os.WriteFile(corrupt, []byte("garbage"), 0o600)
	if _, err := ReadMasterKeyFile(corrupt); err == nil || !strings.Contains(err.Error(), corrupt) {
		t.Errorf("corrupt file: %v", err)
	}
}

func TestCreateMasterKeyFileConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), MasterKeyFileName)
	keys := make([][]byte, 8)
	var wg sync.WaitGroup
	for i := range keys {
		wg.Go(func() {
			var err error
			if keys[i], err = CreateMasterKeyFile(path, bytes.Repeat([]byte{byte(i)}, MasterKeySize)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for _, k := range keys[1:] {
		if !bytes.Equal(k, keys[0]) {
			t.Fatal("concurrent first starts got different keys")
		}
	}
}

func FuzzOpenSealed(f *testing.F) {
	s, err := newSealer([][]byte{key1, key2}, rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	sealed, _ := s.seal("secret", "ak-1")
	f.Add(sealed, "ak-1")
	f.Add("v1."+MasterKeyFingerprint(key2)+".AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "ak-1")
	f.Add("v1..", "")
	f.Fuzz(func(t *testing.T, sealed, keyID string) {
		got, err := s.open(sealed, keyID)
		if err != nil {
			if got != "" || !errors.Is(err, ErrUnsealable) {
				t.Fatalf("failed open returned %q, %v", got, err)
			}
			return
		}
		// Whatever opens names a configured master key; it must seal and
		// open again to the same secret.
		if fp := sealedFingerprint(sealed); !slices.Contains(s.fingerprints, fp) {
			t.Fatalf("opened %q, whose fingerprint %q is not configured", sealed, fp)
		}
		resealed, err := s.seal(got, keyID)
		if err != nil {
			t.Fatal(err)
		}
		if again, err := s.open(resealed, keyID); err != nil || again != got {
			t.Fatalf("round trip: %q, %v", again, err)
		}
	})
}

func FuzzDecodeMasterKey(f *testing.F) {
	f.Add(EncodeMasterKey(key1))
	f.Add(base64.RawURLEncoding.EncodeToString(key2))
	f.Add("")
	f.Add("====")
	f.Fuzz(func(t *testing.T, in string) {
		key, err := DecodeMasterKey(in)
		if err != nil {
			if len(in) > 8 && strings.Contains(err.Error(), in) {
				t.Fatalf("error repeats the input: %v", err)
			}
			return
		}
		if len(key) != MasterKeySize {
			t.Fatalf("decoded %d bytes", len(key))
		}
		if again, err := DecodeMasterKey(EncodeMasterKey(key)); err != nil || !bytes.Equal(again, key) {
			t.Fatalf("round trip: %v", err)
		}
	})
}
