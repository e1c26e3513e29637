package signature

import "sync"

// Verification is the working memory of one request's check: the
// credentials Parse reads, the request they are read from and the buffers
// Verify hashes in. Credentials and Request are taken by pointer inside
// the package, through interfaces, so a Verification made per request
// would escape to the heap; one pool of them keeps a check free of
// allocations with a single Get and Put (docs/request-check.md).
type Verification struct {
	Credentials Credentials
	Request     Request
	sc          *scratch
}

var verificationPool = sync.Pool{New: func() any { return &Verification{sc: newScratch()} }}

// NewVerification takes a Verification from the pool, its Credentials and
// Request zero. Call Release when done with it.
func NewVerification() *Verification { return verificationPool.Get().(*Verification) }

// Release clears v (it keeps no request alive) and gives it back to the
// pool; v must not be used after.
func (v *Verification) Release() {
	v.Credentials, v.Request = Credentials{}, Request{}
	if v.sc.oversized() { // one huge request pins no buffers in the pool
		v.sc = newScratch()
	}
	verificationPool.Put(v)
}

// Parse is Parse of v.Request's headers into v.Credentials.
func (v *Verification) Parse(allowed Schemes) error {
	return Parse(v.Request.Header, allowed, &v.Credentials)
}

// Verify is Verify of v.Request and v.Credentials, in v's buffers.
func (v *Verification) Verify(secret *Secret, payloadHash string) bool {
	impl := implOf(v.Credentials.Scheme)
	if secret == nil || impl == nil {
		return false
	}
	return impl.verify(&v.Request, &v.Credentials, secret, payloadHash, v.sc)
}
