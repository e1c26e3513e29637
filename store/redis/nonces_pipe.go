package redisstore

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// noncePipe is Nonces' path to a standalone server: one connection of
// its own, without go-redis's per-command objects, pool, hooks and
// per-command deadlines. The nonces of concurrent calls gathered while the
// previous batch's reply is awaited go as one command, the nonce script
// (group commit), by EVALSHA once the connection has run it in full. The
// connection has no reader goroutine: one of the calls holds it, writes
// the gathered batch (its own among them), reads the replies and answers
// the calls in order, then passes the hold to a call gathered meanwhile. A lone call thus writes and reads itself,
// without waking another goroutine. A connection idle for a while is
// held by a watcher, which notices when the server closes it.
type noncePipe struct {
	opts   *redis.Options // Dialer, address, credentials, database, timeouts
	prefix string         // of the sets' keys, "<KeyPrefix>:nonce:"

	mu     sync.Mutex
	conn   *pipeConn // nil until dialed, and after a failure
	closed bool
	// busy: a holder dials, writes a batch, or awaits its replies; or
	// the watcher waits on the idle connection (watching).
	busy, watching bool
	idle           *time.Timer  // starts the watcher; reset when the pipe goes idle
	next           []*nonceCall // the calls of the next batch, in order
	spareOut       []byte       // the buffer of the last command written, reused
	spareCal       []*nonceCall // the array of the last batch answered, reused
	// company: the last batch written had more than one call (load).
	company atomic.Bool
}

// pipeConn is one connection and its reader. Only the holder uses it.
type pipeConn struct {
	net.Conn
	r *bufio.Reader
	// writeDeadline is the write deadline set last; it is moved only when
	// it comes near, not for every batch.
	writeDeadline time.Time
	// loaded: the server ran the nonce script from this connection, so
	// it knows the script by its hash (EVALSHA), unless it dropped its
	// scripts since (a NOSCRIPT reply; the batch is then sent in full).
	loaded bool
}

// watchAfter is how long the pipe is idle before the watcher waits on its
// connection: a server that closes it then (a restart, its idle timeout)
// costs the next call nothing but a new connection.
const watchAfter = 50 * time.Millisecond

// redisReplyError is an error reply of Redis (e.g. OOM, READONLY).
type redisReplyError string

func (e redisReplyError) Error() string { return string(e) }

var errPipeProtocol = errors.New("redis: unexpected reply")

// newNoncePipe returns the lean path for client, or nil when client is a
// Cluster or Sentinel client, whose routing and failover stay go-redis's.
func newNoncePipe(client redis.UniversalClient, prefix string) *noncePipe {
	c, ok := client.(*redis.Client)
	// go-redis names the address of a Sentinel-backed client so.
	if !ok || c.Options().Addr == "FailoverClient" {
		return nil
	}
	p := &noncePipe{opts: c.Options(), prefix: prefix}
	p.idle = time.AfterFunc(watchAfter, p.watch)
	return p
}

// seen records call's nonce in the next batch and reports whether it was
// added (fresh); call, from nonceCalls, goes back there. ctx bounds the
// wait, but the batch is shared: a call that holds the connection waits
// for its batch's replies, as long as the read timeout lets it, unless
// ctx's deadline comes first.
func (p *noncePipe) seen(ctx context.Context, call *nonceCall) (fresh bool, err error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		*call = nonceCall{done: call.done}
		nonceCalls.Put(call)
		return false, redis.ErrClosed
	}
	p.next = append(p.next, call)
	hold := !p.busy
	p.busy = true
	if p.watching {
		p.watching = false
		// Wakes the watcher, which passes the hold on.
		p.conn.SetReadDeadline(time.Unix(1, 0))
	}
	p.mu.Unlock()
	for {
		if hold {
			p.hold(ctx, call)
		}
		var ok bool
		if hold, ok = p.await(ctx, call); !ok {
			// The call is answered into the void; it is not reused.
			return false, ctx.Err()
		}
		if !hold {
			break
		}
	}
	fresh, err = call.fresh, call.err
	*call = nonceCall{done: call.done}
	nonceCalls.Put(call)
	return fresh, err
}

