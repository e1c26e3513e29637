// Package replay is replay protection: it remembers the nonces of accepted
// requests so that a replay is refused (docs/replay-protection.md). It
// holds the node's own table (LocalNonces) with its file, the shared
// store's combinator with that table as stand-in (Fallback), and the
// replay_protection mode. It does not import Caddy; caddymodule wires it.
//
// With several nodes the nonces live in the shared store (a Seer: the
// Redis engine's nonce client), filed by the request's signed second: in
// Redis one set per second, a nonce one member "<apiKey>:<nonce>" (in a
// Redis Cluster one set per second and hash tag, the tags spreading the
// nonces over the masters). The round trip is its cost, so the client
// batches across concurrent requests: while one batch is on the wire the
// next gathers, and goes as one command, a script that checks each set's
// members at once (SMISMEMBER), adds the fresh ones (SADD) and only ever
// lengthens the set's expiry. The guarantee does not depend on the
// batching: a nonce is one member of one set, checked and added in one
// script, and a replay carries its original's signed date, so of two
// requests with one nonce, on one node or two, in one batch or two, only
// the first is fresh; a batch that fails fails each of its calls, which
// Fallback then answers from the node's table
// (docs/replay-protection.md).
package replay

import (
	"context"
	"time"
)

// Guard is replay protection as the check sees it, whatever keeps the
// nonces. A check asks in two phases: Prepare as soon as it knows the
// nonce, Record once the signature is verified. Prepare lets the node's
// table load the nonce's bucket while the signature is verified (the HMAC
// work hides the cache miss); for a store across the network it does
// nothing.
type Guard interface {
	// Prepare locates apiKey's nonce. The strings may point into a
	// request's headers: a Guard that keeps them must copy them.
	Prepare(apiKey, nonce string) Ticket
	// Record records the nonce of t for ttl from now, the check's clock
	// reading, and says whether it was fresh. date is the request's signed
	// date: a table may not vouch for requests signed that long ago.
	Record(ctx context.Context, t Ticket, date, now time.Time, ttl time.Duration) Verdict
}

// Peeker is a Guard that can tell what Record would say without recording
// anything, for explaining a request (docs/explain.md): an explained
// request must not spend the nonce its real retry will carry.
type Peeker interface {
	// Peek is Record's verdict for t at now, with nothing recorded:
	// Fresh when the nonce is not recorded.
	Peek(ctx context.Context, t Ticket, date, now time.Time, ttl time.Duration) Verdict
}

// Ticket is a nonce as Prepare located it.
type Ticket struct {
	APIKey, Nonce string
	place         noncePlace // in the node's table; zero until LocalNonces located it
}

// Verdict is what a Guard says of a nonce.
type Verdict uint8

const (
	Fresh    Verdict = iota // not seen: recorded now
	Replayed                // recorded already and unexpired
	// TooOld is a request signed longer ago than the guard can vouch for:
	// its nonce may have been dropped, or the table started empty after a
	// crash (date_out_of_range).
	TooOld
	Unavailable // the store could not be asked
)

// Seer is a shared nonce store across the network: the Redis engine's
// nonce client. Seen records apiKey's nonce for ttl and reports whether it
// had been recorded before. date is the request's signed date: a store
// may file the nonce under it (Redis keeps a set of nonces per signed
// second), so a replay, which carries the same date, is looked up in the
// same place.
type Seer interface {
	Seen(ctx context.Context, apiKey, nonce string, date time.Time, ttl time.Duration) (bool, error)
	// Recorded reports whether apiKey's nonce of a request signed at date
	// is recorded (and unexpired), recording nothing.
	Recorded(ctx context.Context, apiKey, nonce string, date time.Time) (bool, error)
}
