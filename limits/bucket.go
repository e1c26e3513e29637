package limits

import (
	"math"
	"time"
)

// bucket is a token bucket: it holds up to capacity tokens and gains one
// every interval; a request takes one. It starts full.
type bucket struct {
	capacity float64
	interval time.Duration // time to gain one token
	tokens   float64
	at       time.Time // when tokens was last brought up to date
}

// reshape gives the bucket a new capacity and refill, keeping the tokens it
// holds (up to the new capacity); a bucket never used starts full.
func (b *bucket) reshape(capacity float64, interval time.Duration, now time.Time) {
	if b.at.IsZero() {
		b.tokens = capacity
		b.at = now
	} else {
		b.refill(now)
	}
	b.capacity, b.interval = capacity, interval
	b.tokens = min(b.tokens, capacity)
}

func (b *bucket) refill(now time.Time) {
	if elapsed := now.Sub(b.at); elapsed > 0 {
		b.tokens = min(b.capacity, b.tokens+float64(elapsed)/float64(b.interval))
		b.at = now
	}
}

// ready reports whether a token is there at now; if not, wait is how long
// until one is.
func (b *bucket) ready(now time.Time) (ok bool, wait time.Duration) {
	b.refill(now)
	if b.tokens >= 1 {
		return true, 0
	}
	return false, time.Duration(math.Ceil((1 - b.tokens) * float64(b.interval)))
}

// take spends a token ready found.
func (b *bucket) take() { b.tokens-- }

// remaining is how many whole tokens are left.
func (b *bucket) remaining() int64 { return int64(b.tokens) }

// untilFull is how long until the bucket is full again.
func (b *bucket) untilFull() time.Duration {
	return time.Duration(math.Ceil((b.capacity - b.tokens) * float64(b.interval)))
}
