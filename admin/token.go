package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

// RequireToken lets a request through to next only when it carries
// "Authorization: Bearer <token>" with one of tokens; others get 401
// {"error":…,"code":"unauthenticated"} and WWW-Authenticate: Bearer.
// Tokens are compared as SHA-256 digests in constant time, every one of
// them, so neither a token's content nor its length leaks through timing.
// Empty tokens are ignored; with none left, every request is refused.
func RequireToken(tokens []string, next http.Handler) http.Handler {
	digests := make([][sha256.Size]byte, 0, len(tokens))
	for _, t := range tokens {
		if t != "" {
			digests = append(digests, sha256.Sum256([]byte(t)))
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if presented, found := bearerToken(r); found && tokenMatches(digests, presented) {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("WWW-Authenticate", "Bearer")
		writeError(w, &apiError{http.StatusUnauthorized, "unauthenticated", "a valid bearer token is required"})
	})
}

// bearerToken reads the token of an Authorization: Bearer header; the
// scheme name is case-insensitive (RFC 9110 §11.1).
func bearerToken(r *http.Request) (string, bool) {
	scheme, token, found := strings.Cut(r.Header.Get("Authorization"), " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

func tokenMatches(digests [][sha256.Size]byte, token string) bool {
	presented := sha256.Sum256([]byte(token))
	match := 0
	for i := range digests {
		match |= subtle.ConstantTimeCompare(presented[:], digests[i][:])
	}
	return match == 1
}
