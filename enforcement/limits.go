package enforcement

import (
	"errors"
	"fmt"
	"time"
)

// CheckMaxSkew is the rule of a route's max_skew, worded once for the Caddy
// config and NewChecker; zero stands for DefaultMaxSkew.
func CheckMaxSkew(d time.Duration) error {
	switch {
	case d < 0:
		return errors.New("max_skew: must not be negative")
	case d > MaxMaxSkew:
		return fmt.Errorf("max_skew: at most 7d (a request signed that long ago is still accepted), got %s", d)
	}
	return nil
}

// CheckMaxBody is the rule of a route's max_body, likewise; zero stands for
// DefaultMaxBody.
func CheckMaxBody(n int64) error {
	if n < 0 {
		return errors.New("max_body: must not be negative")
	}
	return nil
}
