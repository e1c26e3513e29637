package store

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
)

// MasterKeySize is the length of a master key: AES-256.
const MasterKeySize = 32

// MasterKeyFileName is the name of the master key file the embedded store
// keeps beside its database.
const MasterKeyFileName = "master.key"

// sealedPrefix starts every sealed secret; it names the format version.
const sealedPrefix = "v1."

// GenerateMasterKey returns a new random master key.
func GenerateMasterKey() ([]byte, error) {
	key := make([]byte, MasterKeySize)
	if _, err := io.ReadFull(rand.Reader, key); err != nil {
		return nil, fmt.Errorf("generating master key: %w", err)
	}
	return key, nil
}

// EncodeMasterKey returns the standard base64 form of a master key, as the
// master_key option and the master.key file take it.
func EncodeMasterKey(key []byte) string {
	return base64.StdEncoding.EncodeToString(key)
}

// DecodeMasterKey parses a base64 master key (standard or URL alphabet,
// padded or not). The error never repeats the input.
func DecodeMasterKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		key, err := enc.DecodeString(s)
		if err != nil {
			continue
		}
		if len(key) != MasterKeySize {
			return nil, fmt.Errorf("master key must be %d bytes encoded in base64, got %d bytes", MasterKeySize, len(key))
		}
		return key, nil
	}
	return nil, errors.New("master key is not valid base64 (make one with `caddy access-auth gen-master-key`)")
}

// MasterKeyFingerprint names a master key without revealing it: the first 4
// bytes of a SHA-256 over it, in hex. Sealed secrets carry it so that any
// configured master key can open them.
func MasterKeyFingerprint(key []byte) string {
	h := sha256.New()
	h.Write([]byte("caddy-access-auth master key\x00"))
	h.Write(key)
	return hex.EncodeToString(h.Sum(nil)[:4])
}

// ReadMasterKeyFile reads the base64 master key in path; a missing file is
// an error that wraps fs.ErrNotExist.
func ReadMasterKeyFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	key, err := DecodeMasterKey(string(b))
	if err != nil {
		return nil, fmt.Errorf("master key file %s: %w", path, err)
	}
	return key, nil
}

// CreateMasterKeyFile writes key to a new file at path (mode 0600, its
// directory 0700) and returns it. When the file appeared meanwhile, the key
// it holds is returned instead: concurrent first starts agree on one key.
func CreateMasterKeyFile(path string, key []byte) ([]byte, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating master key directory: %w", err)
	}
	// Write a temporary file and link it into place: the key file appears
	// complete or not at all, and a concurrent creator's key wins cleanly.
	tmp, err := os.CreateTemp(dir, ".master.key-*")
	if err != nil {
		return nil, fmt.Errorf("creating master key file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("creating master key file: %w", err)
	}
	if _, err := tmp.WriteString(EncodeMasterKey(key) + "\n"); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("writing master key file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("writing master key file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("writing master key file: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return ReadMasterKeyFile(path)
		}
		return nil, fmt.Errorf("creating master key file: %w", err)
	}
	return key, nil
}

// sealer encrypts secrets with AES-256-GCM under the first master key and
// opens them with any of them. The additional data binds a sealed secret to
// its access key ID, so it cannot be moved to another key.
type sealer struct {
	aeads        []cipher.AEAD
	fingerprints []string
	rand         io.Reader
}

