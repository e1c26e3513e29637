package signature

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Parsing shared by the schemes whose Authorization header reads
// `<ALGORITHM> Credential=<key>/<scope>, SignedHeaders=<h1;h2>, Signature=<hex>`
// (JD Cloud's and AWS's).

// authorization returns the first Authorization value of h that starts
// with algorithm and a space, without it.
func authorization(values []string, algorithm string) (string, bool) {
	for _, v := range values {
		v = trimSpace(v)
		if len(v) > len(algorithm) && v[len(algorithm)] == ' ' && v[:len(algorithm)] == algorithm {
			return v[len(algorithm)+1:], true
		}
	}
	return "", false
}

// authParams reads the comma-separated name=value items of an
// Authorization value; unknown items are ignored.
func authParams(params string) (credential, signedHeaders, signature string) {
	for params != "" {
		item := params
		if i := strings.IndexByte(params, ','); i >= 0 {
			item, params = params[:i], params[i+1:]
		} else {
			params = ""
		}
		// Every request passes here: the first byte picks the one prefix
		// to test.
		item = trimSpace(item)
		if item == "" {
			continue
		}
		switch item[0] {
		case 'C':
			if value, ok := strings.CutPrefix(item, "Credential="); ok {
				credential = value
			}
		case 'S':
			if value, ok := strings.CutPrefix(item, "Signature="); ok {
				signature = value
			} else if value, ok := strings.CutPrefix(item, "SignedHeaders="); ok {
				signedHeaders = value
			}
		}
	}
	return credential, signedHeaders, signature
}

