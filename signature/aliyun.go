package signature

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// aliyun is Alibaba Cloud API Gateway's app signature (docs/signature-schemes.md): X-Ca-Key,
// X-Ca-Signature (Base64 HMAC-SHA256 under the secret itself) over
//
//	METHOD\nAccept\nContent-MD5\nContent-Type\nDate\n<headers><path?params>
//
// where <headers> is `name:value\n` for each name of X-Ca-Signature-Headers
// (comma-separated; written as listed, so both the Go client's
// "X-Ca-Key" and the Node.js client's "x-ca-key" verify), and <params> the
// query and form parameters decoded, sorted by name, the first value of a
// name only (form before query), a name with an empty value written
// without '='. The Go client signs the decoded path, the Node.js client the
// path as sent: the path as sent is tried when the decoded one fails and
// differs.
//
// Stricter than Alibaba's gateway: X-Ca-Timestamp (epoch milliseconds) and
// X-Ca-Nonce are required and must be signed, or a captured request could
// be replayed with new ones. The body is covered only through Content-MD5
// or, for forms, through its parameters; the request check treats any other
// body as an unsigned payload.
type aliyun struct{}

func init() {
	register(Aliyun, profile{
		name: "aliyun", challenge: caSignatureKey, dateHeader: caTimestampHeader, nonceHeader: caNonceHeader,
		headerPrefix: "X-Ca-", errorMessageHeader: "X-Ca-Error-Message",
	}, aliyun{})
}

// The headers, in net/http's canonical form and lower-case.
const (
	caKeyKey              = "X-Ca-Key"
	caSignatureKey        = "X-Ca-Signature"
	caSignatureMethodKey  = "X-Ca-Signature-Method"
	caSignatureHeadersKey = "X-Ca-Signature-Headers"
	caTimestampKey        = "X-Ca-Timestamp"
	caNonceKey            = "X-Ca-Nonce"
	contentMD5Key         = "Content-Md5"
	caTimestampHeader     = "x-ca-timestamp"
	caNonceHeader         = "x-ca-nonce"
	caSignatureMethod     = "HmacSHA256"
	formContentType       = "application/x-www-form-urlencoded"
)

// parse reads the X-Ca-* headers. No X-Ca-Key and no X-Ca-Signature is no
// credentials; a signature that is not Base64 of 32 bytes, another
// X-Ca-Signature-Method than HmacSHA256 or any of these headers or
// Content-MD5 sent more than once (see sentOnce) is malformed credentials.
func (aliyun) parse(h http.Header, c *Credentials) error {
	once := onceHeaders{h: h}
	key := once.value(caKeyKey, "x-ca-key")
	signature := once.value(caSignatureKey, "x-ca-signature")
	if key == "" && signature == "" {
		return ErrMissingCredentials
	}
	method := once.value(caSignatureMethodKey, "x-ca-signature-method")
	timestamp := once.value(caTimestampKey, caTimestampHeader)
	nonce := once.value(caNonceKey, caNonceHeader)
	signedHeaders := once.value(caSignatureHeadersKey, "x-ca-signature-headers")
	contentMD5 := once.value(contentMD5Key, "content-md5")
	if once.repeated {
		return ErrMalformedCredentials
	}
	var sig [sha256.Size]byte
	if key == "" || !decodeBase64MAC(&sig, signature) {
		return ErrMalformedCredentials
	}
	if method != "" && method != caSignatureMethod {
		return ErrMalformedCredentials // HmacSHA1 is not accepted
	}
	date, ok := parseEpochMillis(timestamp)
	if !ok {
		return ErrMissingDate
	}
	if nonce == "" {
		return ErrMissingNonce
	}
	if !commaListHas(signedHeaders, caTimestampHeader) || !commaListHas(signedHeaders, caNonceHeader) {
		return ErrMissingSignedHeaders
	}
	*c = Credentials{
		Scheme:        Aliyun,
		APIKey:        key,
		Date:          date,
		Nonce:         nonce,
		Signature:     signature,
		ContentMD5:    contentMD5,
		SignsForm:     isFormContentType(firstHeader(h, "Content-Type", "content-type")),
		signedHeaders: signedHeaders,
		signature:     sig,
	}
	return nil
}

// sniff reports whether h has X-Ca-Key or X-Ca-Signature, whether or not
// parse takes the rest.
func (aliyun) sniff(h http.Header) bool {
	return h.Get(caKeyKey) != "" || h.Get(caSignatureKey) != ""
}

