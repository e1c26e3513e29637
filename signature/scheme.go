package signature

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// schemeNames are the scheme identities: the configuration name and the
// WWW-Authenticate challenge of a 401 answer. Behaviour lives in the
// scheme's own file, which registers it (see register).
var schemeNames = [...]struct{ name, challenge string }{
	JDCloud2: {"jdcloud2", "JDCLOUD2-HMAC-SHA256"},
	JDCloud3: {"jdcloud3", "JDCLOUD3-HMAC-SHA256"},
	SigV4:    {"sigv4", "AWS4-HMAC-SHA256"},
	Aliyun:   {"aliyun", "X-Ca-Signature"},
}

// String is the scheme's name in configuration: jdcloud2, jdcloud3, sigv4, aliyun.
func (s Scheme) String() string {
	if s == 0 || int(s) >= len(schemeNames) {
		return fmt.Sprintf("scheme(%d)", uint8(s))
	}
	return schemeNames[s].name
}

// Challenge is the value of WWW-Authenticate in a 401 answer (e.g. JDCLOUD2-HMAC-SHA256).
func (s Scheme) Challenge() string {
	if s == 0 || int(s) >= len(schemeNames) {
		return ""
	}
	return schemeNames[s].challenge
}

// ParseScheme reads a scheme name of the configuration.
func ParseScheme(name string) (Scheme, error) {
	for s := JDCloud2; int(s) < len(schemeNames); s++ {
		if schemeNames[s].name == name {
			return s, nil
		}
	}
	return 0, fmt.Errorf("unknown signature scheme %q (expected jdcloud2, jdcloud3, sigv4 or aliyun)", name)
}

// scheme is one signature scheme's behaviour. Each lives in its own file and
// registers itself from init; a scheme that is not registered is never found
// by Parse (its requests have no credentials) and cannot sign.
//
// A new scheme (sigv4.go, aliyun.go) needs nothing outside its file. The
// pieces it may reuse: authorization, authParams and credentialScope for an
// `<ALG> Credential=…, SignedHeaders=…, Signature=…` header;
// parseCompactTime; Secret.chainedKey for an HMAC key chain ("AWS4" and
// "aws4_request" for SigV4); hmacKey for a MAC without allocation;
// appendNormalized, appendHeaderValue and headerValues for canonical forms;
// getScratch/putScratch for buffers; hashBody for signing. It fills the
// unexported fields of Credentials its verify needs (signature bytes, scope).
type scheme interface {
	// parse fills c from h, or returns ErrMissingCredentials when h holds
	// no credentials of this scheme (then the next scheme is tried).
	parse(h http.Header, c *Credentials) error
	// verify reports whether c.Signature signs r (constant time).
	verify(r *Request, c *Credentials, secret *Secret, payloadHash string) bool
	// sign signs req in place.
	sign(req *http.Request, apiKey, apiSecret string, o *signOptions) error
}

var registered [len(schemeNames)]scheme

// register makes impl the behaviour of s; called from the scheme's init.
func register(s Scheme, impl scheme) {
	if registered[s] != nil {
		panic("signature: scheme registered twice: " + s.String())
	}
	registered[s] = impl
}

// Parse finds the credentials of one of the allowed schemes in h and fills
// c. Schemes are tried in their order; the first that finds its
// Authorization (or equivalent) header decides the result. The strings of c
// point into h's values, so a well-formed request costs no allocation.
func Parse(h http.Header, allowed Schemes, c *Credentials) error {
	for s := JDCloud2; int(s) < len(registered); s++ {
		if !allowed.Has(s) || registered[s] == nil {
			continue
		}
		if err := registered[s].parse(h, c); err != ErrMissingCredentials {
			return err
		}
	}
	return ErrMissingCredentials
}

