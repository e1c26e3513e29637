// Package signature signs and verifies API requests with the schemes of an
// API gateway: JD Cloud's JDCLOUD2/JDCLOUD3, AWS Signature V4 and Alibaba
// Cloud's app signature. Gateways verify with Parse and Verify; API callers
// sign with Sign. It does not import Caddy.
package signature

import (
	"errors"
	"net/http"
	"time"
)

// Scheme is a signature scheme.
type Scheme uint8

// The schemes, in the order they are tried. Each has its own file, which
// registers it.
const (
	JDCloud2 Scheme = 1 + iota
	JDCloud3
	SigV4
	Aliyun
	endOfSchemes
)

// NumSchemes bounds the Scheme values: an array indexed by Scheme has this
// length (index 0, no scheme, included).
const NumSchemes = int(endOfSchemes)

// DefaultScheme is the scheme a client signs with unless told otherwise.
const DefaultScheme = JDCloud2

// Schemes is a set of schemes.
type Schemes uint8

// AllSchemes is every scheme (the default of the access_auth handler).
const AllSchemes = Schemes(1<<endOfSchemes - 2)

// Has reports whether s holds scheme.
func (s Schemes) Has(scheme Scheme) bool { return s&(1<<scheme) != 0 }

// With returns s with scheme added.
func (s Schemes) With(scheme Scheme) Schemes { return s | 1<<scheme }

// Errors of Parse; each maps to one reason of the request check.
var (
	ErrMissingCredentials   = errors.New("lack of header authorization")
	ErrMalformedCredentials = errors.New("lack of credential in the header authorization")
	ErrMissingDate          = errors.New("lack of date header")
	ErrMissingSignedHeaders = errors.New("lack of header signedHeaders")
	ErrMissingNonce         = errors.New("lack of nonce header")
)

// Request is the request as the client sent it (before any rewrite).
type Request struct {
	Method   string
	Host     string
	Path     string // the escaped path as sent (URL.EscapedPath of the original request)
	RawQuery string // as sent
	Header   http.Header
	// Form is the body of an application/x-www-form-urlencoded request
	// whose parameters the scheme signs (Credentials.SignsForm), nil
	// otherwise.
	Form []byte
}

// Credentials is what Parse reads from a request. Strings point into the
// request's headers; reuse one value per request to avoid allocation.
type Credentials struct {
	Scheme      Scheme
	APIKey      string
	Date        time.Time
	Nonce       string // as the signature covers it (its canonical form); "" when the scheme has none
	Region      string
	Service     string
	Signature   string
	PayloadHash string // the content-sha256 header as sent, "" when absent
	// ContentMD5 is the Content-MD5 header (base64) of Alibaba's scheme,
	// which signs it instead of the body: the body must have that MD5.
	ContentMD5 string
	// SignsForm reports that the signature covers the parameters of a form
	// body (Alibaba's scheme, Content-Type application/x-www-form-urlencoded):
	// Verify needs the body as Request.Form.
	SignsForm bool

	signedHeaders string // as sent, e.g. "host;x-jdcloud-date;x-jdcloud-nonce"
	scope         string // the credential after the key: date/region/service/terminator
	dateValue     string // the date header as sent, part of the string to sign
	signature     [32]byte
	// looked are the headers Parse looked up (the date, content hash and
	// nonce): canonical headers take their values from here instead of
	// looking them up again.
	looked [3]lookedHeader
}

// lookedHeader is a header Parse looked up: its lower-case name, its
// values ("" and nil in an unused slot) and, when Parse already has it,
// its canonical value (trimmed, no runs of spaces: a valid date, the
// nonce as the signature covers it), which the canonical request writes
// as it is instead of trimming and scanning it again.
type lookedHeader struct {
	lower     string
	values    []string
	value     string
	canonical bool // value is the canonical value of the header sent once
}
