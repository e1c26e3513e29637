package store

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// noncePipe is RedisNonces' path to a standalone server: one connection of
// its own, without go-redis's per-command objects, pool, hooks and
// per-command deadlines. The SETs of concurrent calls are written as RESP
// into one buffer and go as one batch while the previous batch's replies
// are awaited (group commit); the connection's reader answers the calls in
// order and then sends the batch gathered meanwhile.
type noncePipe struct {
	opts *redis.Options // Dialer, address, credentials, database, timeouts

	mu     sync.Mutex
	conn   *pipeConn // nil until dialed, and after a failure
	closed bool
	// busy: a batch is being dialed for, written, or awaits its replies.
	// Its holder (a caller, then the connection's reader) sends the next.
	busy     bool
	out      []byte       // the commands of the next batch
	next     []*nonceCall // their calls, in order
	wire     []*nonceCall // the calls of the batch awaiting replies
	deadline time.Time    // by when the wire's replies must have come
	spareOut []byte       // written buffers and answered call arrays, reused
	spareCal []*nonceCall
}

// pipeConn is one connection and its reader.
type pipeConn struct {
	net.Conn
	r *bufio.Reader
	// writeDeadline is the write deadline set last; it is moved only when
	// it comes near, not for every batch. Only the busy holder writes.
	writeDeadline time.Time
}

// redisReplyError is an error reply of Redis (e.g. OOM, READONLY).
type redisReplyError string

func (e redisReplyError) Error() string { return string(e) }

var errPipeProtocol = errors.New("redis: unexpected reply")

// newNoncePipe returns the lean path for client, or nil when client is a
// Cluster or Sentinel client, whose routing and failover stay go-redis's.
func newNoncePipe(client redis.UniversalClient) *noncePipe {
	c, ok := client.(*redis.Client)
	// go-redis names the address of a Sentinel-backed client so.
	if !ok || c.Options().Addr == "FailoverClient" {
		return nil
	}
	return &noncePipe{opts: c.Options()}
}

// seen sends SET key 1 NX PX ttl in the next batch and reports whether the
// key was set (fresh). ctx only bounds the wait: the batch is shared.
func (p *noncePipe) seen(ctx context.Context, prefix, apiKey, nonce string, ttl time.Duration) (fresh bool, err error) {
	call := nonceCalls.Get().(*nonceCall)
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		nonceCalls.Put(call)
		return false, redis.ErrClosed
	}
	p.out = appendSetNX(p.out, prefix, apiKey, nonce, ttl)
	p.next = append(p.next, call)
	lead := !p.busy
	p.busy = true
	p.mu.Unlock()
	if lead {
		p.send()
	}
	if done := ctx.Done(); done != nil {
		select {
		case <-call.done:
		case <-done:
			// The call stays queued and is answered into the void; it
			// is not reused.
			return false, ctx.Err()
		}
	} else {
		<-call.done
	}
	fresh, err = call.fresh, call.err
	*call = nonceCall{done: call.done}
	nonceCalls.Put(call)
	return fresh, err
}

// send writes the gathered batch, dialing first when there is no
// connection; its caller holds busy, and passes it to the reader of the
// replies (or drops it when there is nothing to send).
func (p *noncePipe) send() {
	p.mu.Lock()
	c := p.conn
	if c == nil {
		p.mu.Unlock()
		var err error
		if c, err = p.dial(); err != nil {
			p.mu.Lock()
			failed := p.next
			p.out, p.next, p.busy = p.out[:0], nil, false
			p.mu.Unlock()
			answer(failed, err)
			return
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.Close()
			p.fail(nil, redis.ErrClosed)
			return
		}
		p.conn = c
		go p.read(c)
	}
	if len(p.next) == 0 {
		p.busy = false
		p.mu.Unlock()
		return
	}
	batch := p.out
	p.wire, p.next = p.next, p.spareCal
	p.out, p.spareOut, p.spareCal = p.spareOut, nil, nil
	now := time.Now()
	p.deadline = now.Add(p.opts.ReadTimeout)
	// Set under mu, so the reader can tell this deadline from the last.
	err := c.SetReadDeadline(p.deadline)
	p.mu.Unlock()

	if err == nil && c.writeDeadline.Sub(now) < p.opts.WriteTimeout/2 {
		c.writeDeadline = now.Add(p.opts.WriteTimeout)
		err = c.SetWriteDeadline(c.writeDeadline)
	}
	if err == nil {
		_, err = c.Write(batch)
	}
	if err != nil {
		p.fail(c, err)
	}
	p.mu.Lock()
	if cap(batch) > cap(p.spareOut) {
		p.spareOut = batch[:0]
	}
	p.mu.Unlock()
}

