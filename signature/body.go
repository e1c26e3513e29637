package signature

import (
	"crypto/md5"
	"crypto/sha256"
	"crypto/subtle"
	"hash"
	"strings"
)

// emptySHA256 is the payload hash of a request without a body.
const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// BodyCover says what a verifier must do with a request's body before
// Verify, as the scheme of its credentials covers it.
type BodyCover uint8

const (
	// BodyCovered: nothing is left to check (no body, or one whose
	// declared hash was checked against the empty body).
	BodyCovered BodyCover = iota
	// BodyHashed: the signature covers the SHA-256 of the body, which the
	// verifier computes (reading the body whole) and passes to Verify as
	// the lower-case hex payloadHash.
	BodyHashed
	// BodyDigest: the body must hash to a signed digest (NewHash, Want),
	// checked as it streams.
	BodyDigest
	// BodyForm: the signature covers the parameters of a form body, which
	// the verifier reads whole into Request.Form; Matches checks it.
	BodyForm
	// BodyUnsigned: no signature covers the body; a verifier accepts it
	// only when the route allows unsigned payloads.
	BodyUnsigned
)

// BodyRule is how the signature of a request covers its body
// (Credentials.BodyRule).
type BodyRule struct {
	Cover BodyCover
	// PayloadHash is Verify's payloadHash, but with BodyHashed (where it
	// is the hash of the body the verifier read).
	PayloadHash string
	// Want is the digest the body must have, in its first NewHash().Size()
	// bytes (BodyDigest, and BodyForm with a digest).
	Want   [sha256.Size]byte
	digest digest
}

// digest is the hash function of a signed digest of the body.
type digest uint8

const (
	noDigest digest = iota
	sha256Digest
	md5Digest
)

// NewHash returns a hash of the kind of Want; nil when the rule has no
// digest.
func (b *BodyRule) NewHash() hash.Hash {
	switch b.digest {
	case sha256Digest:
		return sha256.New()
	case md5Digest:
		return md5.New()
	}
	return nil
}

// Matches reports, in constant time, whether body has the rule's digest;
// true when the rule has none.
func (b *BodyRule) Matches(body []byte) bool {
	var sum [sha256.Size]byte
	var n int
	switch b.digest {
	case noDigest:
		return true
	case sha256Digest:
		sum, n = sha256.Sum256(body), sha256.Size
	case md5Digest:
		md5Sum := md5.Sum(body)
		n = copy(sum[:], md5Sum[:])
	}
	return subtle.ConstantTimeCompare(sum[:n], b.Want[:n]) == 1
}

// BodyRule is how c's signature covers the body of its request (empty: the
// request has none). false when what c declares about the body cannot be
// right (a content hash that is no hash, or not the empty body's): the
// signature cannot be verified.
func (c *Credentials) BodyRule(empty bool) (BodyRule, bool) {
	impl := implOf(c.Scheme)
	if impl == nil {
		return BodyRule{}, false
	}
	return impl.bodyRule(c, empty)
}

// payloadHashRule is the body rule of the schemes that sign a payload hash:
// the content-sha256 header as sent (c.PayloadHash; UNSIGNED-PAYLOAD leaves
// the body unsigned), else the SHA-256 of the body the verifier reads.
func payloadHashRule(c *Credentials, empty bool) (BodyRule, bool) {
	declared := c.PayloadHash
	switch {
	case declared == "" && empty:
		return BodyRule{Cover: BodyCovered, PayloadHash: emptySHA256}, true
	case declared == "":
		return BodyRule{Cover: BodyHashed}, true
	case declared == UnsignedPayload:
		return BodyRule{Cover: BodyUnsigned, PayloadHash: declared}, true
	}
	rule := BodyRule{Cover: BodyDigest, PayloadHash: declared, digest: sha256Digest}
	if !decodeHex(rule.Want[:], declared) {
		return BodyRule{}, false // neither a SHA-256 nor UNSIGNED-PAYLOAD: nothing to verify
	}
	switch {
	case !empty:
		return rule, true
	case strings.EqualFold(declared, emptySHA256):
		return BodyRule{Cover: BodyCovered, PayloadHash: declared}, true
	}
	return BodyRule{}, false
}
