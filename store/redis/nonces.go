package redisstore

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Nonces remembers request nonces in Redis for replay protection, so a
// replay is caught whichever node it reaches. It has the method of
// enforcement.NonceStore.
//
// Every request asks Redis once, which at gateway rates costs more in
// system calls and goroutine wake-ups than in Redis itself; so concurrent
// Seen calls share round trips: while one pipeline is on the wire, the
// calls that arrive queue up and go together in the next (group commit).
// A lone call goes at once, alone, as before.
type Nonces struct {
	client redis.UniversalClient
	prefix string // "<KeyPrefix>:nonce:"
	// pipe is the lean path to a standalone server (nil: Cluster,
	// Sentinel), which sends the same SETs with a fraction of the CPU.
	pipe *noncePipe

	mu       sync.Mutex
	queue    []*nonceCall // the calls waiting for the next pipeline
	spare    []*nonceCall // the array of the last batch, reused
	flushing bool         // a pipeline is being sent; its sender hands over when done
	busy     atomic.Bool  // the last batch had company
}

// nonceCall is one Seen waiting for its batch.
type nonceCall struct {
	key   string
	ttl   time.Duration
	fresh bool
	err   error
	// done receives false with the result set, or true when the call
	// must send the next batch itself (the nonce pipe then answers it
	// with false too).
	done chan bool
	// abandoned: the caller gave up waiting (the nonce pipe does not
	// hand it the next batch).
	abandoned bool
}

var nonceCalls = sync.Pool{New: func() any { return &nonceCall{done: make(chan bool, 1)} }}

// Nonces returns the nonce store on the backend's client. Its keys carry no
// hash tag, so they spread over the nodes of a Cluster.
func (b *Backend) Nonces() *Nonces {
	n := &Nonces{client: b.client, prefix: b.prefix + ":nonce:", pipe: newNoncePipe(b.client)}
	if n.pipe != nil {
		context.AfterFunc(b.closing, n.pipe.close)
	}
	return n
}

// Seen records apiKey+nonce for ttl with one SET NX PX and reports whether
// it was recorded already (the request is a replay). A ttl under a
// millisecond counts as one: a nonce key must never live forever.
func (n *Nonces) Seen(ctx context.Context, apiKey, nonce string, ttl time.Duration) (bool, error) {
	if n.pipe != nil {
		fresh, err := n.pipe.seen(ctx, n.prefix, apiKey, nonce, ttl)
		if err != nil {
			return false, redisUnavailable(err)
		}
		return !fresh, nil
	}
	call := nonceCalls.Get().(*nonceCall)
	call.key, call.ttl = n.prefix+apiKey+":"+nonce, max(ttl, time.Millisecond)
	n.mu.Lock()
	n.queue = append(n.queue, call)
	lead := !n.flushing
	n.flushing = true
	n.mu.Unlock()
	if lead || <-call.done {
		// The batch is shared: one caller's cancellation must not fail
		// the others (the client's timeouts bound it).
		n.flush(context.WithoutCancel(ctx), call)
	}
	fresh, err := call.fresh, call.err
	*call = nonceCall{done: call.done}
	nonceCalls.Put(call)
	if err != nil {
		return false, redisUnavailable(err)
	}
	return !fresh, nil
}

// Recorded reports whether apiKey+nonce is recorded (EXISTS), recording
// nothing: explaining a request must not spend its nonce.
func (n *Nonces) Recorded(ctx context.Context, apiKey, nonce string) (bool, error) {
	count, err := n.client.Exists(ctx, n.prefix+apiKey+":"+nonce).Result()
	if err != nil {
		return false, redisUnavailable(err)
	}
	return count > 0, nil
}

// flush sends the queued calls (own among them) in one pipeline and
// answers them, then hands the sending to the first call queued meanwhile,
// or ends the flushing.
func (n *Nonces) flush(ctx context.Context, own *nonceCall) {
	if n.busy.Load() {
		// Under load, let the requests that are already running reach the
		// queue: a bigger batch for the price of a yield.
		runtime.Gosched()
	}
	n.mu.Lock()
	batch := n.queue
	n.queue, n.spare = n.spare[:0], nil
	n.mu.Unlock()

	if len(batch) == 1 {
		c := batch[0]
		c.fresh, c.err = n.client.SetNX(ctx, c.key, "1", c.ttl).Result()
	} else {
		cmds := make([]*redis.BoolCmd, len(batch))
		// Each command's error is read below; Pipelined's is the first of them.
		_, _ = n.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, c := range batch {
				cmds[i] = p.SetNX(ctx, c.key, "1", c.ttl)
			}
			return nil
		})
		for i, c := range batch {
			c.fresh, c.err = cmds[i].Result()
		}
	}
	for i, c := range batch {
		batch[i] = nil // the array is reused; the calls go back to their pool
		if c != own {
			c.done <- false
		}
	}

	n.busy.Store(len(batch) > 1)
	n.mu.Lock()
	if len(n.queue) > 0 {
		n.queue[0].done <- true
	} else {
		n.flushing = false
	}
	n.spare = batch[:0]
	n.mu.Unlock()
}