// read answers the batches sent on c, in order, and after each sends the
// next, until c fails.
func (p *noncePipe) read(c *pipeConn) {
	for {
		if _, err := c.r.Peek(1); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() && p.idleTimeout(c) {
				continue
			}
			p.fail(c, err)
			return
		}
		// The batch is the reader's from now on: a failure of c
		// elsewhere answers only the calls not taken.
		p.mu.Lock()
		batch := p.wire
		p.wire = nil
		p.mu.Unlock()
		if len(batch) == 0 {
			p.fail(c, errPipeProtocol)
			return
		}
		for i, call := range batch {
			fresh, err := readSetNXReply(c.r)
			if err != nil && !isReplyError(err) {
				p.fail(c, err)
				answer(batch[i:], err)
				return
			}
			call.fresh, call.err = fresh, err
			call.done <- false
		}
		clear(batch)
		p.mu.Lock()
		p.spareCal = batch[:0]
		p.mu.Unlock()
		p.send()
	}
}

// idleTimeout reports whether a read deadline that passed on c is no
// failure: nothing was awaited, or the deadline was moved for a new batch.
func (p *noncePipe) idleTimeout(c *pipeConn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn != c {
		return false
	}
	if len(p.wire) == 0 {
		// Wait without a deadline until a batch sets one.
		return c.SetReadDeadline(time.Time{}) == nil
	}
	return time.Now().Before(p.deadline)
}

// fail closes c (when it is still the connection; nil: whichever) and
// answers the calls on the wire and the gathered ones with err. busy is
// dropped: the next call dials.
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
	failed := append(p.wire, p.next...)
	p.wire, p.next, p.out, p.busy = nil, nil, p.out[:0], false
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

// appendSetNX appends SET <prefix><apiKey>:<nonce> 1 PX <ms> NX in RESP, a
// ttl under a millisecond counting as one.
func appendSetNX(b []byte, prefix, apiKey, nonce string, ttl time.Duration) []byte {
	ms := max(ttl.Milliseconds(), 1)
	b = append(b, "*6\r\n$3\r\nSET\r\n$"...)
	b = strconv.AppendInt(b, int64(len(prefix)+len(apiKey)+1+len(nonce)), 10)
	b = append(b, "\r\n"...)
	b = append(b, prefix...)
	b = append(b, apiKey...)
	b = append(b, ':')
	b = append(b, nonce...)
	b = append(b, "\r\n$1\r\n1\r\n$2\r\nPX\r\n$"...)
	b = strconv.AppendInt(b, int64(len(strconv.AppendInt(nil, ms, 10))), 10)
	b = append(b, "\r\n"...)
	b = strconv.AppendInt(b, ms, 10)
	return append(b, "\r\n$2\r\nNX\r\n"...)
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

// readSetNXReply reads the reply of one SET NX: true for +OK, false for a
// null (RESP2 $-1, RESP3 _), a redisReplyError for an error reply.
func readSetNXReply(r *bufio.Reader) (bool, error) {
	line, err := r.ReadSlice('\n')
	switch {
	case err != nil:
		return false, err
	case okReply(line):
		return true, nil
	case string(line) == "$-1\r\n" || string(line) == "_\r\n":
		return false, nil
	}
	return false, replyError(line)
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
