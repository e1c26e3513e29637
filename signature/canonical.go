package signature

import (
	"bytes"
	"crypto/sha256"
	"encoding"
	"hash"
	"net/http"
	"net/textproto"
	"slices"
	"strings"
	"sync"
)

// Canonicalisation shared by the schemes. Everything appends to a caller's
// buffer so that a verification allocates nothing.

// unreserved marks the bytes RFC 3986 leaves unencoded.
var unreserved = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	t['-'], t['.'], t['_'], t['~'] = true, true, true, true
	return t
}()

const upperHex = "0123456789ABCDEF"

// hexValues maps a hex digit to its value and every other byte to 0xff: one
// load per digit where a signature of 64 digits is decoded per request.
var hexValues = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for c := byte('0'); c <= '9'; c++ {
		t[c] = c - '0'
	}
	for c := byte('a'); c <= 'f'; c++ {
		t[c], t[c-'a'+'A'] = c-'a'+10, c-'a'+10
	}
	return t
}()

func unhex(c byte) (byte, bool) {
	v := hexValues[c]
	return v, v <= 0xf
}

// appendNormalized appends s decoded and re-encoded: '+' reads as a space,
// a valid %XX as its byte (an invalid '%' stays a literal '%', so "o=%" signs
// as "o=%25"), and every byte but the unreserved ones is written as %XX with
// upper-case hex. In a path ('/' separates segments) runs of '/' collapse
// into one, as JD Cloud's signers do, and %2F counts as '/'.
func appendNormalized(dst []byte, s string, path bool) []byte {
	return appendNormalizedAfter(dst, s, path, false)
}

// appendNormalizedAfter is appendNormalized of s written after a part
// already normalized; slash reports that this part ended with a path's '/'.
func appendNormalizedAfter(dst []byte, s string, path, slash bool) []byte {
	for i := 0; i < len(s); {
		run := i
		for run < len(s) && unreserved[s[run]] {
			run++
		}
		if run > i { // the common case: copy a run of plain bytes at once
			dst = append(dst, s[i:run]...)
			slash, i = false, run
			continue
		}
		c := s[i]
		i++
		switch c {
		case '+':
			c = ' '
		case '%':
			if i+1 < len(s) {
				if hi, ok := unhex(s[i]); ok {
					if lo, ok := unhex(s[i+1]); ok {
						c = hi<<4 | lo
						i += 2
					}
				}
			}
		}
		switch {
		case path && c == '/':
			if !slash {
				dst = append(dst, '/')
			}
			slash = true
			continue
		case unreserved[c]:
			dst = append(dst, c)
		default:
			dst = append(dst, '%', upperHex[c>>4], upperHex[c&15])
		}
		slash = false
	}
	return dst
}

// appendCanonicalPath appends the documented canonical form of an escaped
// request path; an empty path is "/". The part of the path already in that
// form (unreserved bytes and single slashes: usually all of it) is copied
// at once, the general normalisation resumes where it ends.
func appendCanonicalPath(dst []byte, path string) []byte {
	n := canonicalPrefix(path)
	if n == 0 {
		return appendNormalizedPath(dst, path)
	}
	dst = append(dst, path[:n]...)
	if n == len(path) {
		return dst
	}
	return appendNormalizedAfter(dst, path[n:], true, path[n-1] == '/')
}

// appendNormalizedPath is appendCanonicalPath without its fast path.
func appendNormalizedPath(dst []byte, path string) []byte {
	if len(path) == 0 || path[0] != '/' {
		dst = append(dst, '/')
	}
	return appendNormalized(dst, path, true)
}

// canonicalPrefix is the length of the longest start of path that is its
// own canonical form and after which normalisation can resume: it starts
// with '/' and holds only unreserved bytes and '/', no two '/' in a row
// (nothing to decode, encode or collapse). 0 when path does not start
// with '/'.
func canonicalPrefix(path string) int {
	if len(path) == 0 || path[0] != '/' {
		return 0
	}
	for i := 1; i < len(path); i++ {
		if c := path[i]; !unreserved[c] && (c != '/' || path[i-1] == '/') {
			return i
		}
	}
	return len(path)
}

// appendRawPath appends the path exactly as sent ("/" when empty), the way
// JD Cloud's Go SDK signs it.
func appendRawPath(dst []byte, path string) []byte {
	if path == "" {
		return append(dst, '/')
	}
	return append(dst, path...)
}

