package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/accessauth/caddy-access-auth/internal/keyedwindow"
)

// Failed sign-ins: a client (by remote IP) that presents a wrong token
// signInFailures times within signInWindow is answered 429 until the window
// ends, whatever it presents; signInClients bounds how many clients are
// tracked at once.
const (
	signInFailures = 10
	signInWindow   = time.Minute
	signInClients  = 10_000
)

// RequireToken lets a request through to next only when it carries
// "Authorization: Bearer <token>" with one of tokens; others get 401
// {"error":…,"code":"unauthenticated"} and WWW-Authenticate: Bearer.
// Tokens are compared as SHA-256 digests in constant time, every one of
// them, so neither a token's content nor its length leaks through timing.
// Empty tokens are ignored; with none left, every request is refused.
// Failed sign-ins are logged with the client's address (never what it
// presented), and a client that keeps failing is answered 429 for a while.
func RequireToken(tokens []string, logger *zap.Logger, next http.Handler) http.Handler {
	digests := make([][sha256.Size]byte, 0, len(tokens))
	for _, t := range tokens {
		if t != "" {
			digests = append(digests, sha256.Sum256([]byte(t)))
		}
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	failures := keyedwindow.New(signInWindow, signInClients)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		client, now := remoteIP(r), time.Now()
		if n, resetIn := failures.Count(client, now); n >= signInFailures {
			w.Header().Set("Retry-After", strconv.Itoa(int((resetIn+time.Second-1)/time.Second)))
			writeError(w, &apiError{http.StatusTooManyRequests, "rate_limited", "too many failed sign-ins from this address; try again later"})
			return
		}
		if presented, found := bearerToken(r); found && tokenMatches(digests, presented) {
			failures.Reset(client)
			next.ServeHTTP(w, r)
			return
		}
		if n := failures.Add(client, now); n > 0 {
			logger.Warn("admin sign-in failed: no valid bearer token",
				zap.String("remote_ip", client), zap.Int("failures", n), zap.Int("failures_allowed", signInFailures),
				zap.Duration("window", signInWindow))
		}
		w.Header().Set("WWW-Authenticate", "Bearer")
		writeError(w, &apiError{http.StatusUnauthorized, "unauthenticated", "a valid bearer token is required"})
	})
}

// remoteIP is the address of the client's connection, without its port.
func remoteIP(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
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
