package enforcement

import (
	"net/http"
	"strconv"

	"github.com/accessauth/caddy-access-auth/signature"
)

// reasonInfo is one row of the table of reasons (docs/request-check.md).
type reasonInfo struct {
	code    string
	status  int
	message string
}

// missingHeaderMessage starts the message of a missing header.
const missingHeaderMessage = "lack of header "

var reasons = [...]reasonInfo{
	Allowed:              {"allowed", http.StatusOK, "OK"},
	MissingCredentials:   {"missing_credentials", http.StatusUnauthorized, "lack of header authorization"},
	MalformedCredentials: {"malformed_credentials", http.StatusUnauthorized, "lack of credential in the header authorization"},
	MissingDate:          {"missing_date", http.StatusUnauthorized, missingHeaderMessage + "x-jdcloud-date"},
	MissingSignedHeaders: {"missing_signed_headers", http.StatusUnauthorized, "lack of header signedHeaders"},
	MissingNonce:         {"missing_nonce", http.StatusUnauthorized, missingHeaderMessage + "x-jdcloud-nonce"},
	InvalidKey:           {"invalid_key", http.StatusUnauthorized, "Invalid accessKey"},
	SignatureMismatch:    {"signature_mismatch", http.StatusUnauthorized, "sign result is not same"},
	DateOutOfRange:       {"date_out_of_range", http.StatusUnauthorized, "request date is out of the allowed range"},
	ReplayedNonce:        {"replayed_nonce", http.StatusUnauthorized, "nonce has been used"},
	NotAuthorized:        {"not_authorized", http.StatusForbidden, "access key is not authorized for this API group"},
	IPNotAllowed:         {"ip_not_allowed", http.StatusForbidden, "Your IP address is not allowed"},
	BodyTooLarge:         {"body_too_large", http.StatusRequestEntityTooLarge, "Payload too large"},
	RateLimited:          {"rate_limited", http.StatusTooManyRequests, "request rate limit exceeded"},
	QuotaExceeded:        {"quota_exceeded", http.StatusTooManyRequests, "request quota exceeded"},
	StoreUnavailable:     {"store_unavailable", http.StatusServiceUnavailable, "store unavailable"},
	Overloaded:           {"overloaded", http.StatusServiceUnavailable, "server is busy"},
}

func (r Reason) info() reasonInfo {
	if int(r) < len(reasons) {
		return reasons[r]
	}
	return reasonInfo{"reason(" + strconv.Itoa(int(r)) + ")", http.StatusUnauthorized, "unknown reason"}
}

// String is the stable reason code of the error body, e.g. signature_mismatch.
func (r Reason) String() string { return r.info().code }

// HTTPStatus is the status code of the answer.
func (r Reason) HTTPStatus() int { return r.info().status }

// Status is the STATUS of the JD Cloud error envelope, e.g. ACCESS_ERROR.
func (r Reason) Status() string { return statusName(r.info().status) }

// Message is the message of the table of reasons (JD Cloud's wording).
func (r Reason) Message() string { return r.info().message }

// MessageFor is Message with the header names of scheme where they differ
// from JD Cloud's (missing_date and missing_nonce): the table's (JD Cloud's)
// message stays for a scheme without the header.
func (r Reason) MessageFor(scheme signature.Scheme) string {
	var header string
	switch r {
	case MissingDate:
		header = scheme.DateHeader()
	case MissingNonce:
		header = scheme.NonceHeader()
	}
	if header == "" {
		return r.Message()
	}
	return missingHeaderMessage + header
}

func statusName(code int) string {
	switch code {
	case http.StatusOK:
		return "OK"
	case http.StatusUnauthorized:
		return "ACCESS_ERROR"
	case http.StatusForbidden:
		return "HTTP_FORBIDDEN"
	case http.StatusRequestEntityTooLarge:
		return "HTTP_REQUEST_ENTITY_TOO_LARGE"
	case http.StatusTooManyRequests:
		return "HTTP_TOO_MANY_REQUESTS"
	case http.StatusServiceUnavailable:
		return "HTTP_SERVICE_UNAVAILABLE"
	}
	return "UNKNOWN"
}
