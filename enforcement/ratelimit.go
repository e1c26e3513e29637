package enforcement

import (
	"net/http"
	"strconv"

	"github.com/accessauth/caddy-access-auth/limits"
)

// The headers of an answer a usage plan governs (docs/usage-plans.md).
var (
	headerRetryAfter         = http.CanonicalHeaderKey("Retry-After")
	headerRateLimitLimit     = http.CanonicalHeaderKey("RateLimit-Limit")
	headerRateLimitRemaining = http.CanonicalHeaderKey("RateLimit-Remaining")
	headerRateLimitReset     = http.CanonicalHeaderKey("RateLimit-Reset")
)

// SetRateLimitHeaders sets RateLimit-Limit, RateLimit-Remaining and
// RateLimit-Reset (seconds) of the budget closest to running out, when a
// plan governed the request; the three values share one allocation.
func SetRateLimitHeaders(h http.Header, plan limits.Result) {
	if !plan.Applied {
		return
	}
	values := [3]string{
		strconv.FormatInt(plan.Limit, 10),
		strconv.FormatInt(plan.Remaining, 10),
		strconv.FormatInt(plan.Reset, 10),
	}
	h[headerRateLimitLimit] = values[0:1:1]
	h[headerRateLimitRemaining] = values[1:2:2]
	h[headerRateLimitReset] = values[2:3:3]
}

// setRetryAfter tells a caller refused by a plan how many whole seconds to
// wait (at least 1).
func setRetryAfter(h http.Header, plan limits.Result) {
	h[headerRetryAfter] = []string{strconv.FormatInt(max(1, plan.RetryAfter), 10)}
}
