package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
)

// cursorCheckSize is how many bytes of a digest a list cursor carries, so
// that a cursor this API did not give out is refused rather than read as a
// position (about one guess in four billion passes).
const cursorCheckSize = 4

// encodeCursor makes the next_cursor of a list from the store's position:
// base64url of the position and a check of it. Any node of a store reads
// it: the check needs no key.
func encodeCursor(position string) string {
	if position == "" {
		return ""
	}
	check := cursorCheck(position)
	return base64.RawURLEncoding.EncodeToString(append([]byte(position), check[:]...))
}

// decodeCursor returns the store's position of a ?cursor= value; ok is
// false when encodeCursor did not make it.
func decodeCursor(cursor string) (position string, ok bool) {
	if cursor == "" {
		return "", true
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(cursor)
	if err != nil || len(raw) <= cursorCheckSize {
		return "", false
	}
	position = string(raw[:len(raw)-cursorCheckSize])
	check := cursorCheck(position)
	return position, subtle.ConstantTimeCompare(check[:], raw[len(raw)-cursorCheckSize:]) == 1
}

func cursorCheck(position string) [cursorCheckSize]byte {
	h := sha256.New()
	h.Write([]byte("caddy-access-auth list cursor\x00"))
	h.Write([]byte(position))
	return [cursorCheckSize]byte(h.Sum(nil))
}