// queryParam locates one parameter in a scratch buffer: its name starts at
// name, its value at value and it ends at end (a canonical query keeps the
// '=' in front of the value).
type queryParam struct{ name, value, end int32 }

// scanPair finds in one pass the end of the query parameter that starts s
// (the first '&' or the end of s) and its first '=' (-1 when none), and
// reports whether the parameter is plain: nothing else in it to decode or
// encode. Kept out of line: inlined, its loop's registers spill and each
// byte costs twice the instructions.
//
//go:noinline
func scanPair(s string) (end, eq int, plain bool) {
	eq, plain = -1, true
	for {
		for end < len(s) && unreserved[s[end]] { // the tight loop: most bytes
			end++
		}
		switch {
		case end == len(s) || s[end] == '&':
			return end, eq, plain
		case s[end] == '=' && eq < 0:
			eq = end
		default:
			plain = false
		}
		end++
	}
}

// appendQueryPart appends a name or value normalized, or when plain as sent.
func appendQueryPart(dst []byte, s string, plain bool) []byte {
	if plain {
		return append(dst, s...)
	}
	return appendNormalized(dst, s, false)
}

// appendCanonicalQuery appends the documented canonical query: parameters
// split on '&' and the first '=', names and values normalized (see
// appendNormalized), parameters with an empty name dropped (JD Cloud's
// signers drop them), sorted by encoded name then encoded value, each
// written name=value. scratch holds the encoded pairs while sorting.
func appendCanonicalQuery(dst []byte, rawQuery string, sc *scratch) []byte {
	if rawQuery == "" {
		return dst
	}
	buf, params := sc.query[:0], sc.params[:0]
	for rest := rawQuery; rest != ""; {
		n, eq, plain := scanPair(rest)
		pair := rest[:n]
		rest = rest[min(n+1, len(rest)):]
		name, value := pair, ""
		if eq >= 0 {
			name, value = pair[:eq], pair[eq+1:]
		}
		if name == "" { // normalized, only an empty name is empty
			continue
		}
		start := len(buf)
		buf = append(appendQueryPart(buf, name, plain), '=')
		valueAt := len(buf)
		buf = appendQueryPart(buf, value, plain)
		params = append(params, queryParam{int32(start), int32(valueAt), int32(len(buf))})
	}
	sortParams(buf, params)
	for i, p := range params {
		if i > 0 {
			dst = append(dst, '&')
		}
		dst = append(dst, buf[p.name:p.end]...)
	}
	sc.query, sc.params = buf, params
	return dst
}

// fewParams is how many parameters sortParams sorts by insertion: a query
// has a handful, which slices.SortFunc sorts through a closure per compare.
const fewParams = 12

// sortParams sorts params, located in buf, by name then value.
func sortParams(buf []byte, params []queryParam) {
	compare := func(a, b queryParam) int {
		if c := bytes.Compare(buf[a.name:a.value-1], buf[b.name:b.value-1]); c != 0 {
			return c
		}
		return bytes.Compare(buf[a.value:a.end], buf[b.value:b.end])
	}
	if len(params) > fewParams {
		slices.SortFunc(params, compare)
		return
	}
	for i := 1; i < len(params); i++ {
		for j := i; j > 0 && compare(params[j-1], params[j]) > 0; j-- {
			params[j-1], params[j] = params[j], params[j-1]
		}
	}
}

// isSpace is the white space trimmed from header values (JavaScript's \s
// within ASCII, as JD Cloud's Node.js signer trims).
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

