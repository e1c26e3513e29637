package signature

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// profile is what a scheme tells about itself besides its behaviour: its
// name, its challenge and the headers a denial or hide_credentials names.
// Each scheme's file fills its own.
type profile struct {
	name      string // in configuration, e.g. jdcloud2
	challenge string // WWW-Authenticate of a 401 answer
	// dateHeader and nonceHeader are the lower-case headers a
	// missing_date or missing_nonce answer names; "" when the scheme has
	// none (the message then stays JD Cloud's).
	dateHeader, nonceHeader string
	// headerPrefix starts the canonical name of every header of the
	// scheme's credentials (hide_credentials removes them).
	headerPrefix string
	// errorMessageHeader repeats a denial's message in a header the
	// scheme's clients read (Alibaba's X-Ca-Error-Message); "" when none.
	errorMessageHeader string
	// scoped: the credentials name a region and service a route may pin.
	scoped bool
}

// scheme is one signature scheme's behaviour. Each lives in its own file and
// registers itself from init; a scheme that is not registered is never found
// by Parse (its requests have no credentials) and cannot sign.
//
// A new scheme needs a constant in api.go and its own file, nothing else.
// The pieces it may reuse: authorization, authParams and credentialScope
// (or scopedAuth whole) for an
// `<ALG> Credential=…, SignedHeaders=…, Signature=…` header;
// parseCompactTime; Secret.chainedKey for an HMAC key chain ("AWS4" and
// "aws4_request" for SigV4); hmacKey for a MAC without allocation;
// appendNormalized, appendHeaderValue and headerValues for canonical forms;
// getScratch/putScratch for buffers; hashBody for signing;
// payloadHashRule for a body covered by a content-sha256 header. It fills
// the unexported fields of Credentials its verify needs (signature bytes,
// scope).
type scheme interface {
	// parse fills c from h, or returns ErrMissingCredentials when h holds
	// no credentials of this scheme (then the next scheme is tried).
	parse(h http.Header, c *Credentials) error
	// sniff reports whether h shows this scheme's credentials, even ones
	// parse refuses.
	sniff(h http.Header) bool
	// bodyRule is how c's signature covers the body (see BodyRule); false
	// when what c declares about the body cannot be right.
	bodyRule(c *Credentials, empty bool) (BodyRule, bool)
	// verify reports whether c.Signature signs r (constant time), working
	// in sc's buffers.
	verify(r *Request, c *Credentials, secret *Secret, payloadHash string, sc *scratch) bool
	// forms is the canonical requests and strings to sign verify hashes
	// for r and c, in the order it tries them (see Forms).
	forms(r *Request, c *Credentials, payloadHash string) []Form
	// sign signs req in place.
	sign(req *http.Request, apiKey, apiSecret string, o *signOptions) error
}

// registry is the one list of schemes, indexed by Scheme (their order).
var registry [NumSchemes]struct {
	profile
	impl scheme
}

// register makes impl, described by p, the behaviour of s; called from the
// scheme's init.
func register(s Scheme, p profile, impl scheme) {
	if registry[s].impl != nil {
		panic("signature: scheme registered twice: " + p.name)
	}
	registry[s].profile, registry[s].impl = p, impl
}

// implOf is s's behaviour, nil for a scheme this build does not have.
func implOf(s Scheme) scheme {
	if int(s) >= len(registry) {
		return nil
	}
	return registry[s].impl
}

// noProfile is the profile of a scheme this build does not have.
var noProfile profile

// profileOf is s's profile.
func profileOf(s Scheme) *profile {
	if implOf(s) == nil {
		return &noProfile
	}
	return &registry[s].profile
}

// String is the scheme's name in configuration: jdcloud2, jdcloud3, sigv4, aliyun.
func (s Scheme) String() string {
	if name := profileOf(s).name; name != "" {
		return name
	}
	return fmt.Sprintf("scheme(%d)", uint8(s))
}

// Challenge is the value of WWW-Authenticate in a 401 answer (e.g. JDCLOUD2-HMAC-SHA256).
func (s Scheme) Challenge() string { return profileOf(s).challenge }

// DateHeader is the lower-case header of the scheme's request date (e.g.
// x-amz-date), for the message of a missing_date answer.
func (s Scheme) DateHeader() string { return profileOf(s).dateHeader }

// NonceHeader is the lower-case header of the scheme's nonce (e.g.
// x-ca-nonce), "" for a scheme without one (SigV4).
func (s Scheme) NonceHeader() string { return profileOf(s).nonceHeader }

