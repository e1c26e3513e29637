package replay

import (
	"math/bits"
	"unsafe"
)

// nonceHashKey keys the hashes that place a nonce in LocalNonces: four
// words for wyhash and one that sets the bucket's hash apart from the
// fingerprint's, as two maphash seeds would. Unlike hash/maphash, whose
// values differ from one process to the next whatever the seed, these
// hashes depend on the key alone: a saved table (WriteTo) keeps its meaning
// in the next process.
type nonceHashKey [5]uint64

// spreadSeed is the seed of the hash that picks a nonce's bucket, given
// its key's hash (the fingerprint's seed).
func (k *nonceHashKey) spreadSeed(keyHash uint64) uint64 { return keyHash ^ k[4] }

// hashString hashes s from seed with wyhash, the construction Go's runtime
// uses for its maps where the CPU has no AES instructions: with a secret
// key, request senders cannot aim nonces at one bucket.
func (k *nonceHashKey) hashString(seed uint64, s string) uint64 {
	var a, b uint64
	n := uint64(len(s))
	seed ^= k[0]
	switch {
	case n == 0:
		return seed
	case n < 4:
		a = uint64(s[0]) | uint64(s[n>>1])<<8 | uint64(s[n-1])<<16
	case n == 4:
		a = read4(s, 0)
		b = a
	case n < 8:
		a, b = read4(s, 0), read4(s, n-4)
	case n == 8:
		a = read8(s, 0)
		b = a
	case n <= 16:
		a, b = read8(s, 0), read8(s, n-8)
	default:
		p, l := uint64(0), n
		if l > 48 {
			seed1, seed2 := seed, seed
			for ; l > 48; l -= 48 {
				seed = mix(read8(s, p)^k[1], read8(s, p+8)^seed)
				seed1 = mix(read8(s, p+16)^k[2], read8(s, p+24)^seed1)
				seed2 = mix(read8(s, p+32)^k[3], read8(s, p+40)^seed2)
				p += 48
			}
			seed ^= seed1 ^ seed2
		}
		for ; l > 16; l -= 16 {
			seed = mix(read8(s, p)^k[1], read8(s, p+8)^seed)
			p += 16
		}
		a, b = read8(s, p+l-16), read8(s, p+l-8)
	}
	return mix(wyhashM5^n, mix(a^k[1], b^seed))
}

// wyhashM5 is the constant Go's runtime mixes a length with.
const wyhashM5 = 0x1d8e4e27c47d124f

func mix(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

// read8 and read4 load little-endian words of s at i, which the callers
// keep within s: one load each, without bounds checks.
func read8(s string, i uint64) uint64 {
	return *(*uint64)(unsafe.Add(unsafe.Pointer(unsafe.StringData(s)), i))
}

func read4(s string, i uint64) uint64 {
	return uint64(*(*uint32)(unsafe.Add(unsafe.Pointer(unsafe.StringData(s)), i)))
}
