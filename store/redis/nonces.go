package redisstore

import (
	"cmp"
	"context"
	"fmt"
	"hash/fnv"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Nonces remembers request nonces in Redis for replay protection, so a
// replay is caught whichever node it reaches (docs/replay-protection.md).
// It has the method of replay.Seer.
//
// Layout: one set per signed second, not one key per nonce. A nonce of a
// request signed at Unix second s is the member "<apiKey>:<nonce>" of the
// set "<KeyPrefix>:nonce:<s>" (in a Cluster "<KeyPrefix>:nonce:{n<i>}:<s>",
// one of nonceSlotGroups hash tags picked by the nonce's hash, so that the
// nonces still spread over the masters). A replay carries the signed date
// its signature covers, so it is looked up in the set of its original. A
// set lives for the nonce ttl counted from the end of its second; a write
// only ever lengthens that, never shortens it (nodes whose clocks differ
// ask for slightly different ttls). Members cost Redis far less than keys
// with their own expiry: no key object, no entry in the expiry table, and
// a second's nonces are dropped at once (docs/operations.md advises
// lazyfree-lazy-expire for that).
//
// Every request asks Redis once, which at gateway rates costs more in
// system calls, goroutine wake-ups and Redis's per-command work than in
// recording a nonce; so concurrent Seen calls share one command: while one
// batch is on the wire, the calls that arrive queue up and go together in
// the next (group commit), as one run of the nonce script. The script
// takes the batch sorted by set, and for each set asks SMISMEMBER for its
// members (SISMEMBER each on Redis before 6.2), answers 1 (fresh) for a
// member that was absent and not already named earlier in the batch, 0
// otherwise, adds the fresh ones with one SADD and lengthens the set's
// expiry if it is shorter than asked. A lone call is a batch of one and
// goes at once. A script's keys must share a Cluster slot: a batch is one
// script per hash tag present (pipelined).
//
// The guarantee does not depend on the batching: a nonce is one member of
// one set, checked and added within one script (Redis runs scripts one at
// a time), so of two requests with one nonce and date, on one node or two,
// in one batch or two, only the first is fresh.
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

// nonceScriptSource records a batch of nonces in their sets. KEYS are
// the sets, in runs: a set's nonces may come in several consecutive runs
// (a long one is cut, see maxRunMembers). ARGV holds, for each KEYS[k],
// the set's ttl in milliseconds, the number of members n, then the n
// members. It answers, in the order of the members, 1 for a fresh one
// (recorded now) and 0 for one recorded before or earlier in the batch (a
// replay). SMISMEMBER is Redis 6.2's; before it (or where it is renamed
// away) SISMEMBER asks for each member.
const nonceScriptSource = `local r, a = {}, 1
for k = 1, #KEYS do
  local key, ttl, n = KEYS[k], tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  local first, last = a + 2, a + 1 + n
  a = last + 1
  local had = redis.pcall('SMISMEMBER', key, unpack(ARGV, first, last))
  if type(had) ~= 'table' or had.err then
    had = {}
    for i = first, last do had[i - first + 1] = redis.call('SISMEMBER', key, ARGV[i]) end
  end
  local add, named = {}, {}
  for i = first, last do
    local m = ARGV[i]
    if had[i - first + 1] == 0 and not named[m] then
      add[#add + 1] = m
      r[#r + 1] = 1
    else
      r[#r + 1] = 0
    end
    named[m] = true
  end
  if #add > 0 then
    redis.call('SADD', key, unpack(add))
    if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl) end
  end
end
return r`

var nonceScript = redis.NewScript(nonceScriptSource)

// NonceScriptCommands are the commands the nonce script runs inside
// Redis. INFO commandstats counts them besides the EVALSHA (or EVAL) that
// ran them; a count of the commands clients send leaves them out.
var NonceScriptCommands = []string{"smismember", "sismember", "sadd", "pttl", "pexpire"}

// maxRunMembers bounds the members of one run of the script's input, so
// that unpack stays far within Lua's stack (8000); a longer run of one
// set is cut into several, which the script checks one after the other,
// so a nonce named twice is still a replay the second time.
const maxRunMembers = 1000

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
	apiKey, nonce string
	// second is the Unix second of the request's signed date, which names
	// the nonce's set; group is its slot group in a Cluster (0 elsewhere).
	second int64
	group  int
	// ttl is the set's time to live this call asks for: the nonce's ttl
	// counted from the end of its second.
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

// Nonces returns the nonce store on the backend's client. In a Cluster its
// keys carry one of nonceSlotGroups hash tags, so they spread over the
// masters.
func (b *Backend) Nonces() *Nonces {
	_, cluster := b.client.(*redis.ClusterClient)
	prefix := b.prefix + ":nonce:"
	n := &Nonces{client: b.client, prefix: prefix, cluster: cluster, pipe: newNoncePipe(b.client, prefix)}
	if n.pipe != nil {
		context.AfterFunc(b.closing, n.pipe.close)
	}
	return n
}

// Seen records apiKey+nonce of a request signed at date for ttl, in the
// set of date's second (in a batch's script), and reports whether it was
// recorded already (the request is a replay). The set is kept for ttl
// from the end of that second; a ttl under a millisecond counts as one: a
// set must never live forever.
func (n *Nonces) Seen(ctx context.Context, apiKey, nonce string, date time.Time, ttl time.Duration) (bool, error) {
	call := nonceCalls.Get().(*nonceCall)
	call.apiKey, call.nonce = apiKey, nonce
	call.second, call.group = date.Unix(), n.group(apiKey, nonce)
	call.ttl = ttl + time.Unix(call.second+1, 0).Sub(date)
	if n.pipe != nil {
		fresh, err := n.pipe.seen(ctx, call)
		if err != nil {
			return false, redisUnavailable(err)
		}
		return !fresh, nil
	}
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

// Recorded reports whether apiKey+nonce of a request signed at date is
// recorded (SISMEMBER), recording nothing: explaining a request must not
// spend its nonce.
func (n *Nonces) Recorded(ctx context.Context, apiKey, nonce string, date time.Time) (bool, error) {
	key := n.key(n.group(apiKey, nonce), date.Unix())
	found, err := n.client.SIsMember(ctx, key, apiKey+":"+nonce).Result()
	if err != nil {
		return false, redisUnavailable(err)
	}
	return found, nil
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

// group is the slot group of apiKey's nonce in a Cluster (0 elsewhere).
func (n *Nonces) group(apiKey, nonce string) int {
	if !n.cluster {
		return 0
	}
	h := fnv.New32a()
	h.Write([]byte(apiKey))
	h.Write([]byte{0})
	h.Write([]byte(nonce))
	return int(h.Sum32() % nonceSlotGroups)
}

// key is the Redis key of the set of second's nonces in group.
func (n *Nonces) key(group int, second int64) string {
	if !n.cluster {
		return n.prefix + strconv.FormatInt(second, 10)
	}
	return n.prefix + nonceSlotTags[group] + ":" + strconv.FormatInt(second, 10)
}

// sortNonceCalls sorts batch by set (slot group, then second), keeping
// the order of the calls of one set: the script takes each set's members
// together.
func sortNonceCalls(batch []*nonceCall) {
	bySet := func(a, b *nonceCall) int {
		if c := cmp.Compare(a.group, b.group); c != 0 {
			return c
		}
		return cmp.Compare(a.second, b.second)
	}
	if !slices.IsSortedFunc(batch, bySet) {
		slices.SortStableFunc(batch, bySet)
	}
}

// nextRun returns the length of the first run of sorted: its calls of one
// set, at most maxRunMembers, and the longest ttl they ask for.
func nextRun(sorted []*nonceCall) (int, time.Duration) {
	ttl := sorted[0].ttl
	i := 1
	for ; i < len(sorted) && i < maxRunMembers; i++ {
		c := sorted[i]
		if c.group != sorted[0].group || c.second != sorted[0].second {
			break
		}
		ttl = max(ttl, c.ttl)
	}
	return i, ttl
}

// run records batch's nonces: one script for the whole batch, or, in a
// Cluster, one per slot group, pipelined (go-redis sends each to its
// master). The scripts go as EVALSHA; a server that does not know the
// script (a restart, SCRIPT FLUSH) is sent it in full.
func (n *Nonces) run(ctx context.Context, batch []*nonceCall) {
	sortNonceCalls(batch)
	type script struct {
		calls []*nonceCall
		keys  []string
		args  []any
		cmd   *redis.Cmd
	}
	var scripts []*script
	for i := 0; i < len(batch); {
		s := &script{}
		for j := i; j < len(batch) && batch[j].group == batch[i].group; {
			size, ttl := nextRun(batch[j:])
			s.keys = append(s.keys, n.key(batch[j].group, batch[j].second))
			s.args = append(s.args, ttlMilliseconds(ttl), size)
			for _, c := range batch[j : j+size] {
				s.args = append(s.args, c.apiKey+":"+c.nonce)
			}
			j += size
			s.calls = batch[i:j]
		}
		i += len(s.calls)
		scripts = append(scripts, s)
	}
	// Each script's error is read below; Pipelined's is the first of them.
	_, _ = n.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, s := range scripts {
			s.cmd = nonceScript.EvalSha(ctx, p, s.keys, s.args...)
		}
		return nil
	})
	for _, s := range scripts {
		if redis.HasErrorPrefix(s.cmd.Err(), "NOSCRIPT") {
			s.cmd = nonceScript.Eval(ctx, n.client, s.keys, s.args...)
		}
		fresh, err := s.cmd.Int64Slice()
		if err == nil && len(fresh) != len(s.calls) {
			err = fmt.Errorf("%w: %d answers for %d nonces", errPipeProtocol, len(fresh), len(s.calls))
		}
		for i, c := range s.calls {
			c.err = err
			c.fresh = err == nil && fresh[i] == 1
		}
	}
}

// ttlMilliseconds is a set's time to live as Redis takes it: a ttl under
// a millisecond counts as one, for a set must never live forever.
func ttlMilliseconds(ttl time.Duration) int64 { return max(ttl.Milliseconds(), 1) }
