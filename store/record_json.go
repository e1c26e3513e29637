package store

import (
	"encoding/json"
	"time"
	"unicode/utf8"
)

// The records a bulk import writes a million of each (keys, authorizations
// and compiled credentials) are encoded and decoded here without
// reflection: encoding/json spent more time finding its way through the
// types than moving the bytes. The encoders write exactly what json.Marshal
// writes for the same value (FuzzRecordJSON holds them to it); the decoders
// take the form the encoders write, with any white space, in a single pass,
// and hand everything else (escapes in strings, unknown or differently
// cased field names, numbers, repeated fields, offsets other than Z) to
// json.Unmarshal, so what a record means never depends on which path read
// it.

// marshalRecord is json.Marshal, without reflection for the records above.
func marshalRecord(v any) ([]byte, error) {
	var b []byte
	ok := true
	switch r := v.(type) {
	case ExportedKey:
		b, ok = appendKeyJSON(make([]byte, 0, 512), &r)
	case *ExportedKey:
		b, ok = appendKeyJSON(make([]byte, 0, 512), r)
	case Authorization:
		b, ok = appendAuthorizationJSON(make([]byte, 0, 384), &r)
	case *Authorization:
		b, ok = appendAuthorizationJSON(make([]byte, 0, 384), r)
	case credentialRecord:
		b, ok = appendCredentialJSON(make([]byte, 0, 512), &r)
	default:
		return json.Marshal(v)
	}
	if !ok { // a time json.Marshal refuses: its error
		return json.Marshal(v)
	}
	return b, nil
}

// unmarshalRecord is json.Unmarshal, without reflection for the records
// above in the form marshalRecord writes.
func unmarshalRecord(b []byte, v any) error {
	switch r := v.(type) {
	case *ExportedKey:
		return readRecord(b, r, (*recordReader).key)
	case *Authorization:
		return readRecord(b, r, (*recordReader).authorization)
	case *credentialRecord:
		return readRecord(b, r, (*recordReader).credential)
	}
	return json.Unmarshal(b, v)
}

// readRecord decodes b into a copy of *v and keeps it if the fast path
// took the whole of b; otherwise json.Unmarshal decodes b into v itself.
// Into a zero value (as every caller decodes) the two agree; into a filled
// one they differ only in that json.Unmarshal would decode a credential's
// authorization into the one *v points to, where the fast path makes a
// new one.
func readRecord[T any](b []byte, v *T, read func(*recordReader, *T)) error {
	r := recordReader{b: b}
	tmp := *v
	read(&r, &tmp)
	r.ws()
	if r.bad || r.i != len(b) {
		return json.Unmarshal(b, v)
	}
	*v = tmp
	return nil
}

// Encoding.

func appendKeyJSON(b []byte, k *ExportedKey) ([]byte, bool) {
	ok := true
	b = append(b, `{"id":`...)
	b = appendJSONString(b, k.ID)
	b = append(b, `,"name":`...)
	b = appendJSONString(b, k.Name)
	b = append(b, `,"description":`...)
	b = appendJSONString(b, k.Description)
	b = append(b, `,"kind":`...)
	b = appendJSONString(b, k.Kind)
	b = append(b, `,"api_key":`...)
	b = appendJSONString(b, k.APIKey)
	b = append(b, `,"enabled":`...)
	b = appendJSONBool(b, k.Enabled)
	b = append(b, `,"expires_at":`...)
	b = appendJSONTimePtr(b, k.ExpiresAt, &ok)
	b = append(b, `,"created_at":`...)
	b = appendJSONTime(b, k.CreatedAt, &ok)
	b = append(b, `,"updated_at":`...)
	b = appendJSONTime(b, k.UpdatedAt, &ok)
	b = append(b, `,"last_used_at":`...)
	b = appendJSONTimePtr(b, k.LastUsedAt, &ok)
	b = append(b, `,"secret_rotated_at":`...)
	b = appendJSONTimePtr(b, k.SecretRotatedAt, &ok)
	b = append(b, `,"previous_secret_expires_at":`...)
	b = appendJSONTimePtr(b, k.PreviousSecretExpiresAt, &ok)
	if k.APISecret != "" {
		b = append(b, `,"api_secret":`...)
		b = appendJSONString(b, k.APISecret)
	}
	b = append(b, `,"sealed_secret":`...)
	b = appendJSONString(b, k.SealedSecret)
	if k.SealedPreviousSecret != "" {
		b = append(b, `,"sealed_previous_secret":`...)
		b = appendJSONString(b, k.SealedPreviousSecret)
	}
	return append(b, '}'), ok
}

