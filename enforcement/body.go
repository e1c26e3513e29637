package enforcement

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"net/http"
	"os"
	"sync/atomic"

	"github.com/accessauth/caddy-access-auth/signature"
)

// memoryBodyLimit is the size up to which a body that must be hashed before
// the request goes on is kept in memory; larger ones are spooled to a
// temporary file (docs/request-check.md).
const memoryBodyLimit = 1 << 20

// maxFormParams bounds the parameters (counted by their separators) of a
// form the signature covers (signature.BodyForm), which are decoded and
// sorted before the signature over them can be checked, that is before
// anything proves the caller holds the secret. A 1 MiB form of 1,000 costs
// ~10 ms, what decoding and hashing any 1 MiB form costs; one of 80,000
// costs ~60 ms, most of it sorting.
const maxFormParams = 1000

// Errors a request body returns to whoever reads it upstream after the
// check let it through; ReasonOf maps them back to a reason.
var (
	// ErrBodyMismatch: the body streamed upstream does not hash to the
	// signed content-sha256 header; the upstream request must be aborted.
	ErrBodyMismatch = errors.New("access_auth: request body does not match its signed content hash")
	// ErrBodyTooLarge: the body is longer than max_body.
	ErrBodyTooLarge = errors.New("access_auth: request body larger than max_body")
)

// ReasonOf maps an error of reading a checked request's body (for instance
// as returned by the next handler) to the denial it stands for.
func ReasonOf(err error) (Reason, bool) {
	var maxBytes *http.MaxBytesError
	switch {
	case errors.Is(err, ErrBodyMismatch):
		return SignatureMismatch, true
	case errors.Is(err, ErrBodyTooLarge), errors.As(err, &maxBytes):
		return BodyTooLarge, true
	case errors.Is(err, errOverloaded):
		return Overloaded, true
	}
	return Allowed, false
}

// prepareBody decides the payload hash the signature is verified with, and
// makes r.Body safe to pass on: limited to MaxBody, and either buffered and
// checked now or checked against what was signed as it streams.
func (c *Checker) prepareBody(r *http.Request, cr *signature.Credentials, req *signature.Request, d *Decision) (string, Reason) {
	if r.ContentLength > c.cfg.MaxBody {
		return "", BodyTooLarge
	}
	if r.ContentLength == 0 && r.Body != nil && r.Body != http.NoBody {
		// A server request of length 0 has no body, whatever wraps it
		// (Caddy's idle timeout reader does); make sure none is read.
		r.Body.Close()
		r.Body = http.NoBody
	}
	empty := r.Body == nil || r.Body == http.NoBody
	rule, ok := cr.BodyRule(empty)
	if !ok {
		return "", SignatureMismatch
	}
	switch rule.Cover {
	case signature.BodyCovered:
		return rule.PayloadHash, Allowed
	case signature.BodyHashed:
		return c.bufferBody(r, d)
	case signature.BodyUnsigned:
		if !c.cfg.AllowUnsignedPayload {
			return "", SignatureMismatch
		}
		if !empty {
			r.Body = &checkedBody{body: r.Body, remaining: c.cfg.MaxBody}
		}
		return rule.PayloadHash, Allowed
	case signature.BodyForm:
		return rule.PayloadHash, c.readForm(r, &rule, req, d)
	}
	r.Body = &checkedBody{body: r.Body, remaining: c.cfg.MaxBody, hash: rule.NewHash(), want: rule.Want}
	return rule.PayloadHash, Allowed
}

// readForm reads a form whose parameters the signature covers into
// req.Form, for Verify. Forms are parsed whole, so they must fit in memory.
func (c *Checker) readForm(r *http.Request, rule *signature.BodyRule, req *signature.Request, d *Decision) Reason {
	body, reason := c.leaseBody(r, d)
	if reason != Allowed {
		return reason
	}
	form, reason := readSmallBody(r, body, min(memoryBodyLimit, c.cfg.MaxBody))
	if reason != Allowed {
		return reason
	}
	if bytes.Count(form, []byte{'&'}) >= maxFormParams {
		return BodyTooLarge
	}
	if !rule.Matches(form) {
		return SignatureMismatch
	}
	req.Form = form
	replaceBody(r, bytes.NewReader(form), int64(len(form)))
	return Allowed
}