// bodyRule: Alibaba's scheme signs no payload hash. A form is covered by
// its parameters, another body by Content-MD5, checked as it streams; a
// body covered by neither is an unsigned payload. Content-MD5, when sent,
// must be the Base64 of an MD5 and the MD5 of the body, whatever covers it.
func (aliyun) bodyRule(c *Credentials, empty bool) (BodyRule, bool) {
	var rule BodyRule
	if c.ContentMD5 != "" {
		if !decodeBase64MD5(&rule.Want, c.ContentMD5) {
			return BodyRule{}, false
		}
		rule.digest = md5Digest
	}
	switch {
	case empty && !rule.Matches(nil):
		return BodyRule{}, false
	case empty:
		return BodyRule{Cover: BodyCovered}, true
	case c.SignsForm:
		rule.Cover = BodyForm
	case c.ContentMD5 != "":
		rule.Cover = BodyDigest
	default:
		rule.Cover = BodyUnsigned
	}
	return rule, true
}

// decodeBase64MD5 decodes the standard Base64 of an MD5 (24 characters)
// into dst without allocating.
func decodeBase64MD5(dst *[sha256.Size]byte, s string) bool {
	var src [24]byte // base64.StdEncoding.EncodedLen(md5.Size)
	if len(s) != len(src) {
		return false
	}
	copy(src[:], s)
	n, err := base64.StdEncoding.Decode(dst[:], src[:])
	return err == nil && n == md5.Size
}

// onceHeaders reads headers that must be sent once: repeated notes one
// that was sent more often.
type onceHeaders struct {
	h        http.Header
	repeated bool
}

// value is the trimmed value of the header with the canonical key
// canonical (or, in a map built by hand, lower). The string to sign holds
// the same trimmed value, so a nonce read here is exactly what is signed.
func (o *onceHeaders) value(canonical, lower string) string {
	values := lookupHeader(o.h, canonical, lower)
	o.repeated = o.repeated || !sentOnce(values)
	return trimSpace(first(values))
}

// strictBase64 refuses the non-zero padding bits standard decoding ignores:
// a signature has one Base64 form, so it cannot be re-encoded into another
// string that verifies.
var strictBase64 = base64.StdEncoding.Strict()

// decodeBase64MAC decodes the standard Base64 of a SHA-256 MAC into dst
// without allocating.
func decodeBase64MAC(dst *[sha256.Size]byte, s string) bool {
	var src [44]byte // base64.StdEncoding.EncodedLen(sha256.Size)
	var out [33]byte // DecodedLen(44)
	if len(s) != len(src) {
		return false
	}
	copy(src[:], s)
	n, err := strictBase64.Decode(out[:], src[:])
	if err != nil || n != sha256.Size {
		return false
	}
	copy(dst[:], out[:n])
	return true
}

// parseEpochMillis reads a positive count of milliseconds since 1970.
func parseEpochMillis(s string) (time.Time, bool) {
	if s == "" || len(s) > 15 || !allDigits(s) { // 15 digits reach the year 33658
		return time.Time{}, false
	}
	ms := int64(0)
	for i := 0; i < len(s); i++ {
		ms = ms*10 + int64(s[i]-'0')
	}
	return time.UnixMilli(ms), true
}

// commaListHas reports whether the comma-separated list holds name, in any
// ASCII case and with spaces around the items.
func commaListHas(list, name string) bool {
	for list != "" {
		var item string
		item, list, _ = strings.Cut(list, ",")
		if equalFoldASCII(trimSpace(item), name) {
			return true
		}
	}
	return false
}

// equalFoldASCII is strings.EqualFold for ASCII letters only. Header names
// fold in ASCII alone: with Unicode folding "x-ca-timeſtamp" (long s) would
// pass for the timestamp header in a signed list, which then signs nothing.
func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lowerASCII(a[i]) != lowerASCII(b[i]) {
			return false
		}
	}
	return true
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// isFormContentType reports whether a Content-Type is a URL-encoded form
// (whose parameters the scheme signs).
func isFormContentType(contentType string) bool {
	contentType = trimSpace(contentType)
	return len(contentType) >= len(formContentType) && equalFoldASCII(contentType[:len(formContentType)], formContentType) &&
		(len(contentType) == len(formContentType) || contentType[len(formContentType)] == ';' || isSpace(contentType[len(formContentType)]))
}