// ErrorMessageHeader is the header in which the scheme's clients read the
// message of a denial (Alibaba's X-Ca-Error-Message), "" when there is none.
func (s Scheme) ErrorMessageHeader() string { return profileOf(s).errorMessageHeader }

// schemeNames are the names of the schemes in configuration, in their order.
func schemeNames() []string {
	var names []string
	for s := Scheme(1); int(s) < len(registry); s++ {
		if implOf(s) != nil {
			names = append(names, s.String())
		}
	}
	return names
}

// ExpectedSchemes lists the names for a message: "jdcloud2, jdcloud3, sigv4 or aliyun".
func ExpectedSchemes() string {
	names := schemeNames()
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// ParseScheme reads a scheme name of the configuration.
func ParseScheme(name string) (Scheme, error) {
	for s := Scheme(1); int(s) < len(registry); s++ {
		if implOf(s) != nil && registry[s].name == name {
			return s, nil
		}
	}
	return 0, fmt.Errorf("unknown scheme %q, expected %s", name, ExpectedSchemes())
}

// First is the first scheme of s in their order, 0 when s is empty.
func (s Schemes) First() Scheme {
	for scheme := Scheme(1); int(scheme) < NumSchemes; scheme++ {
		if s.Has(scheme) {
			return scheme
		}
	}
	return 0
}

// Sniff guesses the scheme of credentials Parse refused, for the challenge
// and the message of the answer: the first of the allowed schemes whose
// credentials h shows (the first word of Authorization, or Alibaba's X-Ca-*
// headers). 0 when none shows.
func Sniff(h http.Header, allowed Schemes) Scheme {
	for s := Scheme(1); int(s) < len(registry); s++ {
		if allowed.Has(s) && implOf(s) != nil && registry[s].impl.sniff(h) {
			return s
		}
	}
	return 0
}

// IsCredentialHeader reports whether the header named name (in any case)
// carries credentials of some scheme: Authorization, or a scheme's own
// headers (x-jdcloud-*, x-amz-*, x-ca-*).
func IsCredentialHeader(name string) bool {
	if name == "Authorization" {
		return true
	}
	for s := Scheme(1); int(s) < len(registry); s++ {
		if prefix := registry[s].headerPrefix; prefix != "" && hasPrefixFold(name, prefix) {
			return true
		}
	}
	return false
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// InScope reports whether c's credential scope names region and service
// ("" = any). A scheme without a scope (Alibaba's) is in every one.
func (c *Credentials) InScope(region, service string) bool {
	if !profileOf(c.Scheme).scoped {
		return true
	}
	return (region == "" || c.Region == region) && (service == "" || c.Service == service)
}

// Parse finds the credentials of one of the allowed schemes in h and fills
// c. Schemes are tried in their order; the first that finds its
// Authorization (or equivalent) header decides the result. The strings of c
// point into h's values, so a well-formed request costs no allocation.
func Parse(h http.Header, allowed Schemes, c *Credentials) error {
	for s := Scheme(1); int(s) < len(registry); s++ {
		if !allowed.Has(s) || registry[s].impl == nil {
			continue
		}
		if err := registry[s].impl.parse(h, c); err != ErrMissingCredentials {
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
	impl := implOf(c.Scheme)
	if secret == nil || impl == nil {
		return false
	}
	sc := getScratch()
	defer putScratch(sc)
	return impl.verify(r, c, secret, payloadHash, sc)
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
	signed          *Form // WithSignedForm's
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

// WithSignedForm has Sign write to f the canonical request and string to
// sign it signed (for a caller's diagnostics, e.g. curl --verbose).
func WithSignedForm(f *Form) Option { return func(o *signOptions) { o.signed = f } }

// Sign signs req in place for scheme with the API key and secret (setting
// the date, nonce, content hash and Authorization headers). The body is read
// to hash it and put back (through GetBody when the request has one).
func Sign(req *http.Request, scheme Scheme, apiKey, apiSecret string, opts ...Option) error {
	impl := implOf(scheme)
	if impl == nil {
		return fmt.Errorf("%w: %s", ErrUnsupportedScheme, scheme)
	}
	o := signOptions{region: DefaultRegion, service: DefaultService}
	for _, opt := range opts {
		opt(&o)
	}
	if o.now.IsZero() {
		o.now = time.Now()
	}
	return impl.sign(req, apiKey, apiSecret, &o)
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
