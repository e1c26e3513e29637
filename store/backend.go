package store

import "context"

// Backend is the storage engine under Store: store/bolt (package boltstore)
// for one node, store/redis (package redisstore) for several. It knows
// tables of JSON records and transactions, nothing of the rules; Store keeps
// the rules, so both engines behave the same, and store/storetest holds an
// engine to that (see docs/architecture.md).
//
// Tables used by Store: "keys" (by ID), "key_names" (name → ID),
// "api_keys" (APIKey → ID), "authorizations" (by ID), "key_authorizations"
// (access key ID → authorization ID), "groups" (by name),
// "group_authorizations" ("<group> <authorization ID>" → "1", an index),
// "plans" (by name), "plan_authorizations" ("<plan> <authorization ID>" →
// "1", the authorizations naming a plan on themselves or a binding),
// "credentials" (APIKey → compiled Credential record, secrets sealed), "audit"
// (by a key that sorts newest first), "meta". Table names are plain
// identifiers; a backend must accept any of them without prior declaration.
type Backend interface {
	// View runs fn with a read-only transaction.
	View(ctx context.Context, fn func(Tx) error) error
	// Update runs fn in one atomic read-write transaction: either every Put,
	// Delete and Notify of fn takes effect or none does. It may run fn more
	// than once (optimistic engines retry on conflict), so fn must have no
	// other side effects. A store that cannot be reached yields ErrUnavailable.
	Update(ctx context.Context, fn func(Tx) error) error
	// Get reads one record outside a transaction: the single round trip of a
	// cache miss. A missing record is (nil, nil).
	Get(ctx context.Context, table, id string) ([]byte, error)
	// Subscribe delivers the changes committed by every node (including this
	// one) in revision order, and a Reset change when some may have been
	// missed. The channel is closed when ctx ends.
	Subscribe(ctx context.Context) <-chan Change
	Close() error
}

// Tx is one transaction of a Backend.
type Tx interface {
	// Get returns a record, or nil when there is none. It sees the Puts and
	// Deletes made earlier in the same transaction (Store relies on that);
	// Scan need not, and Store never scans a table after writing to it.
	Get(table, id string) ([]byte, error)
	// Put keeps value until the transaction ends (bbolt writes it at
	// commit): the caller must not change it after.
	Put(table, id string, value []byte) error
	Delete(table, id string) error
	// Scan returns up to limit records of a table in ascending id order,
	// starting after the id after ("" = from the start). limit <= 0 means all.
	Scan(table, after string, limit int) ([]Record, error)
	// ScanReverse is Scan in descending id order, starting before the id
	// before ("" = from the end): lists newest first, since IDs begin with
	// their creation time.
	ScanReverse(table, before string, limit int) ([]Record, error)
	// Notify announces, once the transaction commits, that the compiled
	// credentials of these API keys changed.
	Notify(apiKeys ...string)
}

// IsLookupTable says whether a table is read only by ID, never listed by
// Store: "key_names", "api_keys" and "key_authorizations", which map a
// name, an API key or an access key ID to another record's ID, and
// "credentials", read by API key on a cache miss. An engine
// may keep no ordered index of them (store/redis does not, which saves an
// index entry a key in each); its Scan of them must still work, however
// slowly.
func IsLookupTable(table string) bool {
	switch table {
	case tblKeyNames, tblAPIKeys, tblKeyAuthorizations, tblCredentials:
		return true
	}
	return false
}

// Record is one row of a table.
type Record struct {
	ID    string
	Value []byte
}

// RecordRef names one record of a table.
type RecordRef struct{ Table, ID string }

// Prefetcher is a Tx that reads many records in one round trip. Store
// calls it before a bulk write, so that the write's Gets of those records
// cost no round trip each; an engine whose reads are local need not have it.
type Prefetcher interface {
	Prefetch(refs []RecordRef) error
}

// A StagedUpdater is a Backend whose writes become visible to the
// transactions that follow before they are durable: store/redis commits on
// the master, then waits for a replica to hold the write. UpdateStaged is
// Update that calls visible, once, as soon as fn's writes are visible, and
// returns when they are durable; a caller with a sequence of dependent
// writes (a bulk import) prepares the next one meanwhile.
type StagedUpdater interface {
	UpdateStaged(ctx context.Context, fn func(Tx) error, visible func()) error
}

// UpdateStaged runs fn as b's UpdateStaged where the engine has it, else as
// its Update, which is durable when visible. A nil visible is Update.
func UpdateStaged(ctx context.Context, b Backend, fn func(Tx) error, visible func()) error {
	if staged, ok := b.(StagedUpdater); ok && visible != nil {
		return staged.UpdateStaged(ctx, fn, visible)
	}
	err := b.Update(ctx, fn)
	if err == nil && visible != nil {
		visible()
	}
	return err
}

// An AheadUpdater is a StagedUpdater that can run a write's fn before its
// transaction may begin: UpdateAhead runs fn at once on the records as they
// are, then waits for ready (the write before, which must be visible
// first) and, unless ready fails, commits what fn wrote if no record fn
// read has changed since but by writes this process knows of and fn did
// not read; otherwise it runs fn again, as UpdateStaged. A bulk import
// merges its next batch while the engine commits the last one.
type AheadUpdater interface {
	UpdateAhead(ctx context.Context, fn func(Tx) error, ready func() error, visible func()) error
}

// UpdateAhead runs fn as b's UpdateAhead where the engine has it, else as
// UpdateStaged once ready returns, unless ready fails.
func UpdateAhead(ctx context.Context, b Backend, fn func(Tx) error, ready func() error, visible func()) error {
	if ahead, ok := b.(AheadUpdater); ok {
		return ahead.UpdateAhead(ctx, fn, ready, visible)
	}
	if err := ready(); err != nil {
		return err
	}
	return UpdateStaged(ctx, b, fn, visible)
}

// prefetch reads the records refs lists ahead where tx can.
func prefetch(tx Tx, refs []RecordRef) error {
	if p, ok := tx.(Prefetcher); ok && len(refs) > 0 {
		return p.Prefetch(refs)
	}
	return nil
}
