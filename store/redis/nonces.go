package redisstore

import (
	"context"
	"fmt"
	"hash/fnv"
	"runtime"
	"strconv"
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
// system calls, goroutine wake-ups and Redis's per-command work than in
// recording a nonce; so concurrent Seen calls share one command: while one
// batch is on the wire, the calls that arrive queue up and go together in
// the next (group commit), as one run of the nonce script, which sets each
// of its keys with SET NX PX and answers for each. A lone call is a batch
// of one and goes at once. A script's keys must share a Cluster slot: in a
// Cluster a nonce's key carries one of nonceSlotGroups hash tags, picked
// by the key's hash, so nonces still spread over the masters, and a batch
// is one script per tag present (pipelined). Whatever the batching, every
// nonce is one key set with NX in one place, so a replay to any node is
// refused (docs/replay-protection.md).
type Nonces struct {
	client redis.UniversalClient
	prefix string // "<KeyPrefix>:nonce:"
	// cluster: keys carry a slot group's hash tag.
	cluster bool
	// pipe is the lean path to a standalone server (nil: Cluster,
	// Sentinel), which sends the same script with a fraction of the CPU.
	pipe *noncePipe

	mu       sync.Mutex
	queue    []*nonceCall // the calls waiting for the next pipeline
	spare    []*nonceCall // the array of the last batch, reused
	flushing bool         // a pipeline is being sent; its sender hands over when done
	busy     atomic.Bool  // the last batch had company
}

// nonceScriptSource sets each KEYS[i] to 1 with NX and ARGV[i] as its
// time to live in milliseconds, and answers 1 for a key it set (fresh), 0
// for one that was there (a replay).
const nonceScriptSource = `local r = {}
for i = 1, #KEYS do
  r[i] = redis.call('SET', KEYS[i], '1', 'PX', ARGV[i], 'NX') and 1 or 0
end
return r`

var nonceScript = redis.NewScript(nonceScriptSource)

// nonceSlotGroups is how many hash tags a Cluster's nonce keys spread
// over: a batch of concurrent calls is at most this many scripts, and the
// keys of 16 slots far apart land on every master of a Cluster of up to 16.
const nonceSlotGroups = 16

// nonceSlotTags are the hash tags of the slot groups, "{n<i>}", each
// chosen so that its slot lies in its own sixteenth of the 16384 slots.
var nonceSlotTags = func() (tags [nonceSlotGroups]string) {
	for i, found := 0, 0; found < nonceSlotGroups; i++ {
		tag := "n" + strconv.Itoa(i)
		if g := int(clusterSlot(tag)) * nonceSlotGroups / 16384; tags[g] == "" {
			tags[g] = "{" + tag + "}"
			found++
		}
	}
	return tags
}()

// clusterSlot is Redis Cluster's slot of a key without braces: CRC-16
// (XMODEM) modulo 16384.
func clusterSlot(key string) uint16 {
	var crc uint16
	for i := 0; i < len(key); i++ {
		crc ^= uint16(key[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc % 16384
}

// nonceCall is one Seen waiting for its batch.
type nonceCall struct {
	// The key is prefix + apiKey + ":" + nonce (the nonce pipe writes it
	// from its parts); group is its slot group in a Cluster.
	key                   string
	prefix, apiKey, nonce string
	group                 int
	ttl                   time.Duration
	fresh                 bool
	err                   error
	// done receives false with the result set, or true when the call
	// must send the next batch itself (the nonce pipe then answers it
	// with false too).
	done chan bool
	// abandoned: the caller gave up waiting (the nonce pipe does not
	// hand it the next batch).
	abandoned bool
}

var nonceCalls = sync.Pool{New: func() any { return &nonceCall{done: make(chan bool, 1)} }}

// Nonces returns the nonce store on the backend's client. In a Cluster its
// keys carry one of nonceSlotGroups hash tags, so they spread over the
// masters.
func (b *Backend) Nonces() *Nonces {
	_, cluster := b.client.(*redis.ClusterClient)
	n := &Nonces{client: b.client, prefix: b.prefix + ":nonce:", cluster: cluster, pipe: newNoncePipe(b.client)}
	if n.pipe != nil {
		context.AfterFunc(b.closing, n.pipe.close)
	}
	return n
}

// Seen records apiKey+nonce for ttl (SET NX PX, in a batch's script) and
// reports whether it was recorded already (the request is a replay). A ttl under a
// millisecond counts as one: a nonce key must never live forever.
func (n *Nonces) Seen(ctx context.Context, apiKey, nonce string, date time.Time, ttl time.Duration) (bool, error) {
	if n.pipe != nil {
		fresh, err := n.pipe.seen(ctx, n.prefix, apiKey, nonce, ttl)
		if err != nil {
			return false, redisUnavailable(err)
		}
		return !fresh, nil
	}
	call := nonceCalls.Get().(*nonceCall)
	call.key, call.group = n.key(apiKey, nonce)
	call.ttl = ttl
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
func (n *Nonces) Recorded(ctx context.Context, apiKey, nonce string, date time.Time) (bool, error) {
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

	n.run(ctx, batch)
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

// key is the Redis key of apiKey's nonce and, in a Cluster, its slot
// group (0 elsewhere).
func (n *Nonces) key(apiKey, nonce string) (string, int) {
	if !n.cluster {
		return n.prefix + apiKey + ":" + nonce, 0
	}
	h := fnv.New32a()
	h.Write([]byte(apiKey))
	h.Write([]byte{0})
	h.Write([]byte(nonce))
	group := int(h.Sum32() % nonceSlotGroups)
	return n.prefix + nonceSlotTags[group] + ":" + apiKey + ":" + nonce, group
}

// run records batch's nonces: one script for the whole batch, or, in a
// Cluster, one per slot group, pipelined (go-redis sends each to its
// master).
func (n *Nonces) run(ctx context.Context, batch []*nonceCall) {
	groups := [nonceSlotGroups][]*nonceCall{}
	for _, c := range batch {
		groups[c.group] = append(groups[c.group], c)
	}
	cmds := make([]*redis.Cmd, len(groups))
	// Each script's error is read below; Pipelined's is the first of them.
	_, _ = n.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for g, calls := range groups {
			if len(calls) == 0 {
				continue
			}
			keys := make([]string, len(calls))
			ttls := make([]any, len(calls))
			for i, c := range calls {
				keys[i], ttls[i] = c.key, ttlMilliseconds(c.ttl)
			}
			cmds[g] = nonceScript.Eval(ctx, p, keys, ttls...)
		}
		return nil
	})
	for g, calls := range groups {
		if len(calls) == 0 {
			continue
		}
		fresh, err := cmds[g].Int64Slice()
		if err == nil && len(fresh) != len(calls) {
			err = fmt.Errorf("%w: %d answers for %d nonces", errPipeProtocol, len(fresh), len(calls))
		}
		for i, c := range calls {
			c.err = err
			c.fresh = err == nil && fresh[i] == 1
		}
	}
}

// ttlMilliseconds is a nonce's time to live as Redis takes it: a ttl under
// a millisecond counts as one, for a nonce key must never live forever.
func ttlMilliseconds(ttl time.Duration) int64 { return max(ttl.Milliseconds(), 1) }