func (a aliyun) verify(r *Request, c *Credentials, secret *Secret, _ string, sc *scratch) bool {
	if c.signedHeaders == "" { // not filled by Parse
		return false
	}
	key := secret.plainKey()
	ok, asSent := a.matches(r, c, key, false, sc)
	if ok || asSent {
		return ok
	}
	ok, _ = a.matches(r, c, key, true, sc)
	return ok
}

// matches reports whether the string to sign of r (raw: the path as sent,
// else decoded) signs to c's signature; asSent reports that the decoded
// path is the path as sent.
func (a aliyun) matches(r *Request, c *Credentials, key *hmacKey, raw bool, sc *scratch) (ok, asSent bool) {
	sc.buf, asSent = appendAliyunStringToSign(sc.buf[:0], r, c.signedHeaders, c.SignsForm, raw, sc)
	got := key.sum(sc.buf, sc)
	return equalMAC(&got, &c.signature), asSent
}

// forms is the string to sign with the decoded path, then (when it differs)
// with the path as sent, as verify tries them. The scheme signs its
// canonical request directly: both texts of a Form are the same.
func (aliyun) forms(r *Request, c *Credentials, _ string) []Form {
	if c.signedHeaders == "" { // not filled by Parse
		return nil
	}
	form := func(name string, raw bool) (Form, bool) {
		sc := getScratch()
		defer putScratch(sc)
		var asSent bool
		sc.buf, asSent = appendAliyunStringToSign(sc.buf[:0], r, c.signedHeaders, c.SignsForm, raw, sc)
		stringToSign := string(sc.buf)
		return Form{Name: name, CanonicalRequest: stringToSign, StringToSign: stringToSign}, asSent
	}
	decoded, asSent := form(FormDocumented, false)
	if asSent {
		return []Form{decoded}
	}
	raw, _ := form(FormAsSent, true)
	return []Form{decoded, raw}
}

// appendAliyunStringToSign appends the string to sign of r; signedHeaders
// is the X-Ca-Signature-Headers list. asSent reports that the path was
// written as sent.
func appendAliyunStringToSign(b []byte, r *Request, signedHeaders string, signsForm, raw bool, sc *scratch) (_ []byte, asSent bool) {
	b = append(b, r.Method...)
	b = append(b, '\n')
	for _, k := range [...]struct{ canonical, lower string }{
		{"Accept", "accept"}, {contentMD5Key, "content-md5"}, {"Content-Type", "content-type"}, {"Date", "date"},
	} {
		b = append(b, trimSpace(firstHeader(r.Header, k.canonical, k.lower))...) // trimmed, as on the wire
		b = append(b, '\n')
	}
	for list := signedHeaders; list != ""; {
		var name string
		name, list, _ = strings.Cut(list, ",")
		if name = trimSpace(name); name == "" {
			continue
		}
		b = append(b, name...)
		b = append(b, ':')
		if v := headerValues(r.Header, name); len(v) > 0 {
			b = append(b, trimSpace(v[0])...)
		}
		b = append(b, '\n')
	}
	start := len(b)
	switch {
	case r.Path == "": // as it goes on the wire
		b = append(b, '/')
	case raw:
		b = append(b, r.Path...)
	default:
		b = appendDecoded(b, r.Path, false)
	}
	asSent = string(b[start:]) == r.Path
	var form []byte
	if signsForm {
		form = r.Form
	}
	return appendAliyunParams(b, form, r.RawQuery, sc), asSent
}

// appendAliyunParams appends `?name=value&name&…`: the parameters of the
// form body and of the query, decoded, stably sorted by name (so the form's
// come first), the first of each name only; nothing when there are none.
func appendAliyunParams(b []byte, form []byte, rawQuery string, sc *scratch) []byte {
	buf, params := sc.query[:0], sc.params[:0]
	buf, params = appendParams(buf, params, form)
	buf, params = appendParams(buf, params, rawQuery)
	slices.SortStableFunc(params, func(x, y queryParam) int {
		return bytes.Compare(buf[x.name:x.value], buf[y.name:y.value])
	})
	for i, p := range params {
		if i > 0 && bytes.Equal(buf[p.name:p.value], buf[params[i-1].name:params[i-1].value]) {
			continue
		}
		if i == 0 {
			b = append(b, '?')
		} else {
			b = append(b, '&')
		}
		b = append(b, buf[p.name:p.value]...)
		if p.end > p.value {
			b = append(b, '=')
			b = append(b, buf[p.value:p.end]...)
		}
	}
	sc.query, sc.params = buf, params
	return b
}