// credentialScope splits `<key>/<YYYYMMDD>/<region>/<service>/<terminator>`.
// The key may itself hold '/', so the scope is read from the right: the
// terminator and the date have fixed lengths, region and service end at
// the '/' before them.
func credentialScope(credential, terminator string) (key, scope, region, service string, ok bool) {
	rest, found := strings.CutSuffix(credential, terminator)
	if !found || !strings.HasSuffix(rest, "/") {
		return "", "", "", "", false
	}
	rest = rest[:len(rest)-1]
	var parts [2]string // region, service
	for i := len(parts) - 1; i >= 0; i-- {
		j := strings.LastIndexByte(rest, '/')
		if j < 0 {
			return "", "", "", "", false
		}
		parts[i], rest = rest[j+1:], rest[:j]
	}
	const dateLen = len("YYYYMMDD")
	if len(rest) < dateLen+2 || rest[len(rest)-dateLen-1] != '/' || !allDigits(rest[len(rest)-dateLen:]) || parts[0] == "" || parts[1] == "" {
		return "", "", "", "", false
	}
	key = rest[:len(rest)-dateLen-1]
	return key, credential[len(key)+1:], parts[0], parts[1], true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// compactTimeFormat is the date header's format, YYYYMMDDTHHMMSSZ.
const compactTimeFormat = "20060102T150405Z"

// parseCompactTime reads YYYYMMDDTHHMMSSZ (UTC) without allocating.
func parseCompactTime(s string) (time.Time, bool) {
	if len(s) != 16 || s[8] != 'T' || s[15] != 'Z' || !allDigits(s[:8]) || !allDigits(s[9:15]) {
		return time.Time{}, false
	}
	n := func(i, j int) int {
		v := 0
		for ; i < j; i++ {
			v = v*10 + int(s[i]-'0')
		}
		return v
	}
	year, month, day := n(0, 4), n(4, 6), n(6, 8)
	hour, minute, second := n(9, 11), n(11, 13), n(13, 15)
	if month < 1 || month > 12 || day < 1 || day > daysIn(month, year) || hour > 23 || minute > 59 || second > 59 {
		return time.Time{}, false
	}
	// Every request passes here: the seconds since the epoch by hand cost a
	// fraction of time.Date's normalisation.
	days := daysSinceEpoch(year, month, day)
	return time.Unix(days*86400+int64(hour*3600+minute*60+second), 0).UTC(), true
}

// daysIn is the number of days of month (1–12) in the Gregorian year.
func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysSinceEpoch is the number of days from 1970-01-01 to the Gregorian
// date (year ≥ 0), by counting in eras of 400 years that start in March.
func daysSinceEpoch(year, month, day int) int64 {
	if month <= 2 {
		year--
	}
	era := (year+400)/400 - 1 // floor division for year -1
	yearOfEra := year - era*400
	m := (month + 9) % 12 // March is 0
	dayOfYear := (153*m+2)/5 + day - 1
	dayOfEra := yearOfEra*365 + yearOfEra/4 - yearOfEra/100 + dayOfYear
	return int64(era)*146097 + int64(dayOfEra) - 719468
}

// listHolds reports which of the names a, b and c the ';'-separated list
// holds, in one pass over it. Signers write the list in lower case.
func listHolds(list, a, b, c string) (hasA, hasB, hasC bool) {
	for list != "" {
		name := list
		if i := strings.IndexByte(list, ';'); i >= 0 {
			name, list = list[:i], list[i+1:]
		} else {
			list = ""
		}
		switch name {
		case a:
			hasA = true
		case b:
			hasB = true
		case c:
			hasC = true
		}
	}
	return hasA, hasB, hasC
}

// decodeHex decodes a hex signature into dst; it reports false unless s is
// exactly 2*len(dst) hex digits.
func decodeHex(dst []byte, s string) bool {
	if len(s) != 2*len(dst) {
		return false
	}
	for i := range dst {
		hi, lo := hexValues[s[2*i]], hexValues[s[2*i+1]]
		if hi|lo > 0xf {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

// lowerHex is sum in lower-case hex: one table load and one store per
// byte, less than half the instructions of encoding/hex.
func lowerHex(sum *[sha256.Size]byte) (h [2 * sha256.Size]byte) {
	for i, v := range sum {
		binary.LittleEndian.PutUint16(h[2*i:], lowerHexPairs[v])
	}
	return h
}

// lowerHexPairs is the two lower-case hex digits of each byte, the first
// in the low byte.
var lowerHexPairs = func() (t [256]uint16) {
	const digits = "0123456789abcdef"
	for v := range t {
		t[v] = uint16(digits[v>>4]) | uint16(digits[v&15])<<8
	}
	return t
}()

// scopedAuth is what differs between the schemes of this family (JD
// Cloud's and AWS's): the algorithm, the scope's terminator, the date and
// content-hash headers (canonical and lower-case names). The key chain's
// prefix is the algorithm's name before "-HMAC-SHA256" (keyPrefix).
type scopedAuth struct {
	algorithm, terminator     string
	dateKey, dateHeader       string
	contentKey, contentHeader string
}

// hmacSuffix ends the algorithm of every scheme of the family.
const hmacSuffix = "-HMAC-SHA256"

// keyPrefix is what the key chain puts before the secret (JDCLOUD2, AWS4):
// the algorithm without hmacSuffix.
func (a *scopedAuth) keyPrefix() string { return a.algorithm[:len(a.algorithm)-len(hmacSuffix)] }

// profile is the profile of a scheme of this family named name, whose
// headers start with headerPrefix; nonceHeader is "" for one without a
// nonce.
func (a *scopedAuth) profile(name, nonceHeader, headerPrefix string) profile {
	return profile{
		name: name, challenge: a.algorithm, dateHeader: a.dateHeader, nonceHeader: nonceHeader,
		headerPrefix: headerPrefix, scoped: true,
	}
}

// sniff reports whether Authorization starts with the algorithm, whether or
// not parse takes the rest.
func (a *scopedAuth) sniff(h http.Header) bool {
	return strings.HasPrefix(h.Get("Authorization"), a.algorithm)
}

// parse fills c from the Authorization, date and content-hash headers of
// h. A date header that is not YYYYMMDDTHHMMSSZ counts as missing; one of
// another day than the credential is malformed credentials, and so is any
// of the three sent more than once (see sentOnce). Which headers must be
// signed is the scheme's to check.
func (a *scopedAuth) parse(h http.Header, scheme Scheme, c *Credentials) error {
	authValues := h["Authorization"]
	params, ok := authorization(authValues, a.algorithm)
	if !ok {
		return ErrMissingCredentials
	}
	dateValues := lookupHeader(h, a.dateKey, a.dateHeader)
	contentValues := lookupHeader(h, a.contentKey, a.contentHeader)
	if !sentOnce(authValues) || !sentOnce(dateValues) || !sentOnce(contentValues) {
		return ErrMalformedCredentials
	}
	credential, signedHeaders, signature := authParams(params)
	key, scope, region, service, ok := credentialScope(credential, a.terminator)
	if !ok {
		return ErrMalformedCredentials
	}
	if signedHeaders == "" {
		return ErrMissingSignedHeaders
	}
	var sig [sha256.Size]byte
	if !decodeHex(sig[:], signature) {
		return ErrMalformedCredentials
	}
	dateValue, payloadHash := trimSpace(first(dateValues)), trimSpace(first(contentValues))
	date, ok := parseCompactTime(dateValue)
	if !ok {
		return ErrMissingDate
	}
	if dateValue[:8] != scope[:8] {
		return ErrMalformedCredentials
	}
	*c = Credentials{
		Scheme:        scheme,
		APIKey:        key,
		Date:          date,
		Region:        region,
		Service:       service,
		Signature:     signature,
		PayloadHash:   payloadHash,
		signedHeaders: signedHeaders,
		scope:         scope,
		dateValue:     dateValue,
		signature:     sig,
		looked: [3]lookedHeader{
			{a.dateHeader, dateValues, dateValue, true}, // YYYYMMDDTHHMMSSZ, no space
			// Without runs of spaces, a trimmed value is canonical whether the scheme collapses them or not.
			{a.contentHeader, contentValues, payloadHash, len(contentValues) == 1 && !hasDoubleSpace(payloadHash)},
		},
	}
	return nil
}

// signingKey is the key of c's credential scope, derived from secret.
func (a *scopedAuth) signingKey(scheme Scheme, secret *Secret, c *Credentials) *hmacKey {
	return secret.chainedKey(scheme, a.keyPrefix(), c.scope[:8], c.Region, c.Service, a.terminator)
}

// mac replaces the canonical request in sc.buf by the string to sign and
// returns its HMAC under key.
func (a *scopedAuth) mac(key *hmacKey, c *Credentials, sc *scratch) [sha256.Size]byte {
	a.stringToSign(c, sc)
	return key.sum(sc.buf, sc)
}

// stringToSign hashes the canonical request in sc.buf and replaces it by
// the string to sign: `<algorithm>\n<date>\n<scope>\n<hex sha256(canonical)>`.
func (a *scopedAuth) stringToSign(c *Credentials, sc *scratch) {
	sum := sha256.Sum256(sc.buf)
	b := append(sc.buf[:0], a.algorithm...)
	b = append(b, '\n')
	b = append(b, c.dateValue...)
	b = append(b, '\n')
	b = append(b, c.scope...)
	b = append(b, '\n')
	h := lowerHex(&sum)
	sc.buf = append(b, h[:]...)
}

// matches reports whether the canonical request of r in form signs to
// c's signature under key; pathAsSent and queryAsSent report that the form
// wrote the path and the query exactly as sent.
func (a *scopedAuth) matches(r *Request, c *Credentials, key *hmacKey, payloadHash string, form canonicalForm, collapse bool, sc *scratch) (ok, pathAsSent, queryAsSent bool) {
	sc.buf, pathAsSent, queryAsSent = appendCanonicalRequest(sc.buf[:0], r, c, form, payloadHash, collapse, sc)
	got := a.mac(key, c, sc)
	return equalMAC(&got, &c.signature), pathAsSent, queryAsSent
}

// form is the canonical request of r in form and its string to sign, as
// matches computes them (for Forms); pathAsSent and queryAsSent as there.
func (a *scopedAuth) form(name string, r *Request, c *Credentials, payloadHash string, form canonicalForm, collapse bool) (f Form, pathAsSent, queryAsSent bool) {
	sc := getScratch()
	defer putScratch(sc)
	sc.buf, pathAsSent, queryAsSent = appendCanonicalRequest(sc.buf[:0], r, c, form, payloadHash, collapse, sc)
	f = Form{Name: name, CanonicalRequest: string(sc.buf)}
	a.stringToSign(c, sc)
	f.StringToSign = string(sc.buf)
	return f, pathAsSent, queryAsSent
}

// sign signs req in place: the content hash (header with
// WithContentSHA256 or WithUnsignedPayload), the date header, then host and
// the headers signs accepts (by lower-case name) in sorted order, the path
// and query in form. A content hash header already set is taken as given.
func (a *scopedAuth) sign(req *http.Request, scheme Scheme, apiKey, apiSecret string, o *signOptions, form canonicalForm, collapse bool, signs func(lower string) bool) error {
	if req.Header == nil {
		req.Header = make(http.Header)
	}
	var payloadHash string
	switch {
	case o.unsignedPayload:
		req.Header.Set(a.contentHeader, UnsignedPayload)
	default:
		sum, err := hashBody(req)
		if err != nil {
			return err
		}
		payloadHash = hex.EncodeToString(sum[:])
		if o.contentSHA256 {
			req.Header.Set(a.contentHeader, payloadHash)
		}
	}
	if v := req.Header.Get(a.contentHeader); v != "" {
		payloadHash = v // the verifier takes the header's word, so must the signer
	}
	dateValue := o.now.UTC().Format(compactTimeFormat)
	req.Header.Set(a.dateHeader, dateValue)

	host := req.Host
	if host == "" && req.URL != nil {
		host = req.URL.Host
	}
	names := []string{"host"}
	for name := range req.Header {
		lower := strings.ToLower(name)
		if lower == a.dateHeader || lower == a.contentHeader || signs(lower) {
			names = append(names, lower)
		}
	}
	slices.Sort(names)
	names = slices.Compact(names)

	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	r := &Request{Method: method, Host: host, Path: req.URL.EscapedPath(), RawQuery: req.URL.RawQuery, Header: req.Header}
	c := &Credentials{
		Region: o.region, Service: o.service, signedHeaders: strings.Join(names, ";"),
		scope: dateValue[:8] + "/" + o.region + "/" + o.service + "/" + a.terminator, dateValue: dateValue,
	}
	sc := getScratch()
	defer putScratch(sc)
	sc.buf, _, _ = appendCanonicalRequest(sc.buf[:0], r, c, form, payloadHash, collapse, sc)
	if o.signed != nil {
		*o.signed = Form{Name: FormDocumented, CanonicalRequest: string(sc.buf)}
	}
	sig := a.mac(a.signingKey(scheme, NewSecret(apiSecret), c), c, sc)
	if o.signed != nil {
		o.signed.StringToSign = string(sc.buf)
	}
	req.Header.Set("Authorization", a.algorithm+" Credential="+apiKey+"/"+c.scope+
		", SignedHeaders="+c.signedHeaders+", Signature="+hex.EncodeToString(sig[:]))
	return nil
}
