package signature

// TEMPORARY: declarations the signature work replaces with real code.
// Deleted by the signature implementation; nothing here is ever shipped.

import "net/http"

// String is the scheme's name in configuration: jdcloud2, jdcloud3, sigv4, aliyun.
func (s Scheme) String() string { panic("unimplemented") }

// Challenge is the value of WWW-Authenticate in a 401 answer (e.g. JDCLOUD2-HMAC-SHA256).
func (s Scheme) Challenge() string { panic("unimplemented") }

// ParseScheme reads a scheme name of the configuration.
func ParseScheme(name string) (Scheme, error) { panic("unimplemented") }

// Parse finds the credentials of one of the allowed schemes in h and fills c.
func Parse(h http.Header, allowed Schemes, c *Credentials) error { panic("unimplemented") }

// Secret is an API secret with the signing keys derived from it cached
// (per scheme, date, region and service), safe for concurrent use.
type Secret struct{}

// NewSecret wraps an API secret.
func NewSecret(secret string) *Secret { panic("unimplemented") }

// Verify reports, in constant time, whether c.Signature signs r with secret.
// payloadHash is the lower-case hex SHA-256 of the body (or c.PayloadHash
// when the client sent one). For JD Cloud schemes it retries once with the
// path and query exactly as sent when the documented canonical form fails.
func Verify(r *Request, c *Credentials, secret *Secret, payloadHash string) bool {
	panic("unimplemented")
}

// Option adjusts Sign.
type Option func(*signOptions)

type signOptions struct{}

// Sign signs req in place for scheme with the API key and secret (setting
// the date, nonce, content hash and Authorization headers).
func Sign(req *http.Request, scheme Scheme, apiKey, apiSecret string, opts ...Option) error {
	panic("unimplemented")
}