func appendAuthorizationJSON(b []byte, a *Authorization) ([]byte, bool) {
	ok := true
	b = append(b, `{"id":`...)
	b = appendJSONString(b, a.ID)
	b = append(b, `,"access_key_id":`...)
	b = appendJSONString(b, a.AccessKeyID)
	b = append(b, `,"api_key":`...)
	b = appendJSONString(b, a.APIKey)
	b = append(b, `,"description":`...)
	b = appendJSONString(b, a.Description)
	b = append(b, `,"enabled":`...)
	b = appendJSONBool(b, a.Enabled)
	b = append(b, `,"valid_from":`...)
	b = appendJSONTimePtr(b, a.ValidFrom, &ok)
	b = append(b, `,"valid_until":`...)
	b = appendJSONTimePtr(b, a.ValidUntil, &ok)
	b = append(b, `,"allowed_ips":`...)
	b = appendJSONStrings(b, a.AllowedIPs)
	b = append(b, `,"bindings":`...)
	b = appendJSONBindings(b, a.Bindings)
	b = append(b, `,"plan":`...)
	b = appendJSONPlan(b, a.Plan)
	b = append(b, `,"created_at":`...)
	b = appendJSONTime(b, a.CreatedAt, &ok)
	b = append(b, `,"updated_at":`...)
	b = appendJSONTime(b, a.UpdatedAt, &ok)
	return append(b, '}'), ok
}

func appendCredentialJSON(b []byte, c *credentialRecord) ([]byte, bool) {
	ok := true
	b = append(b, `{"access_key_id":`...)
	b = appendJSONString(b, c.AccessKeyID)
	b = append(b, `,"api_key":`...)
	b = appendJSONString(b, c.APIKey)
	b = append(b, `,"enabled":`...)
	b = appendJSONBool(b, c.Enabled)
	if c.ExpiresAt != nil {
		b = append(b, `,"expires_at":`...)
		b = appendJSONTime(b, *c.ExpiresAt, &ok)
	}
	b = append(b, `,"sealed_secret":`...)
	b = appendJSONString(b, c.SealedSecret)
	if c.SealedPreviousSecret != "" {
		b = append(b, `,"sealed_previous_secret":`...)
		b = appendJSONString(b, c.SealedPreviousSecret)
	}
	if c.PreviousSecretExpiresAt != nil {
		b = append(b, `,"previous_secret_expires_at":`...)
		b = appendJSONTime(b, *c.PreviousSecretExpiresAt, &ok)
	}
	if a := c.Authorization; a != nil {
		b = append(b, `,"authorization":{"ID":`...)
		b = appendJSONString(b, a.ID)
		b = append(b, `,"Enabled":`...)
		b = appendJSONBool(b, a.Enabled)
		b = append(b, `,"ValidFrom":`...)
		b = appendJSONTime(b, a.ValidFrom, &ok)
		b = append(b, `,"ValidUntil":`...)
		b = appendJSONTime(b, a.ValidUntil, &ok)
		b = append(b, `,"AllowedIPs":`...)
		b = appendJSONStrings(b, a.AllowedIPs)
		b = append(b, `,"Bindings":`...)
		b = appendJSONBindings(b, a.Bindings)
		b = append(b, `,"Plan":`...)
		b = appendJSONPlan(b, a.Plan)
		b = append(b, '}')
	}
	return append(b, '}'), ok
}

func appendJSONBool(b []byte, v bool) []byte {
	if v {
		return append(b, "true"...)
	}
	return append(b, "false"...)
}