// await waits until call is answered (false) or handed the hold (true).
// When ctx ends first it reports !ok, and the call is given up: a hold
// handed to it passes to a goroutine of its own.
func (p *noncePipe) await(ctx context.Context, call *nonceCall) (hold, ok bool) {
	select {
	case hold = <-call.done: // a holder's own answer is there already
		return hold, true
	default:
	}
	done := ctx.Done()
	if done == nil {
		return <-call.done, true
	}
	select {
	case hold = <-call.done:
		return hold, true
	case <-done:
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case hold = <-call.done:
		if !hold {
			return false, true // answered meanwhile
		}
		go p.hold(context.Background(), nil)
	default:
		call.abandoned = true // not to be handed the hold
	}
	return false, false
}

// hold writes the gathered batch (own among them, unless nil), dialing
// first when there is no connection, and reads its replies; its caller
// holds busy. Every call of the batch, own too, is answered through its
// channel. When own's ctx would end before the replies are due, a
// goroutine of its own reads them, so that own's wait stays bounded.
func (p *noncePipe) hold(ctx context.Context, own *nonceCall) {
	if p.company.Load() {
		// As Nonces.flush: under load, a yield lets the requests already
		// running join the batch (15–25 % fewer scripts a request on the
		// proxied bench route, measured interleaved).
		runtime.Gosched()
	}
	c, batch, due := p.write()
	if c == nil {
		return
	}
	if own != nil {
		if d, ok := ctx.Deadline(); ok && d.Before(due) {
			go p.read(c, batch)
			return
		}
	}
	p.read(c, batch)
}

// write sends the gathered batch and returns the connection, the calls
// and by when their replies must have come; on a failure it answers them
// with the error and returns a nil connection.
func (p *noncePipe) write() (c *pipeConn, batch []*nonceCall, due time.Time) {
	p.mu.Lock()
	c = p.conn
	p.mu.Unlock()
	if c == nil {
		var err error
		if c, err = p.dial(); err != nil {
			p.fail(nil, err)
			return nil, nil, due
		}
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		c.Close()
		p.fail(nil, redis.ErrClosed)
		return nil, nil, due
	}
	p.conn = c
	batch, out := p.next, p.spareOut
	p.next = p.spareCal
	p.spareCal, p.spareOut = nil, nil
	p.mu.Unlock()
	p.company.Store(len(batch) > 1)
	sortNonceCalls(batch)
	out = appendNonceScript(out[:0], p.prefix, batch, c.loaded)

	now := time.Now()
	due = now.Add(p.opts.ReadTimeout)
	err := c.SetReadDeadline(due)
	if err == nil && c.writeDeadline.Sub(now) < p.opts.WriteTimeout/2 {
		c.writeDeadline = now.Add(p.opts.WriteTimeout)
		err = c.SetWriteDeadline(c.writeDeadline)
	}
	if err == nil {
		_, err = c.Write(out)
	}
	p.mu.Lock()
	if cap(out) > cap(p.spareOut) {
		p.spareOut = out[:0]
	}
	p.mu.Unlock()
	if err != nil {
		answer(batch, err)
		p.fail(c, err)
		return nil, nil, due
	}
	return c, batch, due
}

// read answers batch's calls with the replies on c, in order, then passes
// the hold to the first call gathered meanwhile that still waits (or to a
// goroutine of its own when none does), or drops busy.
func (p *noncePipe) read(c *pipeConn, batch []*nonceCall) {
	err := readNonceScriptReply(c.r, batch)
	if c.loaded && isReplyError(err) && strings.HasPrefix(err.Error(), "NOSCRIPT") {
		// The server dropped its scripts: the batch again, in full.
		c.loaded = false
		if _, err = c.Write(appendNonceScript(nil, p.prefix, batch, false)); err == nil {
			err = readNonceScriptReply(c.r, batch)
		}
	}
	c.loaded = c.loaded || err == nil
	if err != nil {
		if !isReplyError(err) {
			answer(batch, err)
			p.fail(c, err)
			return
		}
		for _, call := range batch {
			call.err = err
		}
	}
	for _, call := range batch {
		call.done <- false
	}
	clear(batch)
	p.mu.Lock()
	p.spareCal = batch[:0]
	p.passHold()
	p.mu.Unlock()
}

