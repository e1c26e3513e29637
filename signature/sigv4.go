package signature

import (
	"net/http"
	"strings"
)

// sigv4 is AWS Signature Version 4 in the Authorization header (docs/signature-schemes.md),
// as `curl --aws-sigv4` and the AWS SDKs sign it.
//
// The canonical URI depends on the service, as in the SDKs and in curl 8:
// S3 (s3, s3-express, s3-outposts) signs the path as sent, every other
// service the path as sent encoded once more (every byte but the unreserved
// ones and '/' written as %XX, so "%20" signs as "%2520"). The canonical
// query is decoded, re-encoded and sorted. Older clients differ: curl
// before 8.x signs the path and query exactly as sent, and an S3-style
// signer pointed at another service signs the path as sent with the sorted
// query. A request whose documented form fails is checked against those
// forms too, each only when it is different text (the tries cost only when
// the first fails).
//
// The scheme has no nonce: the request check uses the signature as one.
// x-amz-security-token (temporary credentials of AWS STS) is an ordinary
// header here: a gateway key is long-lived, and a request signed with a
// temporary secret fails the signature anyway.
type sigv4 struct{ auth scopedAuth }

func init() {
	v := &sigv4{scopedAuth{
		algorithm: "AWS4" + hmacSuffix, terminator: "aws4_request",
		dateKey: amzDateKey, dateHeader: amzDateHeader, contentKey: amzContentKey, contentHeader: amzContentHeader,
	}}
	register(SigV4, v.auth.profile("sigv4", "", "X-Amz-"), v)
}

// The headers, in net/http's canonical form and lower-case.
const (
	amzDateKey       = "X-Amz-Date"
	amzContentKey    = "X-Amz-Content-Sha256"
	amzDateHeader    = "x-amz-date"
	amzContentHeader = "x-amz-content-sha256"
)

// parse reads Authorization, x-amz-date and x-amz-content-sha256 (see
// scopedAuth.parse). Host, the date and (when sent) the content hash must be
// signed, as AWS requires: otherwise ErrMissingSignedHeaders. The signature
// must be lower-case hex.
func (v *sigv4) parse(h http.Header, c *Credentials) error {
	if err := v.auth.parse(h, SigV4, c); err != nil {
		return err
	}
	if strings.ContainsAny(c.Signature, "ABCDEF") {
		// AWS signers write lower-case hex. The signature serves as the
		// nonce: one written in another case must not pass as a new one.
		return ErrMalformedCredentials
	}
	host, date, content := listHolds(c.signedHeaders, "host", amzDateHeader, amzContentHeader)
	if !host || !date || c.PayloadHash != "" && !content {
		return ErrMissingSignedHeaders
	}
	return nil
}

func (v *sigv4) sniff(h http.Header) bool { return v.auth.sniff(h) }

func (v *sigv4) bodyRule(c *Credentials, empty bool) (BodyRule, bool) {
	return payloadHashRule(c, empty)
}

// verify tries the documented form of c's service, then curl 7's (path and
// query as sent), then for services other than S3 the S3 form (path as
// sent, sorted query).
func (v *sigv4) verify(r *Request, c *Credentials, secret *Secret, payloadHash string, sc *scratch) bool {
	if len(c.scope) < 8 { // not filled by Parse
		return false
	}
	key := v.auth.signingKey(SigV4, secret, c)
	documented := documentedForm(c.Service)
	ok, pathAsSent, queryAsSent := v.auth.matches(r, c, key, payloadHash, documented, true, sc)
	if ok || pathAsSent && queryAsSent {
		return ok
	}
	if ok, _, _ = v.auth.matches(r, c, key, payloadHash, asSentForm, true, sc); ok {
		return true
	}
	if pathAsSent || queryAsSent { // the S3 form is one of the two already tried
		return false
	}
	ok, _, _ = v.auth.matches(r, c, key, payloadHash, s3Form, true, sc)
	return ok
}

// forms is what verify hashes, in its order: the documented form, curl 7's,
// the S3 form, each only when verify would try it.
func (v *sigv4) forms(r *Request, c *Credentials, payloadHash string) []Form {
	if len(c.scope) < 8 { // not filled by Parse
		return nil
	}
	documented, pathAsSent, queryAsSent := v.auth.form(FormDocumented, r, c, payloadHash, documentedForm(c.Service), true)
	forms := []Form{documented}
	if pathAsSent && queryAsSent {
		return forms
	}
	asSent, _, _ := v.auth.form(FormAsSent, r, c, payloadHash, asSentForm, true)
	forms = append(forms, asSent)
	if pathAsSent || queryAsSent {
		return forms
	}
	s3, _, _ := v.auth.form(FormS3, r, c, payloadHash, s3Form, true)
	return append(forms, s3)
}

// s3Form signs the path as sent and the sorted query; the other services
// encode the path once more.
var (
	s3Form      = canonicalForm{path: appendRawPath, sortQuery: true}
	serviceForm = canonicalForm{path: appendEscapedPath, sortQuery: true}
)

// documentedForm is the canonical form AWS documents for service.
func documentedForm(service string) canonicalForm {
	switch service {
	case "s3", "s3-express", "s3-outposts":
		return s3Form
	}
	return serviceForm
}

// appendEscapedPath appends path with every byte but the unreserved ones
// and '/' written as %XX ("/" when empty): the second encoding of AWS's
// canonical URI.
func appendEscapedPath(dst []byte, path string) []byte {
	if path == "" {
		return append(dst, '/')
	}
	for i := 0; i < len(path); {
		run := i
		for run < len(path) && (unreserved[path[run]] || path[run] == '/') {
			run++
		}
		dst = append(dst, path[i:run]...)
		if run == len(path) {
			break
		}
		c := path[run]
		dst = append(dst, '%', upperHex[c>>4], upperHex[c&15])
		i = run + 1
	}
	return dst
}

// sign signs like the AWS SDK for Go v2: host, content-type, content-md5
// and the x-amz-* headers are signed, in sorted order; the path in the
// documented form of the service (WithService; the default is not S3).
func (v *sigv4) sign(req *http.Request, apiKey, apiSecret string, o *signOptions) error {
	return v.auth.sign(req, SigV4, apiKey, apiSecret, o, documentedForm(o.service), true, signsAmzHeader)
}

func signsAmzHeader(lower string) bool {
	return lower == "content-type" || lower == "content-md5" || strings.HasPrefix(lower, "x-amz-")
}