func trimSpace(s string) string {
	if len(s) > 0 && s[0] > ' ' && s[len(s)-1] > ' ' { // the usual case (white space is all <= ' '): nothing to trim
		return s
	}
	for len(s) > 0 && isSpace(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && isSpace(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

// appendHeaderValue appends the canonical value of a header sent once or
// more: each value trimmed, the values joined with ','; with collapse, runs
// of spaces inside become one space.
func appendHeaderValue(dst []byte, values []string, collapse bool) []byte {
	for i, v := range values {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendValue(dst, v, collapse)
	}
	return dst
}

// appendValue appends one value of a header trimmed and, with collapse,
// with runs of spaces inside written as one space.
func appendValue(dst []byte, v string, collapse bool) []byte {
	v = trimSpace(v)
	if !collapse || !hasDoubleSpace(v) {
		return append(dst, v...)
	}
	for j := 0; j < len(v); j++ {
		if v[j] == ' ' && j > 0 && v[j-1] == ' ' {
			continue
		}
		dst = append(dst, v[j])
	}
	return dst
}

// hasDoubleSpace reports whether v holds two spaces in a row. It hops from
// space to space: most values hold none or few, and strings.Contains costs
// more on values this short.
func hasDoubleSpace(v string) bool {
	for {
		i := strings.IndexByte(v, ' ')
		if i < 0 || i+1 >= len(v) {
			return false
		}
		if v[i+1] == ' ' {
			return true
		}
		v = v[i+2:]
	}
}

// canonicalValue is the canonical value of a header sent once (see
// appendValue): v itself trimmed, or a copy when it had spaces to collapse
// (a rare value, the only case that allocates).
func canonicalValue(v string, collapse bool) string {
	if t := trimSpace(v); !collapse || !hasDoubleSpace(t) {
		return t
	}
	return string(appendValue(nil, v, true))
}

// sentOnce reports whether a header that must be single was sent at most
// once. Its lines are signed joined with ',' (or, in Alibaba's scheme, the
// first only) while the check reads one value: a request re-sent with a
// value split over two lines, or with a second line, would verify as
// before and be read as another, so a repeated credential, date, nonce or
// content hash header is malformed credentials.
func sentOnce(values []string) bool { return len(values) <= 1 }

// canonicalForm is how a canonical request writes the path and the query.
type canonicalForm struct {
	path      func(dst []byte, path string) []byte
	sortQuery bool // decoded, re-encoded and sorted (appendCanonicalQuery); else as sent
}

// asSentForm writes the path and query exactly as sent.
var asSentForm = canonicalForm{path: appendRawPath}

// appendCanonicalRequest appends the canonical request of the JD Cloud and
// AWS schemes: method, path and query in form, the canonical headers of
// c's signed headers, the list itself and the payload hash, each on its line.
// pathAsSent and queryAsSent report that the path and query were written
// exactly as sent.
func appendCanonicalRequest(b []byte, r *Request, c *Credentials, form canonicalForm, payloadHash string, collapse bool, sc *scratch) (_ []byte, pathAsSent, queryAsSent bool) {
	b = append(b, r.Method...)
	b = append(b, '\n')
	start := len(b)
	b = form.path(b, r.Path)
	pathAsSent = string(b[start:]) == r.Path
	b = append(b, '\n')
	start = len(b)
	if form.sortQuery {
		b = appendCanonicalQuery(b, r.RawQuery, sc)
	} else {
		b = append(b, r.RawQuery...)
	}
	queryAsSent = string(b[start:]) == r.RawQuery
	b = append(b, '\n')
	b = appendSignedHeaders(b, r, c, collapse)
	return append(b, payloadHash...), pathAsSent, queryAsSent
}

// appendSignedHeaders appends the canonical headers of c's ';'-separated
// list of signed headers (`name:value\n` each, names lower-case, host from
// r.Host, the headers Parse looked up from c), a blank line and the list
// itself with its newline.
func appendSignedHeaders(b []byte, r *Request, c *Credentials, collapse bool) []byte {
	for list := c.signedHeaders; list != ""; {
		name := list
		if i := strings.IndexByte(list, ';'); i >= 0 {
			name, list = list[:i], list[i+1:]
		} else {
			list = ""
		}
		start := len(b)
		b = appendLower(b, trimSpace(name))
		lower := b[start:]
		b = append(b, ':')
		if string(lower) == "host" {
			b = appendValue(b, r.Host, collapse)
		} else {
			b = c.appendHeaderValue(b, r.Header, lower, collapse)
		}
		b = append(b, '\n')
	}
	b = append(b, '\n')
	b = append(b, c.signedHeaders...)
	return append(b, '\n')
}

// appendHeaderValue appends the canonical value of the header named lower:
// of one Parse looked up, the canonical value it has (else its values),
// else that of h's values.
func (c *Credentials) appendHeaderValue(b []byte, h http.Header, lower []byte, collapse bool) []byte {
	for i := range c.looked {
		if l := &c.looked[i]; l.lower != "" && l.lower == string(lower) {
			if l.canonical {
				return append(b, l.value...)
			}
			return appendHeaderValue(b, l.values, collapse)
		}
	}
	return appendHeaderValue(b, headerValues(h, lower), collapse)
}

// appendLower appends s in lower case.
func appendLower(dst []byte, s string) []byte {
	start := len(dst)
	dst = append(dst, s...)
	for i := start; i < len(dst); i++ {
		dst[i] = lowerCase[dst[i]]
	}
	return dst
}

// lowerCase maps ASCII upper-case letters to lower case, every other byte to itself.
var lowerCase = func() (t [256]byte) {
	for i := range t {
		t[i] = byte(i)
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = byte(c - 'A' + 'a')
	}
	return t
}()

// headerKeyBytes maps a byte of a header name to its form in net/textproto's
// canonical key: [1] at the start of a word (upper case), [0] elsewhere
// (lower case). Bytes outside the token set map to 0.
var headerKeyBytes = func() (t [2][256]byte) {
	for c := range 256 {
		if !isTokenByte(byte(c)) {
			continue
		}
		lower := lowerCase[c]
		t[0][c], t[1][c] = lower, lower
		if 'a' <= lower && lower <= 'z' {
			t[1][c] = lower - ('a' - 'A')
		}
	}
	return t
}()

// maxKeyOnStack is the longest header name whose canonical key is built
// on the stack; longer ones (never signed in practice) allocate.
const maxKeyOnStack = 128

// headerValues returns the values of the header whose lower-case name is
// lower, without allocating: the canonical key is built in a stack buffer.
// A map built by hand with lower-case keys is looked up as well.
func headerValues[T string | []byte](h http.Header, lower T) []string {
	var buf [maxKeyOnStack]byte
	if len(lower) <= len(buf) {
		if v, ok := h[string(canonicalKey(&buf, lower))]; ok {
			return v
		}
	} else if v, ok := h[textproto.CanonicalMIMEHeaderKey(string(lower))]; ok {
		return v
	}
	return h[string(lower)]
}

// canonicalKey writes into buf the form net/textproto gives the header name
// s (upper case at the start and after '-', lower case elsewhere; names
// with bytes outside the token set stay as they are), in one pass.
// len(s) must not exceed len(buf).
func canonicalKey[T string | []byte](buf *[maxKeyOnStack]byte, s T) []byte {
	key := buf[:len(s)]
	start := 1
	for i := range key {
		c := headerKeyBytes[start][s[i]]
		if c == 0 {
			copy(key, s)
			return key
		}
		key[i] = c
		start = 0
		if c == '-' {
			start = 1
		}
	}
	return key
}

func isTokenByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

// firstHeader is the first value of the header with the canonical key
// canonical (or, in a map built by hand, lower).
func firstHeader(h http.Header, canonical, lower string) string {
	return first(lookupHeader(h, canonical, lower))
}

// lookupHeader is the values of the header with the canonical key
// canonical (or, in a map built by hand, lower).
func lookupHeader(h http.Header, canonical, lower string) []string {
	if v, ok := h[canonical]; ok {
		return v
	}
	return h[lower]
}

func first(values []string) string {
	if len(values) > 0 {
		return values[0]
	}
	return ""
}

// scratch is the per-verification working memory, pooled.
type scratch struct {
	buf    []byte // canonical request, then string to sign
	query  []byte // encoded query parameters while sorting
	params []queryParam
	digest []byte // room for a digest's Sum
	// sha is a SHA-256 digest for MACs, which restore an hmacKey's states
	// through shaState (the same digest): pooled with the buffers, it
	// costs no pool of its own.
	sha      hash.Hash
	shaState encoding.BinaryUnmarshaler
}

func newScratch() *scratch {
	sha := sha256.New()
	return &scratch{
		buf: make([]byte, 0, 1024), query: make([]byte, 0, 256), params: make([]queryParam, 0, 16), digest: make([]byte, 0, sha256.Size),
		sha: sha, shaState: sha.(encoding.BinaryUnmarshaler),
	}
}

var scratchPool = sync.Pool{New: func() any { return newScratch() }}

// maxPooled keeps one huge request from pinning its buffers in the pool.
const maxPooled = 64 << 10

func getScratch() *scratch { return scratchPool.Get().(*scratch) }

func putScratch(sc *scratch) {
	if sc.oversized() {
		return
	}
	scratchPool.Put(sc)
}

// oversized reports whether sc's buffers grew too large to keep pooled.
func (sc *scratch) oversized() bool {
	return cap(sc.buf) > maxPooled || cap(sc.query) > maxPooled || cap(sc.params) > maxPooled/8
}
