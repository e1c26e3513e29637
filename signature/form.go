package signature

// Form is a canonical request and the string to sign made from it: what a
// signer signed, or what a verifier hashed. Neither holds a secret nor a
// signature, so both may be shown to the caller to diff against its own.
type Form struct {
	// Name is the canonical form: FormDocumented, FormAsSent or FormS3.
	Name string
	// CanonicalRequest is the request as the scheme canonicalises it. For
	// Alibaba's scheme, which signs that text directly, it equals
	// StringToSign.
	CanonicalRequest string
	StringToSign     string
}

// The names of the canonical forms Verify tries.
const (
	// FormDocumented is the form the scheme's documentation defines (for
	// SigV4, that of the credential's service); Sign signs it.
	FormDocumented = "documented"
	// FormAsSent writes the path and query exactly as sent (JD Cloud's Go
	// SDK, curl 7's SigV4, Alibaba's Node.js client).
	FormAsSent = "as-sent"
	// FormS3 is SigV4's S3 form (path as sent, sorted query) for a service
	// other than S3.
	FormS3 = "s3"
)

// Forms returns the canonical requests and strings to sign Verify hashes
// for r and c (what Parse read from r.Header) with payloadHash, in the
// order it tries them: the documented form first, then each other form
// only when it is different text. It needs no secret and allocates, so it
// is for explaining a refused signature, never for the check itself. nil
// when c was not filled by Parse.
func Forms(r *Request, c *Credentials, payloadHash string) []Form {
	impl := implOf(c.Scheme)
	if impl == nil {
		return nil
	}
	return impl.forms(r, c, payloadHash)
}