// appendJSONTime writes t as time.Time.MarshalJSON does; ok turns false
// for a time it refuses (a year beyond 0–9999, an offset of a day or more).
func appendJSONTime(b []byte, t time.Time, ok *bool) []byte {
	if y := t.Year(); y < 0 || y > 9999 {
		*ok = false
	}
	if _, offset := t.Zone(); offset <= -24*3600 || offset >= 24*3600 {
		*ok = false
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

func appendJSONTimePtr(b []byte, t *time.Time, ok *bool) []byte {
	if t == nil {
		return append(b, "null"...)
	}
	return appendJSONTime(b, *t, ok)
}

func appendJSONStrings(b []byte, list []string) []byte {
	if list == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, s := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, s)
	}
	return append(b, ']')
}

func appendJSONBindings(b []byte, list []Binding) []byte {
	if list == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, bd := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"group":`...)
		b = appendJSONString(b, bd.Group)
		b = append(b, `,"environment":`...)
		b = appendJSONString(b, bd.Environment)
		b = append(b, `,"plan":`...)
		b = appendJSONPlan(b, bd.Plan)
		b = append(b, '}')
	}
	return append(b, ']')
}

func appendJSONPlan(b []byte, p PlanRef) []byte {
	if p == "" {
		return append(b, "null"...)
	}
	return appendJSONString(b, string(p))
}

// appendJSONString writes s as json.Marshal does: HTML-safe, invalid UTF-8
// as U+FFFD, U+2028 and U+2029 escaped.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// Decoding.

// recordReader reads one JSON value from b. bad means b is not in the form
// the fast path takes; the caller then hands b to json.Unmarshal.
type recordReader struct {
	b   []byte
	i   int
	bad bool
}

func (r *recordReader) ws() {
	for r.i < len(r.b) {
		switch r.b[r.i] {
		case ' ', '\t', '\n', '\r':
			r.i++
		default:
			return
		}
	}
}

// peek returns the next byte after white space, 0 at the end.
func (r *recordReader) peek() byte {
	r.ws()
	if r.bad || r.i >= len(r.b) {
		return 0
	}
	return r.b[r.i]
}

// expect consumes c, the next byte after white space.
func (r *recordReader) expect(c byte) {
	if r.peek() != c {
		r.bad = true
		return
	}
	r.i++
}

// literal consumes word (true, false, null) if it comes next.
func (r *recordReader) literal(word string) bool {
	r.ws()
	if r.bad || len(r.b)-r.i < len(word) || string(r.b[r.i:r.i+len(word)]) != word {
		return false
	}
	r.i += len(word)
	return true
}

// rawString returns the bytes of a string without escapes, valid UTF-8.
func (r *recordReader) rawString() []byte {
	if r.peek() != '"' {
		r.bad = true
		return nil
	}
	start := r.i + 1
	ascii := true
	for j := start; j < len(r.b); j++ {
		switch c := r.b[j]; {
		case c == '"':
			s := r.b[start:j]
			if !ascii && !utf8.Valid(s) {
				r.bad = true
				return nil
			}
			r.i = j + 1
			return s
		case c == '\\' || c < 0x20:
			r.bad = true
			return nil
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	r.bad = true
	return nil
}

func (r *recordReader) str() string {
	return string(r.rawString())
}

// stringInto sets *s to a string; null leaves it as it is (as
// json.Unmarshal does).
func (r *recordReader) stringInto(s *string) {
	if !r.literal("null") {
		*s = r.str()
	}
}

func (r *recordReader) boolInto(v *bool) {
	switch {
	case r.literal("true"):
		*v = true
	case r.literal("false"):
		*v = false
	case r.literal("null"):
	default:
		r.bad = true
	}
}

// timeInto sets *t to a time in the form appendJSONTime writes in UTC;
// null leaves it as it is.
func (r *recordReader) timeInto(t *time.Time) {
	if r.literal("null") {
		return
	}
	s := r.rawString()
	if r.bad || len(s) == 0 || s[len(s)-1] != 'Z' {
		r.bad = true
		return
	}
	v, err := time.Parse(time.RFC3339Nano, string(s))
	var canonical [48]byte
	if err != nil || string(v.AppendFormat(canonical[:0], time.RFC3339Nano)) != string(s) {
		r.bad = true
		return
	}
	*t = v
}

func (r *recordReader) timePtr() *time.Time {
	if r.literal("null") {
		return nil
	}
	t := new(time.Time)
	r.timeInto(t)
	return t
}

func (r *recordReader) plan() PlanRef {
	if r.literal("null") {
		return ""
	}
	return PlanRef(r.str())
}

// strings reads an array of strings: null is nil, [] empty.
func (r *recordReader) strings() []string {
	if r.literal("null") {
		return nil
	}
	list := []string{}
	r.array(func() { list = append(list, r.str()) })
	return list
}

func (r *recordReader) bindings() []Binding {
	if r.literal("null") {
		return nil
	}
	list := []Binding{}
	r.array(func() {
		var b Binding
		r.expect('{')
		var met uint32
		for first := true; ; first = false {
			name, ok := r.member(first)
			if !ok {
				break
			}
			switch {
			case string(name) == "group" && r.once(&met, 0):
				r.stringInto(&b.Group)
			case string(name) == "environment" && r.once(&met, 1):
				r.stringInto(&b.Environment)
			case string(name) == "plan" && r.once(&met, 2):
				b.Plan = r.plan()
			default:
				r.bad = true
			}
		}
		list = append(list, b)
	})
	return list
}

// array calls elem for each element of an array.
func (r *recordReader) array(elem func()) {
	r.expect('[')
	if r.peek() == ']' {
		r.i++
		return
	}
	for !r.bad {
		elem()
		switch r.peek() {
		case ',':
			r.i++
		case ']':
			r.i++
			return
		default:
			r.bad = true
		}
	}
}

// member reads the name and colon of an object's next member, after the
// opening brace (first) or a comma; false at the closing brace or on
// anything else (then bad).
func (r *recordReader) member(first bool) ([]byte, bool) {
	c := r.peek()
	switch {
	case c == '}':
		r.i++
		return nil, false
	case !first && c != ',':
		r.bad = true
		return nil, false
	case !first:
		r.i++
	}
	name := r.rawString()
	r.expect(':')
	return name, !r.bad
}

// once marks field n of an object met; met before, the object goes to
// json.Unmarshal, whose rules for a repeated field the fast path does not
// follow.
func (r *recordReader) once(met *uint32, n uint) bool {
	if *met&(1<<n) != 0 {
		r.bad = true
		return false
	}
	*met |= 1 << n
	return true
}

func (r *recordReader) key(k *ExportedKey) {
	r.expect('{')
	var met uint32
	for first := true; ; first = false {
		name, ok := r.member(first)
		if !ok {
			break
		}
		switch {
		case string(name) == "id" && r.once(&met, 0):
			r.stringInto(&k.ID)
		case string(name) == "name" && r.once(&met, 1):
			r.stringInto(&k.Name)
		case string(name) == "description" && r.once(&met, 2):
			r.stringInto(&k.Description)
		case string(name) == "kind" && r.once(&met, 3):
			r.stringInto(&k.Kind)
		case string(name) == "api_key" && r.once(&met, 4):
			r.stringInto(&k.APIKey)
		case string(name) == "enabled" && r.once(&met, 5):
			r.boolInto(&k.Enabled)
		case string(name) == "expires_at" && r.once(&met, 6):
			k.ExpiresAt = r.timePtr()
		case string(name) == "created_at" && r.once(&met, 7):
			r.timeInto(&k.CreatedAt)
		case string(name) == "updated_at" && r.once(&met, 8):
			r.timeInto(&k.UpdatedAt)
		case string(name) == "last_used_at" && r.once(&met, 9):
			k.LastUsedAt = r.timePtr()
		case string(name) == "secret_rotated_at" && r.once(&met, 10):
			k.SecretRotatedAt = r.timePtr()
		case string(name) == "previous_secret_expires_at" && r.once(&met, 11):
			k.PreviousSecretExpiresAt = r.timePtr()
		case string(name) == "api_secret" && r.once(&met, 12):
			r.stringInto(&k.APISecret)
		case string(name) == "sealed_secret" && r.once(&met, 13):
			r.stringInto(&k.SealedSecret)
		case string(name) == "sealed_previous_secret" && r.once(&met, 14):
			r.stringInto(&k.SealedPreviousSecret)
		default:
			r.bad = true
		}
	}
}

func (r *recordReader) authorization(a *Authorization) {
	r.expect('{')
	var met uint32
	for first := true; ; first = false {
		name, ok := r.member(first)
		if !ok {
			break
		}
		switch {
		case string(name) == "id" && r.once(&met, 0):
			r.stringInto(&a.ID)
		case string(name) == "access_key_id" && r.once(&met, 1):
			r.stringInto(&a.AccessKeyID)
		case string(name) == "api_key" && r.once(&met, 2):
			r.stringInto(&a.APIKey)
		case string(name) == "description" && r.once(&met, 3):
			r.stringInto(&a.Description)
		case string(name) == "enabled" && r.once(&met, 4):
			r.boolInto(&a.Enabled)
		case string(name) == "valid_from" && r.once(&met, 5):
			a.ValidFrom = r.timePtr()
		case string(name) == "valid_until" && r.once(&met, 6):
			a.ValidUntil = r.timePtr()
		case string(name) == "allowed_ips" && r.once(&met, 7):
			a.AllowedIPs = r.strings()
		case string(name) == "bindings" && r.once(&met, 8):
			a.Bindings = r.bindings()
		case string(name) == "plan" && r.once(&met, 9):
			a.Plan = r.plan()
		case string(name) == "created_at" && r.once(&met, 10):
			r.timeInto(&a.CreatedAt)
		case string(name) == "updated_at" && r.once(&met, 11):
			r.timeInto(&a.UpdatedAt)
		default:
			r.bad = true
		}
	}
}

func (r *recordReader) credential(c *credentialRecord) {
	r.expect('{')
	var met uint32
	for first := true; ; first = false {
		name, ok := r.member(first)
		if !ok {
			break
		}
		switch {
		case string(name) == "access_key_id" && r.once(&met, 0):
			r.stringInto(&c.AccessKeyID)
		case string(name) == "api_key" && r.once(&met, 1):
			r.stringInto(&c.APIKey)
		case string(name) == "enabled" && r.once(&met, 2):
			r.boolInto(&c.Enabled)
		case string(name) == "expires_at" && r.once(&met, 3):
			c.ExpiresAt = r.timePtr()
		case string(name) == "sealed_secret" && r.once(&met, 4):
			r.stringInto(&c.SealedSecret)
		case string(name) == "sealed_previous_secret" && r.once(&met, 5):
			r.stringInto(&c.SealedPreviousSecret)
		case string(name) == "previous_secret_expires_at" && r.once(&met, 6):
			c.PreviousSecretExpiresAt = r.timePtr()
		case string(name) == "authorization" && r.once(&met, 7):
			c.Authorization = r.credentialAuthorization()
		default:
			r.bad = true
		}
	}
}

func (r *recordReader) credentialAuthorization() *CredentialAuthorization {
	if r.literal("null") {
		return nil
	}
	a := new(CredentialAuthorization)
	r.expect('{')
	var met uint32
	for first := true; ; first = false {
		name, ok := r.member(first)
		if !ok {
			break
		}
		switch {
		case string(name) == "ID" && r.once(&met, 0):
			r.stringInto(&a.ID)
		case string(name) == "Enabled" && r.once(&met, 1):
			r.boolInto(&a.Enabled)
		case string(name) == "ValidFrom" && r.once(&met, 2):
			r.timeInto(&a.ValidFrom)
		case string(name) == "ValidUntil" && r.once(&met, 3):
			r.timeInto(&a.ValidUntil)
		case string(name) == "AllowedIPs" && r.once(&met, 4):
			a.AllowedIPs = r.strings()
		case string(name) == "Bindings" && r.once(&met, 5):
			a.Bindings = r.bindings()
		case string(name) == "Plan" && r.once(&met, 6):
			a.Plan = r.plan()
		default:
			r.bad = true
		}
	}
	return a
}
