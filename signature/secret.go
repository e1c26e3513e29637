package signature

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"unique"
)

// Secret is an API secret with the signing keys derived from it cached
// (per scheme, date, region and service), safe for concurrent use.
type Secret struct {
	secret string
	// The last two derived keys: nearly every request reuses one, and two
	// cover the hours around midnight UTC and a key used with two schemes.
	keys [2]atomic.Pointer[scopedKey]
	next atomic.Uint32 // the slot the next derived key replaces
	// The secret itself as an HMAC key (Alibaba's scheme), made on first use.
	plain atomic.Pointer[hmacKey]
}

// NewSecret wraps an API secret.
func NewSecret(secret string) *Secret { return &Secret{secret: secret} }

// scopedKey is a signing key derived for one credential scope. It is kept
// small (docs/operations.md allows 1 KiB per cached key, this included): the date
// inline, region and service interned (keys share them).
type scopedKey struct {
	scheme          Scheme
	date            [8]byte // YYYYMMDD
	region, service unique.Handle[string]
	hmacKey
}

// chainedKey returns the signing key of the HMAC chain shared by JD Cloud
// and AWS: HMAC(HMAC(HMAC(HMAC(prefix+secret, date), region), service),
// terminator). Deriving costs four HMACs, so the last key is kept and
// recomputed only for a new scope (in practice once a day).
func (s *Secret) chainedKey(scheme Scheme, prefix, date, region, service, terminator string) *hmacKey {
	for i := range s.keys {
		if k := s.keys[i].Load(); k != nil && k.scheme == scheme && string(k.date[:]) == date && k.region.Value() == region && k.service.Value() == service {
			return &k.hmacKey
		}
	}
	key := hmacSHA256([]byte(prefix+s.secret), date)
	key = hmacSHA256(key, region)
	key = hmacSHA256(key, service)
	key = hmacSHA256(key, terminator)
	// unique.Make copies: the arguments point into request headers.
	k := &scopedKey{scheme: scheme, region: unique.Make(region), service: unique.Make(service)}
	copy(k.date[:], date) // a date of another length never matches, so is derived anew
	k.hmacKey.init(key)
	s.keys[s.next.Add(1)%uint32(len(s.keys))].Store(k)
	return &k.hmacKey
}

// plainKey is the secret itself as an HMAC key.
func (s *Secret) plainKey() *hmacKey {
	if k := s.plain.Load(); k != nil {
		return k
	}
	k := new(hmacKey)
	k.init([]byte(s.secret))
	s.plain.Store(k)
	return k
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// hmacKey is an HMAC-SHA256 key kept as the SHA-256 states after its inner
// and outer pads: a MAC then costs no hmac.New, no allocation and two
// compression rounds less.
type hmacKey struct {
	inner, outer [sha256StateSize]byte // marshalled sha256 states
}

// sha256StateSize is the length of a marshalled SHA-256 state: a magic,
// eight words, the pending block and the length (crypto/sha256).
const sha256StateSize = 4 + 8*4 + sha256.BlockSize + 8

func (k *hmacKey) init(key []byte) {
	if len(key) > sha256.BlockSize {
		sum := sha256.Sum256(key)
		key = sum[:]
	}
	var ipad, opad [sha256.BlockSize]byte
	copy(ipad[:], key)
	copy(opad[:], key)
	for i := range ipad {
		ipad[i] ^= 0x36
		opad[i] ^= 0x5c
	}
	padState(&k.inner, ipad[:])
	padState(&k.outer, opad[:])
}

func padState(dst *[sha256StateSize]byte, pad []byte) {
	d := sha256.New()
	d.Write(pad)
	state, err := d.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil || len(state) != len(dst) {
		// Cannot happen: sha256 digests marshal to this size since Go 1.11.
		panic(fmt.Sprintf("signature: sha256 state of %d bytes: %v", len(state), err))
	}
	copy(dst[:], state)
}

// sum returns the HMAC of msg, computed with sc's digest.
func (k *hmacKey) sum(msg []byte, sc *scratch) (mac [sha256.Size]byte) {
	d, u := sc.sha, sc.shaState
	if u.UnmarshalBinary(k.inner[:]) != nil {
		panic("signature: sha256 state does not restore")
	}
	d.Write(msg)
	inner := d.Sum(sc.digest[:0])
	if u.UnmarshalBinary(k.outer[:]) != nil {
		panic("signature: sha256 state does not restore")
	}
	d.Write(inner)
	copy(mac[:], d.Sum(inner[:0]))
	return mac
}

// equalMAC reports whether two MACs are equal, in constant time: four
// 64-bit XORs folded with OR, no branch until the one on the result. It
// replaces hmac.Equal's byte loop (crypto/subtle), a quarter of the loads
// and no slice headers, on every request.
func equalMAC(a, b *[sha256.Size]byte) bool {
	var diff uint64
	for i := 0; i < sha256.Size; i += 8 {
		diff |= binary.LittleEndian.Uint64(a[i:]) ^ binary.LittleEndian.Uint64(b[i:])
	}
	return diff == 0
}
