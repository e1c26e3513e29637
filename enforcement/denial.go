package enforcement

import (
	"encoding/json"
	"net/http"
	"strconv"
	"unicode/utf8"

	"github.com/accessauth/caddy-access-auth/signature"
)

const numSchemes = signature.NumSchemes

// The parts of every denial, rendered once: the body is
// denialPrefix + request ID + denialSuffixes[reason][scheme].
const denialPrefix = `{"requestId":"`

var (
	denialSuffixes  [len(reasons)][numSchemes][]byte
	challenges      [numSchemes][]string // WWW-Authenticate
	jsonContentType = []string{"application/json"}
	headerChallenge = http.CanonicalHeaderKey("WWW-Authenticate")
	// messageHeaders is the header repeating a denial's message for the
	// scheme's clients ("" for none), messages its value.
	messageHeaders [numSchemes]string
	messages       [len(reasons)][numSchemes][]string
)

func init() {
	for r := range denialSuffixes {
		reason := Reason(r)
		for s := range numSchemes {
			message := reason.MessageFor(signature.Scheme(s))
			quoted, _ := json.Marshal(message)
			denialSuffixes[r][s] = []byte(`","error":{"code":` + strconv.Itoa(reason.HTTPStatus()) +
				`,"status":"` + reason.Status() + `","message":` + string(quoted) +
				`,"reason":"` + reason.String() + `"}}`)
			messages[r][s] = []string{message}
		}
	}
	for s := range numSchemes {
		scheme := signature.Scheme(s)
		challenges[s] = []string{scheme.Challenge()}
		if name := scheme.ErrorMessageHeader(); name != "" {
			messageHeaders[s] = http.CanonicalHeaderKey(name)
		}
	}
}

// DenialBody is the JSON body of a refused request: JD Cloud's error
// envelope plus a stable reason. WriteDenial renders it from pre-built parts;
// this type is for clients (and tests) that decode it.
type DenialBody struct {
	RequestID string      `json:"requestId"`
	Error     DenialError `json:"error"`
}

// DenialError is the "error" member of a DenialBody.
type DenialError struct {
	Code    int    `json:"code"`    // the HTTP status
	Status  string `json:"status"`  // e.g. ACCESS_ERROR
	Message string `json:"message"` // JD Cloud's message
	Reason  string `json:"reason"`  // the stable reason, e.g. signature_mismatch
	// CanonicalRequest and StringToSign are what the gateway computed, in
	// a signature_mismatch answer of a route with debug_signature.
	CanonicalRequest string `json:"canonicalRequest,omitempty"`
	StringToSign     string `json:"stringToSign,omitempty"`
}

// WriteDenial answers a refused request: the JD Cloud error envelope with a
// stable reason (docs/request-check.md) as JSON, WWW-Authenticate on a 401 (the scheme of
// the request's credentials, else the first the route allows), the
// message again in the header the scheme's clients read it from
// (Alibaba's X-Ca-Error-Message), and Retry-After on a 429. A Decision
// that is not a denial is answered as not_authorized: callers must not get
// here with one.
func WriteDenial(w http.ResponseWriter, d Decision, requestID string) {
	reason := d.Reason
	if reason == Allowed || int(reason) >= len(reasons) {
		reason = NotAuthorized
	}
	scheme := d.Identity.Scheme
	if scheme == 0 || int(scheme) >= numSchemes {
		scheme = d.fallbackScheme
	}
	status := reason.HTTPStatus()

	h := w.Header()
	h["Content-Type"] = jsonContentType
	if status == http.StatusUnauthorized && scheme != 0 {
		h[headerChallenge] = challenges[scheme]
	}
	if status == http.StatusTooManyRequests {
		setRetryAfter(h, d.Plan)
	}
	if name := messageHeaders[scheme]; name != "" {
		h[name] = messages[reason][scheme]
	}
	suffix := denialSuffixes[reason][scheme]
	body := make([]byte, 0, len(denialPrefix)+len(requestID)+len(suffix))
	body = append(body, denialPrefix...)
	body = appendJSONStringContent(body, requestID)
	if f := d.debugForm; f != nil && reason == SignatureMismatch {
		body = appendDebugForm(body, suffix, f)
	} else {
		body = append(body, suffix...)
	}
	w.WriteHeader(status)
	w.Write(body) //nolint:errcheck // the client may be gone; nothing to do about it
}

// appendDebugForm appends suffix with the canonical request and string to
// sign of f added to its error object (debug_signature).
func appendDebugForm(body, suffix []byte, f *signature.Form) []byte {
	body = append(body, suffix[:len(suffix)-len("}}")]...)
	body = append(body, `,"canonicalRequest":"`...)
	body = appendJSONStringContent(body, f.CanonicalRequest)
	body = append(body, `","stringToSign":"`...)
	body = appendJSONStringContent(body, f.StringToSign)
	return append(body, `"}}`...)
}

// appendJSONStringContent appends s escaped for a JSON string (without
// quotes); invalid UTF-8 becomes U+FFFD as encoding/json does.
func appendJSONStringContent(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			dst = append(dst, c)
			i++
			continue
		}
		if c < utf8.RuneSelf {
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, `\ufffd`...)
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return dst
}
