package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a Store.
type Options struct {
	// MasterKeys seal the API secrets: the first encrypts, all decrypt.
	// Each is MasterKeySize bytes.
	MasterKeys [][]byte
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Rand is the source of IDs, API keys, secrets and nonces; default
	// crypto/rand.Reader.
	Rand io.Reader
	// Committed, when set, is called after each write commits with the API
	// keys whose credentials it changed, before the write returns. The
	// writing node drops them from its cache here, so its next request sees
	// the write; other nodes learn of it from the change feed.
	Committed func(apiKeys []string)
}

// Store keeps the rules of the data model over a Backend. It is safe for
// concurrent use. Every write is one backend transaction that also
// recompiles the credentials it affects, appends an audit record and
// announces the changed API keys on the change feed.
type Store struct {
	backend   Backend
	sealer    *sealer
	now       func() time.Time
	rand      io.Reader
	committed func(apiKeys []string)
	// sealingKeyRecorded is set once the store's record of sealing keys
	// holds the first master key; until then every write makes sure of it.
	sealingKeyRecorded atomic.Bool

	idMu   sync.Mutex
	lastID [16]byte // the newest ID's bytes, so the next one sorts after it
}

// Open returns a Store over backend. The Store owns backend from then on:
// Close closes it.
func Open(backend Backend, opts Options) (*Store, error) {
	if backend == nil {
		return nil, fmt.Errorf("store: no backend")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	sealer, err := newSealer(opts.MasterKeys, opts.Rand)
	if err != nil {
		return nil, err
	}
	return &Store{backend: backend, sealer: sealer, now: opts.Now, rand: opts.Rand, committed: opts.Committed}, nil
}

// Backend returns the engine under the store.
func (s *Store) Backend() Backend { return s.backend }

// Subscribe returns the change feed: the API keys whose credentials changed,
// in revision order, from every node. The channel closes when ctx ends.
func (s *Store) Subscribe(ctx context.Context) <-chan Change {
	return s.backend.Subscribe(ctx)
}

// Close closes the backend.
func (s *Store) Close() error { return s.backend.Close() }

// Table names, see Backend.
const (
	tblKeys                = "keys"
	tblKeyNames            = "key_names"
	tblAPIKeys             = "api_keys"
	tblAuthorizations      = "authorizations"
	tblKeyAuthorizations   = "key_authorizations"
	tblGroups              = "groups"
	tblGroupAuthorizations = "group_authorizations"
	tblPlans               = "plans"
	tblPlanAuthorizations  = "plan_authorizations"
	tblCredentials         = "credentials"
	tblAudit               = "audit"
)

// Paging bounds.
const (
	DefaultPageLimit = 50
	MaxPageLimit     = 500
)

// credentialRecord is a Credential as stored in table "credentials": its
// secrets stay sealed at rest.
type credentialRecord struct {
	AccessKeyID             string                   `json:"access_key_id"`
	APIKey                  string                   `json:"api_key"`
	Enabled                 bool                     `json:"enabled"`
	ExpiresAt               *time.Time               `json:"expires_at,omitempty"`
	SealedSecret            string                   `json:"sealed_secret"`
	SealedPreviousSecret    string                   `json:"sealed_previous_secret,omitempty"`
	PreviousSecretExpiresAt *time.Time               `json:"previous_secret_expires_at,omitempty"`
	Authorization           *CredentialAuthorization `json:"authorization,omitempty"`
}

// LoadCredential returns the compiled credential of an API key with one
// backend read, or ErrNotFound. A previous secret whose grace has ended is
// left out; callers that cache the answer must still compare
// PreviousSecretExpiresAt with their clock.
func (s *Store) LoadCredential(ctx context.Context, apiKey string) (*Credential, error) {
	b, err := s.backend.Get(ctx, tblCredentials, apiKey)
	if err != nil {
		return nil, err
	}
	if b == nil {
		return nil, ErrNotFound
	}
	var rec credentialRecord
	if err := unmarshalRecord(b, &rec); err != nil {
		return nil, fmt.Errorf("credential record of %s: %w", rec.AccessKeyID, err)
	}
	secret, err := s.sealer.open(rec.SealedSecret, rec.AccessKeyID)
	if err != nil {
		return nil, fmt.Errorf("secret of access key %s: %w", rec.AccessKeyID, err)
	}
	cred := &Credential{
		AccessKeyID:   rec.AccessKeyID,
		APIKey:        rec.APIKey,
		Enabled:       rec.Enabled,
		Secret:        secret,
		Authorization: rec.Authorization,
	}
	if rec.ExpiresAt != nil {
		cred.ExpiresAt = *rec.ExpiresAt
	}
	if rec.SealedPreviousSecret != "" && rec.PreviousSecretExpiresAt != nil && s.now().Before(*rec.PreviousSecretExpiresAt) {
		cred.PreviousSecret, err = s.sealer.open(rec.SealedPreviousSecret, rec.AccessKeyID)
		if err != nil {
			return nil, fmt.Errorf("previous secret of access key %s: %w", rec.AccessKeyID, err)
		}
		cred.PreviousSecretExpiresAt = *rec.PreviousSecretExpiresAt
	}
	return cred, nil
}

// MarkUsed records when access keys (by ID) were last used. It keeps the
// latest time, skips deleted keys, and writes neither audit nor change.
func (s *Store) MarkUsed(ctx context.Context, lastUsed map[string]time.Time) error {
	if len(lastUsed) == 0 {
		return nil
	}
	return s.backend.Update(ctx, func(tx Tx) error {
		for id, at := range lastUsed {
			var key ExportedKey
			ok, err := getJSON(tx, tblKeys, id, &key)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			if key.LastUsedAt != nil && !at.After(*key.LastUsedAt) {
				continue
			}
			at = at.UTC()
			key.LastUsedAt = &at
			if err := putJSON(tx, tblKeys, id, key); err != nil {
				return err
			}
		}
		return nil
	})
}

// ListAudit returns audit records, newest first.
func (s *Store) ListAudit(ctx context.Context, page Page) ([]AuditRecord, string, error) {
	var items []AuditRecord
	var next string
	err := s.backend.View(ctx, func(tx Tx) error {
		var err error
		items, next, err = scanPage(tx, tblAudit, page, func(r Record) (AuditRecord, bool, error) {
			var rec AuditRecord
			return rec, true, json.Unmarshal(r.Value, &rec)
		})
		return err
	})
	return items, next, err
}

// writer is the state of one write transaction. The backend may run a
// write more than once, so a writer lives for one run only.
type writer struct {
	s       *Store
	tx      Tx
	now     time.Time
	actor   Actor
	touched map[string]struct{} // access key IDs whose credentials to recompile
	changed []string            // API keys announced on the change feed
	// written holds records an import put, decoded, so compiling their
	// credentials does not decode them again (see remember).
	written map[RecordRef]any
}

// update runs fn in one backend transaction, then recompiles the
// credentials of the access keys fn touched.
func (s *Store) update(ctx context.Context, actor Actor, fn func(w *writer) error) error {
	return s.updateStaged(ctx, actor, fn, nil, nil)
}

// updateStaged is update that calls visible, unless nil, once the write is
// visible to the next, before it is durable (StagedUpdater). With ready, it
// may run fn before ready returns, and commits after (AheadUpdater).
func (s *Store) updateStaged(ctx context.Context, actor Actor, fn func(w *writer) error, ready func() error, visible func()) error {
	var last *writer
	run := func(tx Tx) error {
		w := &writer{s: s, tx: tx, now: s.now().UTC(), actor: actor, touched: make(map[string]struct{})}
		last = w
		if !s.sealingKeyRecorded.Load() {
			if err := s.recordSealingKey(tx, false); err != nil {
				return err
			}
		}
		if err := fn(w); err != nil {
			return err
		}
		ids := make([]string, 0, len(w.touched))
		for id := range w.touched {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids {
			if err := w.compileCredential(id); err != nil {
				return err
			}
		}
		// What the run decoded is not needed once it has written: the
		// transaction may wait a while to commit (AheadUpdater).
		w.touched, w.written = nil, nil
		return nil
	}
	var err error
	if ready != nil {
		err = UpdateAhead(ctx, s.backend, run, ready, visible)
	} else {
		err = UpdateStaged(ctx, s.backend, run, visible)
	}
	if err == nil && s.committed != nil && len(last.changed) > 0 {
		s.committed(last.changed)
	}
	return err
}

// expect sizes the writer's maps for a write that touches n keys and
// authorizations (a bulk import), so they do not grow a step at a time.
func (w *writer) expect(n int) {
	w.touched = make(map[string]struct{}, n)
	w.written = make(map[RecordRef]any, n)
}

// announce tells the change feed (and, once committed, Options.Committed)
// that the credential of apiKey changed.
func (w *writer) announce(apiKey string) {
	w.changed = append(w.changed, apiKey)
	w.tx.Notify(apiKey)
}

// touch marks an access key whose credential the write changes.
func (w *writer) touch(keyID string) { w.touched[keyID] = struct{}{} }

// compileCredential rewrites the credential record of an access key from
// its key and authorization records, and announces it.
func (w *writer) compileCredential(keyID string) error {
	var key ExportedKey
	if ok, err := lookup(w, tblKeys, keyID, &key); err != nil || !ok {
		return err
	}
	rec := credentialRecord{
		AccessKeyID:          key.ID,
		APIKey:               key.APIKey,
		Enabled:              key.Enabled,
		ExpiresAt:            key.ExpiresAt,
		SealedSecret:         key.SealedSecret,
		SealedPreviousSecret: key.SealedPreviousSecret,
	}
	if key.SealedPreviousSecret != "" {
		rec.PreviousSecretExpiresAt = key.PreviousSecretExpiresAt
	}
	authID, err := w.tx.Get(tblKeyAuthorizations, keyID)
	if err != nil {
		return err
	}
	if authID != nil {
		var auth Authorization
		ok, err := lookup(w, tblAuthorizations, string(authID), &auth)
		if err != nil {
			return err
		}
		if ok {
			rec.Authorization = &CredentialAuthorization{
				ID:         auth.ID,
				Enabled:    auth.Enabled,
				AllowedIPs: auth.AllowedIPs,
				Bindings:   auth.Bindings,
				Plan:       auth.Plan,
			}
			if auth.ValidFrom != nil {
				rec.Authorization.ValidFrom = *auth.ValidFrom
			}
			if auth.ValidUntil != nil {
				rec.Authorization.ValidUntil = *auth.ValidUntil
			}
		}
	}
	if err := putJSON(w.tx, tblCredentials, key.APIKey, rec); err != nil {
		return err
	}
	w.announce(key.APIKey)
	return nil
}

// audit appends an audit record of this write.
func (w *writer) audit(action, target string) error {
	actor := w.actor.Name
	if actor == "" {
		actor = "unknown"
	}
	id, err := w.s.auditID(w.now)
	if err != nil {
		return err
	}
	return putJSON(w.tx, tblAudit, id, AuditRecord{
		At:         w.now,
		Actor:      actor,
		Action:     action,
		Target:     target,
		RemoteAddr: w.actor.RemoteAddr,
	})
}

// auditID sorts newest first: the inverted time, then a random suffix for
// records of the same nanosecond.
func (s *Store) auditID(at time.Time) (string, error) {
	suffix, err := s.randomBytes(4)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%016x-%x", math.MaxUint64-uint64(at.UnixNano()), suffix), nil
}

var idEncoding = base32.NewEncoding("0123456789abcdefghijklmnopqrstuv").WithPadding(base32.NoPadding)

// newID returns prefix + 26 url-safe characters: 48 bits of milliseconds,
// so lists come in creation order, then 80 random bits. IDs one store makes
// in the same millisecond (or after its clock stepped back) follow the
// previous one, its bits plus one, so they keep their order too.
func (s *Store) newID(prefix string) (string, error) {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(s.now().UnixMilli())<<16)
	if _, err := io.ReadFull(s.rand, b[6:]); err != nil {
		return "", fmt.Errorf("generating id: %w", err)
	}
	s.idMu.Lock()
	if bytes.Compare(b[:], s.lastID[:]) <= 0 {
		b = s.lastID
		for i := len(b) - 1; i >= 0; i-- {
			if b[i]++; b[i] != 0 {
				break
			}
		}
	}
	s.lastID = b
	s.idMu.Unlock()
	return prefix + idEncoding.EncodeToString(b[:]), nil
}

func (s *Store) randomBytes(n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(s.rand, b); err != nil {
		return nil, fmt.Errorf("reading random bytes: %w", err)
	}
	return b, nil
}

// randomHex returns n random bytes as upper-case hex.
func (s *Store) randomHex(n int) (string, error) {
	b, err := s.randomBytes(n)
	if err != nil {
		return "", err
	}
	const digits = "0123456789ABCDEF"
	out := make([]byte, 2*n)
	for i, c := range b {
		out[2*i], out[2*i+1] = digits[c>>4], digits[c&0x0f]
	}
	return string(out), nil
}

func getJSON(tx Tx, table, id string, v any) (bool, error) {
	b, err := tx.Get(table, id)
	if err != nil || b == nil {
		return false, err
	}
	if err := unmarshalRecord(b, v); err != nil {
		return false, fmt.Errorf("%s record %s: %w", table, id, err)
	}
	return true, nil
}

func putJSON(tx Tx, table, id string, v any) error {
	b, err := marshalRecord(v)
	if err != nil {
		return err
	}
	return tx.Put(table, id, b)
}

// clampLimit applies the paging bounds: 0 or less is the default.
func clampLimit(limit int) int {
	switch {
	case limit <= 0:
		return DefaultPageLimit
	case limit > MaxPageLimit:
		return MaxPageLimit
	}
	return limit
}

// scanPage reads one page of a table after page.Cursor, in ascending ID
// order, keeping the records decode accepts. The next cursor is "" when
// nothing follows.
func scanPage[T any](tx Tx, table string, page Page, decode func(Record) (T, bool, error)) ([]T, string, error) {
	return collectPage(tx.Scan, table, page, 0, decode)
}

// scanPageNewestFirst is scanPage in descending ID order, which is newest
// first for the tables keyed by newID. A page examines at most budget
// records (0: no bound), so a filter that few records pass costs a bounded
// scan: when the budget runs out the page ends early, maybe empty, with a
// cursor to go on from.
func scanPageNewestFirst[T any](tx Tx, table string, page Page, budget int, decode func(Record) (T, bool, error)) ([]T, string, error) {
	return collectPage(tx.ScanReverse, table, page, budget, decode)
}

// filteredScanBatch is how many records a bounded scan reads at a time.
const filteredScanBatch = 1000

func collectPage[T any](scan func(table, from string, limit int) ([]Record, error), table string, page Page, budget int,
	decode func(Record) (T, bool, error)) ([]T, string, error) {
	limit := clampLimit(page.Limit)
	batch := limit + 1
	if budget > 0 {
		batch = max(batch, min(budget, filteredScanBatch))
	}
	items := make([]T, 0, min(limit, 64))
	from, last, examined := page.Cursor, "", 0
	for {
		records, err := scan(table, from, batch)
		if err != nil {
			return nil, "", err
		}
		for _, r := range records {
			if budget > 0 && examined == budget {
				return items, from, nil
			}
			examined++
			from = r.ID
			item, ok, err := decode(r)
			if err != nil {
				return nil, "", err
			}
			if !ok {
				continue
			}
			if len(items) == limit {
				return items, last, nil
			}
			items = append(items, item)
			last = r.ID
		}
		if len(records) < batch {
			return items, "", nil
		}
	}
}