// readSmallBody reads body (r's, or what wraps it) whole if it has at most
// limit bytes, else refuses it as too large.
func readSmallBody(r *http.Request, body io.Reader, limit int64) ([]byte, Reason) {
	buf, err := readUpTo(body, make([]byte, 0, sizeHint(r, limit+1)), int(limit)+1)
	if err != nil {
		return nil, bodyReadReason(err)
	}
	if int64(len(buf)) > limit {
		return nil, BodyTooLarge
	}
	return buf, Allowed
}

// sizeHint is the buffer to start reading r's body with: its length plus
// one byte to see EOF without growing, at most limit.
func sizeHint(r *http.Request, limit int64) int64 {
	if r.ContentLength > 0 {
		return min(r.ContentLength+1, limit)
	}
	return min(512, limit)
}

// replaceBody passes body on instead of r's, with its length now known.
func replaceBody(r *http.Request, body io.Reader, n int64) {
	r.Body.Close()
	r.Body = io.NopCloser(body) // a spool file is closed by Cleanup, not by whoever reads it
	r.ContentLength = n
	r.TransferEncoding = nil
}

// leaseBody takes r's body's share of the node's budget (its declared
// length, else a step at a time as it is read) into d, and returns the body
// to read within it.
func (c *Checker) leaseBody(r *http.Request, d *Decision) (io.Reader, Reason) {
	if c.cfg.Bodies == nil {
		return r.Body, Allowed
	}
	b := &leasedBody{body: r.Body}
	if !c.cfg.Bodies.lease(&b.lease, max(r.ContentLength, 0)) {
		return nil, Overloaded
	}
	d.lease = &b.lease
	return b, Allowed
}

// verifySmallBody reads a body of at most memoryBodyLimit bytes whose
// signed hash is known (r.Body checks it as it streams), once the signature
// over that hash has passed: a tampered body is refused before the request
// goes on, whether or not the next handler reads it. The next handler gets
// the verified copy. Larger bodies stream.
func verifySmallBody(r *http.Request) Reason {
	if b, ok := r.Body.(*checkedBody); !ok || b.hash == nil || r.ContentLength <= 0 || r.ContentLength > memoryBodyLimit {
		return Allowed
	}
	body, reason := readSmallBody(r, r.Body, memoryBodyLimit)
	if reason != Allowed {
		return reason
	}
	replaceBody(r, bytes.NewReader(body), int64(len(body)))
	return Allowed
}

// bufferBody reads and hashes the whole body: in memory up to
// memoryBodyLimit, else into a temporary file that d.Cleanup removes. It
// replaces r.Body with the copy.
func (c *Checker) bufferBody(r *http.Request, d *Decision) (string, Reason) {
	body, reason := c.leaseBody(r, d)
	if reason != Allowed {
		return "", reason
	}
	// One byte more than fits tells a body that fits from one that does not.
	limit := min(memoryBodyLimit, c.cfg.MaxBody) + 1
	buf, err := readUpTo(body, make([]byte, 0, sizeHint(r, limit)), int(limit))
	if err != nil {
		return "", bodyReadReason(err)
	}
	n := int64(len(buf))
	if n > c.cfg.MaxBody {
		return "", BodyTooLarge
	}
	h := sha256.New()
	h.Write(buf)
	var buffered io.Reader = bytes.NewReader(buf)
	if n > memoryBodyLimit {
		f, reason := c.spool(body, buf, h, d)
		if reason != Allowed {
			return "", reason
		}
		if n, err = f.Seek(0, io.SeekEnd); err != nil {
			return "", StoreUnavailable
		}
		if _, err = f.Seek(0, io.SeekStart); err != nil {
			return "", StoreUnavailable
		}
		buffered = f
	}
	replaceBody(r, buffered, n)
	return hex.EncodeToString(h.Sum(nil)), Allowed
}

// spool writes head and the rest of body to a temporary file, hashing the
// rest into h. The file is unlinked at once where the OS allows it, so it
// never outlives the process; otherwise Cleanup removes it.
func (c *Checker) spool(body io.Reader, head []byte, h hash.Hash, d *Decision) (*os.File, Reason) {
	f, err := os.CreateTemp(c.cfg.TempDir, "access-auth-body-*")
	if err != nil {
		return nil, StoreUnavailable // the gateway cannot take the body in; retrying later may work
	}
	d.spool = f
	if os.Remove(f.Name()) != nil {
		d.spoolName = f.Name()
	}
	if _, err := f.Write(head); err != nil {
		return nil, StoreUnavailable
	}
	rest := &checkedBody{body: io.NopCloser(body), remaining: c.cfg.MaxBody - int64(len(head))}
	if _, err := io.Copy(io.MultiWriter(f, h), rest); err != nil {
		if errors.Is(err, ErrBodyTooLarge) {
			return nil, BodyTooLarge
		}
		var pathErr *os.PathError
		if errors.As(err, &pathErr) {
			return nil, StoreUnavailable // the temporary file failed, not the client
		}
		return nil, bodyReadReason(err)
	}
	return f, Allowed
}

