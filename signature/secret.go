package signature

import (
	"crypto/hmac"
	"crypto/sha256"
	"sync/atomic"
)

// Secret is an API secret with the signing keys derived from it cached
// (per scheme, date, region and service), safe for concurrent use.
type Secret struct {
	secret string
	last   atomic.Pointer[scopedKey] // the last derived key; nearly every request reuses it
}

// NewSecret wraps an API secret.
func NewSecret(secret string) *Secret { return &Secret{secret: secret} }

// scopedKey is a signing key derived for one credential scope.
type scopedKey struct {
	scheme                Scheme
	date, region, service string
	hmacKey
}

// chainedKey returns the signing key of the HMAC chain shared by JD Cloud
// and AWS: HMAC(HMAC(HMAC(HMAC(prefix+secret, date), region), service),
// terminator). Deriving costs four HMACs, so the last key is kept and
// recomputed only when the scope changes (in practice once a day).
func (s *Secret) chainedKey(scheme Scheme, prefix, date, region, service, terminator string) *hmacKey {
	if k := s.last.Load(); k != nil && k.scheme == scheme && k.date == date && k.region == region && k.service == service {
		return &k.hmacKey
	}
	key := hmacSHA256([]byte(prefix+s.secret), date)
	key = hmacSHA256(key, region)
	key = hmacSHA256(key, service)
	key = hmacSHA256(key, terminator)
	k := &scopedKey{
		scheme: scheme,
		// Copies: the arguments point into request headers.
		date: string([]byte(date)), region: string([]byte(region)), service: string([]byte(service)),
	}
	k.hmacKey.init(key)
	s.last.Store(k)
	return &k.hmacKey
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// hmacKey is an HMAC-SHA256 key with its inner and outer pads computed,
// so a MAC is two sha256.Sum256 calls over a caller's buffer: no hmac.New,
// no allocation.
type hmacKey struct {
	ipad, opad [sha256.BlockSize]byte
}

func (k *hmacKey) init(key []byte) {
	if len(key) > sha256.BlockSize {
		sum := sha256.Sum256(key)
		key = sum[:]
	}
	copy(k.ipad[:], key)
	copy(k.opad[:], key)
	for i := range k.ipad {
		k.ipad[i] ^= 0x36
		k.opad[i] ^= 0x5c
	}
}

// macPrefix is the room hmacKey.sum needs before the message in its buffer.
const macPrefix = sha256.BlockSize

// sum returns the HMAC of buf[macPrefix:]; buf[:macPrefix] is scratch space
// the caller reserved (see macPrefix) and is overwritten.
func (k *hmacKey) sum(buf []byte) [sha256.Size]byte {
	copy(buf, k.ipad[:])
	inner := sha256.Sum256(buf)
	var outer [sha256.BlockSize + sha256.Size]byte
	copy(outer[:], k.opad[:])
	copy(outer[sha256.BlockSize:], inner[:])
	return sha256.Sum256(outer[:])
}