// Verify reports, in constant time, whether c.Signature signs r with secret.
// c is what Parse read from r.Header: the headers Parse looked up (the
// date, nonce and content hash) are taken from c, not looked up again.
// payloadHash is the lower-case hex SHA-256 of the body (or c.PayloadHash
// when the client sent one). For JD Cloud schemes it retries once with the
// path and query exactly as sent when the documented canonical form fails.
// Verify has no clock: checking c.Date against the skew is the caller's.
func Verify(r *Request, c *Credentials, secret *Secret, payloadHash string) bool {
	if secret == nil || c.Scheme == 0 || int(c.Scheme) >= len(registered) || registered[c.Scheme] == nil {
		return false
	}
	return registered[c.Scheme].verify(r, c, secret, payloadHash)
}

// ErrUnsupportedScheme is returned by Sign for a scheme this build cannot sign.
var ErrUnsupportedScheme = errors.New("signature: scheme cannot sign")

// DefaultRegion and DefaultService are the credential scope Sign uses
// unless WithRegion or WithService says otherwise. cn-north-1 is JD Cloud's
// default region in its SDKs; a gateway without `region`/`service`
// configured accepts any scope.
const (
	DefaultRegion  = "cn-north-1"
	DefaultService = "apigateway"
)

// UnsignedPayload is the content hash of a request whose body is not signed.
const UnsignedPayload = "UNSIGNED-PAYLOAD"

// Option adjusts Sign.
type Option func(*signOptions)

type signOptions struct {
	now             time.Time
	nonce           string
	region, service string
	contentSHA256   bool
	unsignedPayload bool
}

// WithTime signs as of t instead of now.
func WithTime(t time.Time) Option { return func(o *signOptions) { o.now = t } }

// WithNonce uses nonce instead of a random UUID.
func WithNonce(nonce string) Option { return func(o *signOptions) { o.nonce = nonce } }

// WithRegion sets the region of the credential scope (default DefaultRegion).
func WithRegion(region string) Option { return func(o *signOptions) { o.region = region } }

// WithService sets the service of the credential scope (default DefaultService).
func WithService(service string) Option { return func(o *signOptions) { o.service = service } }

// WithContentSHA256 sends the body's hash in the scheme's content-sha256
// header (and signs it), so a gateway can stream the body instead of
// buffering it.
func WithContentSHA256() Option { return func(o *signOptions) { o.contentSHA256 = true } }

// WithUnsignedPayload leaves the body out of the signature (content-sha256
// header UNSIGNED-PAYLOAD); gateways accept it only with
// allow_unsigned_payload.
func WithUnsignedPayload() Option { return func(o *signOptions) { o.unsignedPayload = true } }

// Sign signs req in place for scheme with the API key and secret (setting
// the date, nonce, content hash and Authorization headers). The body is read
// to hash it and put back (through GetBody when the request has one).
func Sign(req *http.Request, scheme Scheme, apiKey, apiSecret string, opts ...Option) error {
	if int(scheme) >= len(registered) || registered[scheme] == nil {
		return fmt.Errorf("%w: %s", ErrUnsupportedScheme, scheme)
	}
	o := signOptions{region: DefaultRegion, service: DefaultService}
	for _, opt := range opts {
		opt(&o)
	}
	if o.now.IsZero() {
		o.now = time.Now()
	}
	return registered[scheme].sign(req, apiKey, apiSecret, &o)
}

// hashBody returns the SHA-256 of req's body and leaves the body readable
// again (through GetBody when the request has one, else buffered).
func hashBody(req *http.Request) ([sha256.Size]byte, error) {
	h := sha256.New()
	switch {
	case req.Body == nil || req.Body == http.NoBody:
	case req.GetBody != nil:
		body, err := req.GetBody()
		if err != nil {
			return [sha256.Size]byte{}, err
		}
		_, err = io.Copy(h, body)
		body.Close()
		if err != nil {
			return [sha256.Size]byte{}, err
		}
	default:
		data, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return [sha256.Size]byte{}, err
		}
		h.Write(data)
		req.Body = io.NopCloser(bytes.NewReader(data))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum, nil
}
