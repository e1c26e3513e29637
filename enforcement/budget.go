package enforcement

import (
	"errors"
	"io"
	"sync/atomic"
)

// Defaults of a BodyBudget: 256 bodies keep at most 256 MiB in memory (each
// body's first MiB); the rest of the bytes go to spool files.
const (
	DefaultBodyBufferBytes  = 1 << 30
	DefaultBodyBufferBodies = 256
)

// leaseStep is how far a lease grows ahead of a body of unknown length.
const leaseStep = memoryBodyLimit

// errOverloaded: a body being read needed more of the BodyBudget than was
// left.
var errOverloaded = errors.New("access_auth: the node's body buffer is spent")

// BodyBudget bounds what a node spends on request bodies it must read before
// it can check their signature (a body whose hash is not signed in a
// header, an Alibaba form): the bytes buffered in memory or spool files and
// the number of such bodies, across all routes. A body takes its share when
// its reading starts and gives it back when its request is done. One that
// does not fit is refused at once as Overloaded: nothing waits for room, so
// a flood of large unsigned bodies costs the node at most the budget.
// It is safe for concurrent use.
type BodyBudget struct {
	maxBytes, maxBodies atomic.Int64
	bytes, bodies       atomic.Int64 // in use
	refused             atomic.Uint64
}

// NewBodyBudget makes a budget of maxBytes bytes and maxBodies bodies.
func NewBodyBudget(maxBytes, maxBodies int64) *BodyBudget {
	b := new(BodyBudget)
	b.SetLimits(maxBytes, maxBodies)
	return b
}

// SetLimits changes the budget; bodies holding more than the new one keep
// what they hold until their requests are done.
func (b *BodyBudget) SetLimits(maxBytes, maxBodies int64) {
	b.maxBytes.Store(maxBytes)
	b.maxBodies.Store(maxBodies)
}

// InUse reports the bytes and bodies held now.
func (b *BodyBudget) InUse() (bytes, bodies int64) { return b.bytes.Load(), b.bodies.Load() }

// Refused counts the requests refused for want of budget.
func (b *BodyBudget) Refused() uint64 { return b.refused.Load() }

// take reserves n of used within limit, or nothing.
func take(used, limit *atomic.Int64, n int64) bool {
	for {
		cur := used.Load()
		if cur+n > limit.Load() {
			return false
		}
		if used.CompareAndSwap(cur, cur+n) {
			return true
		}
	}
}

// bodyLease is one body's share of a BodyBudget; the zero lease holds
// nothing.
type bodyLease struct {
	budget *BodyBudget
	bytes  int64
}

// lease takes one body and n bytes of b for l, or reports that they are
// not there.
func (b *BodyBudget) lease(l *bodyLease, n int64) bool {
	if !take(&b.bodies, &b.maxBodies, 1) {
		b.refused.Add(1)
		return false
	}
	if !take(&b.bytes, &b.maxBytes, n) {
		b.bodies.Add(-1)
		b.refused.Add(1)
		return false
	}
	*l = bodyLease{budget: b, bytes: n}
	return true
}

// grow takes n more bytes.
func (l *bodyLease) grow(n int64) bool {
	if !take(&l.budget.bytes, &l.budget.maxBytes, n) {
		l.budget.refused.Add(1)
		return false
	}
	l.bytes += n
	return true
}

// release gives the share back; it is safe to call more than once.
func (l *bodyLease) release() {
	if l.budget == nil {
		return
	}
	l.budget.bytes.Add(-l.bytes)
	l.budget.bodies.Add(-1)
	*l = bodyLease{}
}

// leasedBody reads a body within its lease, which grows a step at a time
// for a body longer than leased (one of unknown length): reading fails
// with errOverloaded when the budget has no more.
type leasedBody struct {
	body  io.Reader
	lease bodyLease
	read  int64
}

func (b *leasedBody) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if b.read < b.lease.bytes {
		n, err := b.body.Read(p[:min(int64(len(p)), b.lease.bytes-b.read)])
		b.read += int64(n)
		return n, err
	}
	// At the lease's end: only a body that goes on needs more, so a body
	// of the length it declared never asks.
	n, err := b.body.Read(p[:1])
	if n == 0 {
		return 0, err
	}
	if !b.lease.grow(leaseStep) {
		return 0, errOverloaded
	}
	b.read++
	return 1, err
}
