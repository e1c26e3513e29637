package replay

import (
	"context"
	"sync/atomic"
	"time"
)

// Fallback is replay protection in the shared store that falls back to
// this node's table (its stand-in) while the store cannot be reached, so
// that cached keys keep serving through an outage (docs/coherence.md) and
// a replay to this node is still refused. Every nonce goes to the stand-in
// too, the ones the store answers for included: a request this node
// accepted before the store went away is then still refused when replayed
// to it. The nonces accepted during an outage are known only here: for as
// long as they could be replayed (their ttl), a nonce the store calls
// fresh is refused when the stand-in has it.
type Fallback struct {
	shared  Seer
	standIn *LocalNonces
	// checkLocalUntil is when (Unix nanoseconds) the last nonce recorded
	// only in the stand-in expires.
	checkLocalUntil atomic.Int64
}

// NewFallback makes replay protection in shared with standIn as stand-in.
func NewFallback(shared Seer, standIn *LocalNonces) *Fallback {
	return &Fallback{shared: shared, standIn: standIn}
}

// Prepare locates the nonce in the stand-in and starts loading its bucket
// (LocalNonces.Prepare): Record records it there first, before it waits
// for the store, so the load overlaps the signature's verification and
// the store's round trip starts with the bucket's work done.
func (n *Fallback) Prepare(apiKey, nonce string) Ticket {
	return n.standIn.Prepare(apiKey, nonce)
}

// Record records the nonce in the stand-in, then asks the shared store;
// the stand-in's answer counts when the store fails or failed recently.
// It never says Unavailable.
func (n *Fallback) Record(ctx context.Context, t Ticket, date, now time.Time, ttl time.Duration) Verdict {
	if t.place.bucket == nil {
		t.place = n.standIn.locate(t.APIKey, t.Nonce)
	}
	// The stand-in's horizon refuses as a replay: it may not narrow the
	// dates the store vouches for.
	seenHere := n.standIn.record(t.place, now, ttl) != Fresh
	seen, err := n.shared.Seen(ctx, t.APIKey, t.Nonce, date, ttl)
	if err != nil {
		raise64(&n.checkLocalUntil, now.Add(ttl).UnixNano())
		return verdict(seenHere)
	}
	if seen || now.UnixNano() >= n.checkLocalUntil.Load() {
		return verdict(seen)
	}
	return verdict(seenHere)
}

// Peek is Record's verdict for t at now, recording nothing: the store's
// answer, or the stand-in's where Record would take it.
func (n *Fallback) Peek(ctx context.Context, t Ticket, date, now time.Time, ttl time.Duration) Verdict {
	seen, err := n.shared.Recorded(ctx, t.APIKey, t.Nonce, date)
	if t.place.bucket == nil {
		t.place = n.standIn.locate(t.APIKey, t.Nonce)
	}
	seenHere := n.standIn.visit(t.place, now, ttl, false) != Fresh
	if err != nil || (!seen && now.UnixNano() < n.checkLocalUntil.Load()) {
		return verdict(seenHere)
	}
	return verdict(seen)
}

// raise64 raises v to until unless it is later already.
func raise64(v *atomic.Int64, until int64) {
	for old := v.Load(); old < until && !v.CompareAndSwap(old, until); old = v.Load() {
	}
}

func verdict(seen bool) Verdict {
	if seen {
		return Replayed
	}
	return Fresh
}

// Interface guards
var (
	_ Guard  = (*Fallback)(nil)
	_ Peeker = (*Fallback)(nil)
	_ Peeker = (*LocalNonces)(nil)
	_ Seer   = (*LocalNonces)(nil)
)