// passHold hands the hold to the first gathered call that still waits (or
// to a goroutine of its own when none does), or drops busy when nothing
// was gathered. p.mu is held.
func (p *noncePipe) passHold() {
	for _, call := range p.next {
		if !call.abandoned {
			call.done <- true
			return
		}
	}
	if len(p.next) > 0 {
		go p.hold(context.Background(), nil)
		return
	}
	p.busy = false
	p.idle.Reset(watchAfter)
}

// watch waits on the connection of an idle pipe, as its holder, until a
// call wakes it or the server closes the connection (which is then
// dropped, for the next call to dial anew).
func (p *noncePipe) watch() {
	p.mu.Lock()
	c := p.conn
	if p.busy || c == nil || c.SetReadDeadline(time.Time{}) != nil {
		p.mu.Unlock()
		return
	}
	p.busy, p.watching = true, true
	p.mu.Unlock()
	_, err := c.r.Peek(1)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.watching = false
	if p.conn != c {
		return // closed: the calls are answered, busy is dropped
	}
	if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		// The server closed the connection, or sent what nobody asked.
		c.Close()
		p.conn = nil
	}
	p.passHold()
}

// fail closes c (when it is still the connection; nil: whichever) and
// answers the gathered calls with err. busy is dropped: the next call
// dials.
func (p *noncePipe) fail(c *pipeConn, err error) {
	p.mu.Lock()
	if c != nil && p.conn != c {
		p.mu.Unlock()
		return
	}
	if p.conn != nil {
		p.conn.Close()
		p.conn = nil
	}
	failed := p.next
	p.next, p.busy = nil, false
	p.mu.Unlock()
	answer(failed, err)
}

func answer(calls []*nonceCall, err error) {
	for _, call := range calls {
		call.err = err
		call.done <- false
	}
}

// close ends the connection; later calls fail.
func (p *noncePipe) close() {
	p.mu.Lock()
	p.closed = true
	p.idle.Stop()
	c := p.conn
	p.mu.Unlock()
	if c != nil {
		p.fail(c, redis.ErrClosed)
	}
}

// dial connects with the client's dialer (so with its TLS) and
// authenticates and selects the database as the client does, in RESP2.
func (p *noncePipe) dial() (*pipeConn, error) {
	o := p.opts
	ctx, cancel := context.WithTimeout(context.Background(), o.DialTimeout)
	defer cancel()
	nc, err := o.Dialer(ctx, o.Network, o.Addr)
	if err != nil {
		return nil, err
	}
	c := &pipeConn{Conn: nc, r: bufio.NewReaderSize(nc, 16<<10)}
	var hello []byte
	replies := 0
	if o.Password != "" {
		args := []string{"AUTH", o.Password}
		if o.Username != "" {
			args = []string{"AUTH", o.Username, o.Password}
		}
		hello = appendCommand(hello, args...)
		replies++
	}
	if o.DB != 0 {
		hello = appendCommand(hello, "SELECT", strconv.Itoa(o.DB))
		replies++
	}
	if replies > 0 {
		err = c.SetDeadline(time.Now().Add(o.ReadTimeout))
		if err == nil {
			_, err = c.Write(hello)
		}
		for ; err == nil && replies > 0; replies-- {
			var line []byte
			if line, err = c.r.ReadSlice('\n'); err == nil && !okReply(line) {
				err = replyError(line)
			}
		}
		if err == nil {
			err = c.SetDeadline(time.Time{})
		}
		if err != nil {
			nc.Close()
			return nil, err
		}
	}
	return c, nil
}

