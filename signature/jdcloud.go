package signature

import (
	"net/http"
	"strings"

	"github.com/google/uuid"
)

// jdcloud is JD Cloud's JDCLOUD2-HMAC-SHA256 or JDCLOUD3-HMAC-SHA256 (docs/signature-schemes.md).
//
// The documented canonical form follows JD Cloud's reference test list (the
// Node.js signer's 31 cases): in the path '+' reads as a space, %XX is
// decoded and runs of '/' collapse before every segment is re-encoded; query
// parameters are decoded and re-encoded, those with an empty name dropped,
// and sorted by name then value. So "/a+b" and "/a%20b", "/a//b" and "/a/b",
// "?x=1" and "?x=1&=y" sign alike, as they do for JD Cloud's own gateway.
// Values are decoded once (the Node.js signer decodes query values twice,
// which makes "%2541" and "A" equal; this verifier does not).
type jdcloud struct {
	id       Scheme
	auth     scopedAuth
	collapse bool // collapse runs of spaces in header values (JDCLOUD2 only)
}

func init() {
	for _, j := range []*jdcloud{{JDCloud2, jdAuth("JDCLOUD2"), true}, {JDCloud3, jdAuth("JDCLOUD3"), false}} {
		register(j.id, j.auth.profile(strings.ToLower(j.auth.keyPrefix()), jdNonceHeader, "X-Jdcloud-"), j)
	}
}

// jdAuth is the JDCLOUD2 or JDCLOUD3 family: "<name>-HMAC-SHA256", the
// key chain from <name>+secret, scopes ending in <name lower-case>_request.
func jdAuth(name string) scopedAuth {
	return scopedAuth{
		algorithm: name + hmacSuffix, terminator: strings.ToLower(name) + "_request",
		dateKey: jdDateKey, dateHeader: jdDateHeader, contentKey: jdContentKey, contentHeader: jdContentHeader,
	}
}

// The headers, lower-case as in SignedHeaders and in net/http's canonical form.
const (
	jdDateKey         = "X-Jdcloud-Date"
	jdNonceKey        = "X-Jdcloud-Nonce"
	jdContentKey      = "X-Jdcloud-Content-Sha256"
	jdDateHeader      = "x-jdcloud-date"
	jdNonceHeader     = "x-jdcloud-nonce"
	jdContentHeader   = "x-jdcloud-content-sha256"
	jdRequestIDHeader = "x-jdcloud-request-id" // never signed by JD Cloud's SDKs
)

// parse reads Authorization, x-jdcloud-date, x-jdcloud-nonce and
// x-jdcloud-content-sha256 (see scopedAuth.parse). The date, the nonce and
// (when sent) the content hash must be among the signed headers, or a
// captured request could be replayed with a fresh date and nonce: otherwise
// ErrMissingSignedHeaders. The nonce is the value as the signature covers
// it (trimmed, for JDCLOUD2 with runs of spaces collapsed) and must be sent
// once (see sentOnce): "a  b" is then the same nonce as "a b".
func (j *jdcloud) parse(h http.Header, c *Credentials) error {
	if err := j.auth.parse(h, j.id, c); err != nil {
		return err
	}
	nonces := lookupHeader(h, jdNonceKey, jdNonceHeader)
	if !sentOnce(nonces) {
		return ErrMalformedCredentials
	}
	c.Nonce = canonicalValue(first(nonces), j.collapse)
	c.looked[2] = lookedHeader{jdNonceHeader, nonces, c.Nonce, true}
	if c.Nonce == "" {
		return ErrMissingNonce
	}
	date, nonce, content := listHolds(c.signedHeaders, jdDateHeader, jdNonceHeader, jdContentHeader)
	if !date || !nonce || c.PayloadHash != "" && !content {
		return ErrMissingSignedHeaders
	}
	return nil
}

func (j *jdcloud) sniff(h http.Header) bool { return j.auth.sniff(h) }

func (j *jdcloud) bodyRule(c *Credentials, empty bool) (BodyRule, bool) {
	return payloadHashRule(c, empty)
}

// verify checks the documented canonical form, then (only when it fails and
// differs) the path and query exactly as sent, as JD Cloud's Go SDK signs.
func (j *jdcloud) verify(r *Request, c *Credentials, secret *Secret, payloadHash string, sc *scratch) bool {
	if len(c.scope) < 8 { // not filled by Parse
		return false
	}
	key := j.auth.signingKey(j.id, secret, c)
	ok, asSent := j.matches(r, c, key, payloadHash, false, sc)
	if ok || asSent { // the raw form is the same text: no second try
		return ok
	}
	ok, _ = j.matches(r, c, key, payloadHash, true, sc)
	return ok
}

// matches reports whether the canonical form of r (raw: path and query as
// sent) signs to want; asSent reports that the documented form wrote the
// path and query exactly as sent.
func (j *jdcloud) matches(r *Request, c *Credentials, key *hmacKey, payloadHash string, raw bool, sc *scratch) (ok, asSent bool) {
	ok, pathAsSent, queryAsSent := j.auth.matches(r, c, key, payloadHash, j.form(raw), j.collapse, sc)
	return ok, pathAsSent && queryAsSent
}

// forms is what verify hashes: the documented form, then (when it differs)
// the path and query as sent.
func (j *jdcloud) forms(r *Request, c *Credentials, payloadHash string) []Form {
	if len(c.scope) < 8 { // not filled by Parse
		return nil
	}
	documented, pathAsSent, queryAsSent := j.auth.form(FormDocumented, r, c, payloadHash, j.form(false), j.collapse)
	if pathAsSent && queryAsSent {
		return []Form{documented}
	}
	raw, _, _ := j.auth.form(FormAsSent, r, c, payloadHash, j.form(true), j.collapse)
	return []Form{documented, raw}
}

// form is the documented canonical form, or with raw the path and query as sent.
func (j *jdcloud) form(raw bool) canonicalForm {
	if raw {
		return asSentForm
	}
	return canonicalForm{path: appendCanonicalPath, sortQuery: true}
}

// appendCanonicalRequest appends the canonical request of r. raw takes the
// path and query exactly as sent; asSent reports that the documented form
// wrote them exactly as sent anyway.
func (j *jdcloud) appendCanonicalRequest(b []byte, r *Request, c *Credentials, payloadHash string, raw bool, sc *scratch) (_ []byte, asSent bool) {
	b, pathAsSent, queryAsSent := appendCanonicalRequest(b, r, c, j.form(raw), payloadHash, j.collapse, sc)
	return b, pathAsSent && queryAsSent
}

// sign signs like JD Cloud's SDKs: host, content-type when present and the
// x-jdcloud-* headers (but the request ID) are signed, in sorted order; the
// path and query are written in the documented canonical form.
func (j *jdcloud) sign(req *http.Request, apiKey, apiSecret string, o *signOptions) error {
	nonce := o.nonce
	if nonce == "" {
		nonce = uuid.NewString()
	}
	if req.Header == nil {
		req.Header = make(http.Header)
	}
	req.Header.Set(jdNonceHeader, nonce)
	return j.auth.sign(req, j.id, apiKey, apiSecret, o, j.form(false), j.collapse, signsJDCloudHeader)
}

func signsJDCloudHeader(lower string) bool {
	return lower == "content-type" || strings.HasPrefix(lower, "x-jdcloud-") && lower != jdRequestIDHeader
}