func newSealer(masterKeys [][]byte, rnd io.Reader) (*sealer, error) {
	if len(masterKeys) == 0 {
		return nil, errors.New("no master key configured (make one with `caddy access-auth gen-master-key`)")
	}
	s := &sealer{rand: rnd}
	for i, key := range masterKeys {
		if len(key) != MasterKeySize {
			return nil, fmt.Errorf("master key %d: must be %d bytes, got %d", i+1, MasterKeySize, len(key))
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		s.aeads = append(s.aeads, aead)
		s.fingerprints = append(s.fingerprints, MasterKeyFingerprint(key))
	}
	return s, nil
}

// seal returns "v1.<fingerprint>.<base64url(nonce|ciphertext)>".
func (s *sealer) seal(secret, keyID string) (string, error) {
	aead := s.aeads[0]
	buf := make([]byte, aead.NonceSize(), aead.NonceSize()+len(secret)+aead.Overhead())
	if _, err := io.ReadFull(s.rand, buf); err != nil {
		return "", fmt.Errorf("sealing secret: %w", err)
	}
	buf = aead.Seal(buf, buf, []byte(secret), []byte(keyID))
	return sealedPrefix + s.fingerprints[0] + "." + base64.RawURLEncoding.EncodeToString(buf), nil
}

// reseal checks that a sealed secret of keyID opens and returns it sealed
// under the first master key; one sealed under it already is kept as is.
func (s *sealer) reseal(sealed, keyID string) (string, error) {
	secret, err := s.open(sealed, keyID)
	if err != nil || sealedFingerprint(sealed) == s.fingerprints[0] {
		return sealed, err
	}
	return s.seal(secret, keyID)
}

// ErrUnsealable means no configured master key opens a stored secret: the
// key that sealed it is not configured, or the record is corrupt.
var ErrUnsealable = errors.New("sealed secret cannot be opened")

// sealedFingerprint returns the fingerprint of the master key that sealed
// a secret, or "" when the sealed form is not one this package writes.
func sealedFingerprint(sealed string) string {
	rest, ok := strings.CutPrefix(sealed, sealedPrefix)
	if !ok {
		return ""
	}
	fingerprint, _, _ := strings.Cut(rest, ".")
	return fingerprint
}

// open decrypts a sealed secret of keyID.
func (s *sealer) open(sealed, keyID string) (string, error) {
	rest, ok := strings.CutPrefix(sealed, sealedPrefix)
	if !ok {
		return "", fmt.Errorf("%w: unknown format", ErrUnsealable)
	}
	fingerprint, payload, ok := strings.Cut(rest, ".")
	if !ok {
		return "", fmt.Errorf("%w: unknown format", ErrUnsealable)
	}
	buf, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return "", fmt.Errorf("%w: bad encoding", ErrUnsealable)
	}
	known := false
	for i, fp := range s.fingerprints {
		if fp != fingerprint {
			continue
		}
		known = true
		aead := s.aeads[i]
		if len(buf) < aead.NonceSize()+aead.Overhead() {
			break
		}
		plain, err := aead.Open(nil, buf[:aead.NonceSize()], buf[aead.NonceSize():], []byte(keyID))
		if err == nil {
			return string(plain), nil
		}
	}
	if !known {
		return "", fmt.Errorf("%w: sealed under master key %s, which is not configured", ErrUnsealable, fingerprint)
	}
	return "", fmt.Errorf("%w: authentication failed (wrong key ID or corrupted)", ErrUnsealable)
}

// SealSecret seals an API secret of access key keyID under masterKey as an
// export carries it (sealed_secret), for tools that write exports from
// another system's credentials.
//
// The sealer of the last master key is kept: a tool sealing a million
// secrets under one key would otherwise expand an AES key schedule and
// build a GCM per secret (most of the cost of writing an export).
func SealSecret(masterKey []byte, keyID, secret string) (string, error) {
	last := lastSealSecret.Load()
	if last == nil || !bytes.Equal(last.key, masterKey) {
		s, err := newSealer([][]byte{masterKey}, rand.Reader)
		if err != nil {
			return "", err
		}
		last = &keyedSealer{key: bytes.Clone(masterKey), sealer: s}
		lastSealSecret.Store(last)
	}
	return last.sealer.seal(secret, keyID)
}

// keyedSealer is a sealer and the one master key it seals with.
type keyedSealer struct {
	key    []byte
	sealer *sealer
}

// lastSealSecret is SealSecret's sealer for the master key of its last
// call: one, so the cache holds no more keys than a caller passes in.
var lastSealSecret atomic.Pointer[keyedSealer]