// appendNonceScript appends, in RESP, the nonce script run on sorted's
// nonces (sortNonceCalls): by its hash when loaded, else in full (EVAL),
// with a key a run of one set's members (nextRun) named prefix + second.
func appendNonceScript(b []byte, prefix string, sorted []*nonceCall, loaded bool) []byte {
	runs, args := 0, 0
	for i := 0; i < len(sorted); runs++ {
		size, _ := nextRun(sorted[i:])
		i += size
		args += 3 + size // the key, the ttl, the count, the members
	}
	b = append(b, '*')
	b = strconv.AppendInt(b, int64(3+args), 10)
	if loaded {
		b = append(b, "\r\n$7\r\nEVALSHA\r\n$40\r\n"...)
		b = append(b, nonceScript.Hash()...)
	} else {
		b = append(b, "\r\n$4\r\nEVAL\r\n$"...)
		b = strconv.AppendInt(b, int64(len(nonceScriptSource)), 10)
		b = append(b, "\r\n"...)
		b = append(b, nonceScriptSource...)
	}
	b = append(b, "\r\n"...)
	b = appendBulkInt(b, int64(runs))
	for i := 0; i < len(sorted); {
		size, _ := nextRun(sorted[i:])
		var digits [20]byte
		d := strconv.AppendInt(digits[:0], sorted[i].second, 10)
		b = append(b, '$')
		b = strconv.AppendInt(b, int64(len(prefix)+len(d)), 10)
		b = append(b, "\r\n"...)
		b = append(b, prefix...)
		b = append(b, d...)
		b = append(b, "\r\n"...)
		i += size
	}
	for i := 0; i < len(sorted); {
		size, ttl := nextRun(sorted[i:])
		b = appendBulkInt(b, ttlMilliseconds(ttl))
		b = appendBulkInt(b, int64(size))
		for _, c := range sorted[i : i+size] {
			b = append(b, '$')
			b = strconv.AppendInt(b, int64(len(c.apiKey)+1+len(c.nonce)), 10)
			b = append(b, "\r\n"...)
			b = append(b, c.apiKey...)
			b = append(b, ':')
			b = append(b, c.nonce...)
			b = append(b, "\r\n"...)
		}
		i += size
	}
	return b
}

// appendBulkInt appends n as a RESP bulk string.
func appendBulkInt(b []byte, n int64) []byte {
	var digits [20]byte
	d := strconv.AppendInt(digits[:0], n, 10)
	b = append(b, '$')
	b = strconv.AppendInt(b, int64(len(d)), 10)
	b = append(b, "\r\n"...)
	b = append(b, d...)
	return append(b, "\r\n"...)
}

// readNonceScriptReply reads the nonce script's reply for batch into its
// calls' fresh: an array of one integer a nonce, 1 for fresh. An error
// reply is returned as a redisReplyError (the connection is still good).
func readNonceScriptReply(r *bufio.Reader, batch []*nonceCall) error {
	line, err := r.ReadSlice('\n')
	if err != nil {
		return err
	}
	var header [24]byte
	if !bytes.Equal(line, append(strconv.AppendInt(append(header[:0], '*'), int64(len(batch)), 10), '\r', '\n')) {
		return replyError(line)
	}
	for _, call := range batch {
		if line, err = r.ReadSlice('\n'); err != nil {
			return err
		}
		switch string(line) {
		case ":1\r\n":
			call.fresh = true
		case ":0\r\n":
			call.fresh = false
		default:
			return fmt.Errorf("%w %q", errPipeProtocol, line)
		}
	}
	return nil
}

// appendCommand appends a command in RESP.
func appendCommand(b []byte, args ...string) []byte {
	b = append(b, '*')
	b = strconv.AppendInt(b, int64(len(args)), 10)
	b = append(b, "\r\n"...)
	for _, a := range args {
		b = append(b, '$')
		b = strconv.AppendInt(b, int64(len(a)), 10)
		b = append(b, "\r\n"...)
		b = append(b, a...)
		b = append(b, "\r\n"...)
	}
	return b
}

func okReply(line []byte) bool { return string(line) == "+OK\r\n" }

// replyError is the error of a reply line that is not the expected one.
func replyError(line []byte) error {
	if len(line) > 2 && line[0] == '-' {
		return redisReplyError(line[1 : len(line)-2])
	}
	return fmt.Errorf("%w %q", errPipeProtocol, line)
}

func isReplyError(err error) bool {
	var re redisReplyError
	return errors.As(err, &re)
}