// appendParams splits the '&'-separated name=value pairs of s (empty pairs
// skipped), appends each decoded name and value to buf and locates them in
// params.
func appendParams[T string | []byte](buf []byte, params []queryParam, s T) ([]byte, []queryParam) {
	for len(s) > 0 {
		end := 0
		for end < len(s) && s[end] != '&' {
			end++
		}
		pair := s[:end]
		if end < len(s) {
			end++
		}
		s = s[end:]
		if len(pair) == 0 {
			continue
		}
		eq := 0
		for eq < len(pair) && pair[eq] != '=' {
			eq++
		}
		start := len(buf)
		buf = appendDecoded(buf, pair[:eq], true)
		mid := len(buf)
		if eq < len(pair) {
			buf = appendDecoded(buf, pair[eq+1:], true)
		}
		params = append(params, queryParam{int32(start), int32(mid), int32(len(buf))})
	}
	return buf, params
}

// appendDecoded appends s with each valid %XX decoded (an invalid '%'
// stays) and, with plus, '+' read as a space.
func appendDecoded[T string | []byte](dst []byte, s T, plus bool) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '+' && plus:
			c = ' '
		case c == '%' && i+2 < len(s):
			if hi, ok := unhex(s[i+1]); ok {
				if lo, ok := unhex(s[i+2]); ok {
					c = hi<<4 | lo
					i += 2
				}
			}
		}
		dst = append(dst, c)
	}
	return dst
}

// sign signs like github.com/sliveryou/aliyun-api-gateway-sign:
// X-Ca-Key, X-Ca-Nonce, X-Ca-Signature-Method and X-Ca-Timestamp signed,
// Content-MD5 for a body that is not a form.
func (a aliyun) sign(req *http.Request, apiKey, apiSecret string, o *signOptions) error {
	if req.Header == nil {
		req.Header = make(http.Header)
	}
	nonce := o.nonce
	if nonce == "" {
		nonce = uuid.NewString()
	}
	h := req.Header
	h.Set(caKeyKey, apiKey)
	h.Set(caNonceKey, nonce)
	h.Set(caSignatureMethodKey, caSignatureMethod)
	h.Set(caTimestampKey, strconv.FormatInt(o.now.UnixMilli(), 10))
	h.Set(caSignatureHeadersKey, caKeyKey+","+caNonceKey+","+caSignatureMethodKey+","+caTimestampKey)
	body, err := readBody(req)
	if err != nil {
		return err
	}
	r := &Request{Method: req.Method, Path: req.URL.EscapedPath(), RawQuery: req.URL.RawQuery, Header: h}
	if r.Method == "" {
		r.Method = http.MethodGet
	}
	signsForm := isFormContentType(h.Get("Content-Type"))
	switch {
	case signsForm:
		r.Form = body
	case len(body) > 0 && !o.unsignedPayload:
		sum := md5.Sum(body)
		h.Set("Content-MD5", base64.StdEncoding.EncodeToString(sum[:]))
	}
	sc := getScratch()
	defer putScratch(sc)
	sc.buf, _ = appendAliyunStringToSign(sc.buf[:0], r, h.Get(caSignatureHeadersKey), signsForm, false, sc)
	if o.signed != nil {
		stringToSign := string(sc.buf)
		*o.signed = Form{Name: FormDocumented, CanonicalRequest: stringToSign, StringToSign: stringToSign}
	}
	mac := NewSecret(apiSecret).plainKey().sum(sc.buf, sc)
	h.Set(caSignatureKey, base64.StdEncoding.EncodeToString(mac[:]))
	return nil
}

// readBody returns req's body and leaves it readable again.
func readBody(req *http.Request) ([]byte, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return nil, nil
	}
	body := req.Body
	if req.GetBody != nil {
		var err error
		if body, err = req.GetBody(); err != nil {
			return nil, err
		}
	}
	data, err := io.ReadAll(body)
	body.Close()
	if err != nil {
		return nil, err
	}
	if req.GetBody == nil {
		req.Body = io.NopCloser(bytes.NewReader(data))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
	}
	return data, nil
}