// bodyReadReason is the denial for a body that could not be read: too large
// when a limit upstream of us says so, else the body cannot be verified.
func bodyReadReason(err error) Reason {
	if r, ok := ReasonOf(err); ok {
		return r
	}
	return SignatureMismatch
}

// readUpTo appends from r to buf until EOF or until buf holds limit bytes.
func readUpTo(r io.Reader, buf []byte, limit int) ([]byte, error) {
	for len(buf) < limit {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)] // let append grow it
		}
		n, err := r.Read(buf[len(buf):min(cap(buf), limit)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
	return buf, nil
}

// checkedBody passes a body on while limiting it to remaining bytes and,
// when hash is set, failing at its end unless it hashes to want (the first
// hash.Size() bytes). With a hash, the last byte read is held back until
// the end of the body proved the hash, so that whoever reads it (the
// upstream) never gets a tampered body whole.
type checkedBody struct {
	body      io.ReadCloser
	remaining int64
	hash      hash.Hash
	want      [sha256.Size]byte
	err       error
	held      bool // next is a byte read but not yet passed on
	next      byte
	verified  bool // the body ended and matched; only next is left
	// failed is the Reason of a mismatch or an overlong body, readable by
	// the handler once the next one (on another goroutine) gave up.
	failed atomic.Uint32
}

// BodyFailure reports the denial a request's checked body stands for when
// reading it failed after the check let the request through: its streamed
// body did not match the signed hash (SignatureMismatch) or grew past
// max_body (BodyTooLarge). The caller answers with it instead of the next
// handler's error (a reverse proxy would make it a 502). Allowed otherwise.
func BodyFailure(r *http.Request) Reason {
	if b, ok := r.Body.(*checkedBody); ok {
		return Reason(b.failed.Load())
	}
	return Allowed
}

func (b *checkedBody) Read(p []byte) (int, error) {
	n, err := b.readChecked(p)
	if err != nil && err != io.EOF {
		if reason, ok := ReasonOf(err); ok {
			b.failed.Store(uint32(reason))
		}
	}
	return n, err
}

func (b *checkedBody) readChecked(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.hash == nil {
		n, err := b.read(p)
		if err != nil {
			b.err = err
		}
		return n, err
	}
	if len(p) == 0 {
		return 0, nil
	}
	k := 0
	if b.held {
		p[0], k = b.next, 1
	}
	if b.verified {
		b.held, b.err = false, io.EOF
		return k, io.EOF
	}
	var one [1]byte
	dst := p[k:]
	if len(dst) == 0 { // room for the held byte only: read one more to pass it on
		dst = one[:]
	}
	n, err := b.read(dst)
	switch {
	case err == io.EOF:
		var got [sha256.Size]byte
		if subtle.ConstantTimeCompare(b.hash.Sum(got[:0]), b.want[:b.hash.Size()]) != 1 {
			b.err = ErrBodyMismatch
			return 0, b.err
		}
		b.verified = true
	case err != nil:
		b.err = err
		return 0, err
	}
	if len(p) == k { // p[0] is the held byte, dst the one after it
		switch {
		case n == 1:
			b.next = one[0]
			return 1, nil
		case b.verified:
			b.held, b.err = false, io.EOF
			return 1, io.EOF
		}
		return 0, nil
	}
	k += n
	if b.verified {
		b.held, b.err = false, io.EOF
		return k, io.EOF
	}
	if k == 0 {
		return 0, nil
	}
	b.next, b.held = p[k-1], true
	return k - 1, nil
}

// read reads from the body, counting and hashing.
func (b *checkedBody) read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	b.remaining -= int64(n)
	if b.remaining < 0 {
		b.err = ErrBodyTooLarge
		return 0, b.err
	}
	if b.hash != nil {
		b.hash.Write(p[:n])
	}
	return n, err
}

func (b *checkedBody) Close() error { return b.body.Close() }
