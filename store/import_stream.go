package store

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
)

// ImportBatch is how many keys and authorizations ImportFrom commits in
// one transaction: few enough that a Redis MULTI/EXEC of them (about a
// dozen commands a record) answers well within the client's 1 s read
// timeout on a loaded machine, many enough that round trips and fsyncs
// stay a small part of the cost.
const ImportBatch = 1000

// MaxImportRecordBytes bounds one record (or any other value) of an
// import stream, so that memory stays bounded whatever the input.
const MaxImportRecordBytes = 4 << 20

// ImportSummary counts the records an import brought in.
type ImportSummary struct {
	Keys           int `json:"keys"`
	Authorizations int `json:"authorizations"`
	Groups         int `json:"groups"`
	Plans          int `json:"plans"`
}

// ImportFrom reads an export from r as it streams in and merges it into the
// store by Import's rules. An export of up to ImportBatch keys and
// authorizations is one transaction, as with Import. A larger one commits a
// batch of ImportBatch records at a time, each batch atomic: an import that
// fails part way keeps the batches before the failure, and running it again
// completes it (importing is idempotent). A batch commits while the next one
// is read, on an engine whose writes are visible before they are durable
// (StagedUpdater) the next one's transaction runs while the last becomes
// durable, and on one that can merge a write ahead of its transaction
// (AheadUpdater) the next one is merged while the last commits;
// ImportFrom returns once every batch is durable. Memory stays bounded when
// the sections come in ExportTo's order (groups, plans, keys,
// authorizations); in another order the authorizations are held until the
// groups, plans and keys they may name have been read. A record (or any
// other value) larger than MaxImportRecordBytes fails the import with an
// error that names the limit.
func (s *Store) ImportFrom(ctx context.Context, r io.Reader, actor Actor) (ImportSummary, error) {
	im := &streamImport{s: s, ctx: ctx, actor: actor, in: &recordScanner{r: bufio.NewReaderSize(r, 64<<10)}, read: map[string]bool{}}
	err := im.run()
	// A batch still committing comes before whatever stopped the stream.
	if batchErr := im.drain(); batchErr != nil {
		err = batchErr
	}
	return im.done, err
}

// streamImport is the state of one ImportFrom.
type streamImport struct {
	s     *Store
	ctx   context.Context
	actor Actor
	in    *recordScanner

	pending Export        // read, not yet committed
	at      importOffsets // position of pending's first records
	read    map[string]bool
	done    ImportSummary // committed

	// The batches committing while the stream reads on, oldest first: at
	// most one becoming durable, one committing and one merged ahead of
	// its transaction (see commit).
	inflight []*batchCommit
}

// batchCommit is one batch's merge, running in its own goroutine.
type batchCommit struct {
	records ImportSummary // what the batch holds
	visible chan struct{} // closed once its writes are visible to the next batch
	done    chan struct{} // closed once it is durable, or failed: err says
	err     error
}

func (im *streamImport) run() error {
	if err := im.in.expect('{', "the export"); err != nil {
		return err
	}
	for first := true; ; first = false {
		end, err := im.in.more('}', first, "the export")
		if err != nil {
			return err
		}
		if end {
			break
		}
		name, err := im.in.name("the export")
		if err != nil {
			return err
		}
		switch name {
		case "version":
			raw, err := im.in.value("version")
			if err != nil {
				return err
			}
			if err := json.Unmarshal(raw, &im.pending.Version); err != nil {
				return malformed("version", err)
			}
			if im.pending.Version != ExportVersion {
				return errExportVersion(im.pending.Version)
			}
		case "keys", "authorizations", "groups", "plans":
			if im.pending.Version == 0 {
				return invalid("version", "must come before %s", name)
			}
			if err := im.section(name); err != nil {
				return err
			}
		default: // exported_at and fields of later versions
			raw, err := im.in.value(name)
			if err != nil {
				return err
			}
			if !json.Valid(raw) {
				return malformed(name, json.Unmarshal(raw, new(any)))
			}
		}
	}
	if im.pending.Version != ExportVersion {
		return errExportVersion(im.pending.Version)
	}
	return im.commit(true)
}

// section reads one array of records, committing full batches.
func (im *streamImport) section(name string) error {
	c, err := im.in.peek(name)
	if err != nil {
		return err
	}
	if c == 'n' { // null: no records
		raw, err := im.in.value(name)
		if err != nil {
			return err
		}
		if string(raw) != "null" {
			return invalid(name, "expected an array")
		}
		im.read[name] = true
		return nil
	}
	if err := im.in.expect('[', name); err != nil {
		return invalid(name, "expected an array")
	}
	for i := 0; ; i++ {
		end, err := im.in.more(']', i == 0, name)
		if err != nil {
			return err
		}
		if end {
			break
		}
		if err := im.record(name, i); err != nil {
			return err
		}
		if err := im.commit(false); err != nil {
			return err
		}
	}
	im.read[name] = true
	return nil
}

// record decodes the i-th record of a section into pending.
func (im *streamImport) record(name string, i int) error {
	raw, err := im.in.value(name)
	field := func() string { return fmt.Sprintf("%s[%d]", name, i) }
	if invalidErr := (*InvalidArgumentError)(nil); errors.As(err, &invalidErr) && err != errImportRecordTooLarge {
		return invalid(field(), "%s", invalidErr.Message)
	}
	if err != nil {
		return err
	}
	switch name {
	case "keys":
		err = decodeAppend(raw, &im.pending.Keys)
	case "authorizations":
		err = decodeAppend(raw, &im.pending.Authorizations)
	case "groups":
		err = decodeAppend(raw, &im.pending.Groups)
	case "plans":
		err = decodeAppend(raw, &im.pending.Plans)
	}
	if err != nil {
		return malformed(field(), err)
	}
	return nil
}

func reuse[T any](list []T) []T {
	clear(list)
	return list[:0]
}

func decodeAppend[T any](raw []byte, list *[]T) error {
	var v T
	if err := unmarshalRecord(raw, &v); err != nil {
		return err
	}
	*list = append(*list, v)
	return nil
}

// commit merges what is pending once a batch is full, or at the end.
// Authorizations wait until the groups, plans and keys they may name are
// in (always the case in ExportTo's order).
func (im *streamImport) commit(final bool) error {
	batch := im.pending
	authsReady := final || (im.read["groups"] && im.read["plans"] && im.read["keys"])
	if !authsReady {
		batch.Authorizations = nil
	}
	if !final && len(batch.Keys)+len(batch.Authorizations) < ImportBatch {
		return nil
	}
	if len(batch.Groups)+len(batch.Plans)+len(batch.Keys)+len(batch.Authorizations) == 0 {
		return nil
	}
	// Checking needs no store: it runs while the batch before commits.
	checked, err := im.s.checkImport(batch, im.at)
	if err != nil {
		return err
	}
	im.at.groups += len(batch.Groups)
	im.at.plans += len(batch.Plans)
	im.at.keys += len(batch.Keys)
	im.at.authorizations += len(batch.Authorizations)
	// The next batch reuses the arrays (the checked batch is a copy),
	// cleared so that they hold no record's strings.
	p := &im.pending
	p.Groups, p.Plans, p.Keys = reuse(p.Groups), reuse(p.Plans), reuse(p.Keys)
	if authsReady {
		p.Authorizations = reuse(p.Authorizations)
	}
	// Three batches at most are in flight, which bounds what is held.
	for len(im.inflight) > 2 {
		if err := im.finish(); err != nil {
			return err
		}
	}
	im.inflight = append(im.inflight, im.start(checked, slices.Clone(im.inflight)))
	return nil
}

// start merges a checked batch in a goroutine while the stream reads on:
// the next batch is read, decoded and checked while this one commits. Its
// transaction begins once the batch before is visible (the merge may read
// what it wrote: the keys its authorizations name) and the one before that
// is durable; an AheadUpdater merges it meanwhile.
func (im *streamImport) start(batch checkedImport, before []*batchCommit) *batchCommit {
	c := &batchCommit{visible: make(chan struct{}), done: make(chan struct{}), records: ImportSummary{
		Keys: len(batch.keys), Authorizations: len(batch.auths), Groups: len(batch.groups), Plans: len(batch.plans)}}
	// An engine calls visible once; a second call must not panic the node.
	var once sync.Once
	visible := func() { once.Do(func() { close(c.visible) }) }
	ready := func() error {
		for i, b := range before {
			if i < len(before)-1 {
				<-b.done
				if b.err != nil {
					return b.err
				}
			} else if err := b.waitVisible(); err != nil {
				return err
			}
		}
		return nil
	}
	go func() {
		defer close(c.done)
		c.err = im.s.applyImport(im.ctx, batch, im.actor, ready, visible)
	}()
	return c
}

// waitVisible returns once the batch's writes are visible, or its error.
func (c *batchCommit) waitVisible() error {
	select {
	case <-c.visible:
		return nil
	case <-c.done:
		return c.err
	}
}

// finish waits for the oldest batch in flight to be durable and counts it.
func (im *streamImport) finish() error {
	c := im.inflight[0]
	im.inflight = im.inflight[1:]
	<-c.done
	if c.err != nil {
		return c.err
	}
	im.done.Groups += c.records.Groups
	im.done.Plans += c.records.Plans
	im.done.Keys += c.records.Keys
	im.done.Authorizations += c.records.Authorizations
	return nil
}

// drain waits for every batch in flight and returns the first error.
func (im *streamImport) drain() error {
	var first error
	for len(im.inflight) > 0 {
		if err := im.finish(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// recordScanner reads an import stream a JSON value at a time: the
// structure around the records (the export's object, the sections'
// arrays) by the byte, each value whole as raw bytes, at most
// MaxImportRecordBytes of them, which the caller decodes (json.Decoder
// buffered and reflected more than the records' own decoding costs).
type recordScanner struct {
	r   *bufio.Reader
	buf []byte // the last value, reused
}

var errImportRecordTooLarge = invalid("import", "a record (or other value) larger than %d bytes (MaxImportRecordBytes)", MaxImportRecordBytes)

// peek returns the next byte after white space, unread.
func (s *recordScanner) peek(what string) (byte, error) {
	for {
		c, err := s.r.ReadByte()
		if err != nil {
			return 0, endOfStream(what, err)
		}
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		}
		return c, s.r.UnreadByte()
	}
}

// expect reads the byte want after white space.
func (s *recordScanner) expect(want byte, what string) error {
	c, err := s.peek(what)
	if err != nil {
		return err
	}
	if c != want {
		return invalid(what, "malformed JSON: expected %q, found %q", want, c)
	}
	_, err = s.r.ReadByte()
	return err
}

// more reads what comes between the members or elements of an object or
// array: the closing byte (end is true) or, except before the first, a
// comma.
func (s *recordScanner) more(closing byte, first bool, what string) (end bool, err error) {
	c, err := s.peek(what)
	if err != nil {
		return false, err
	}
	if c == closing {
		_, err = s.r.ReadByte()
		return true, err
	}
	if !first {
		if c != ',' {
			return false, invalid(what, "malformed JSON: expected ',' or %q, found %q", closing, c)
		}
		s.r.ReadByte()
	}
	return false, nil
}

// name reads an object member's name and its colon.
func (s *recordScanner) name(what string) (string, error) {
	raw, err := s.value(what)
	if err != nil {
		return "", err
	}
	var name string
	if raw[0] != '"' {
		return "", invalid(what, "malformed JSON: expected a field name")
	}
	if err := json.Unmarshal(raw, &name); err != nil {
		return "", malformed(what, err)
	}
	return name, s.expect(':', what)
}

// value reads one whole JSON value after white space: a string, an
// object or array to its closing bracket, anything else to the next
// delimiter. It checks the nesting, not the syntax: decoding does. The
// bytes are valid until the next call.
func (s *recordScanner) value(what string) ([]byte, error) {
	c, err := s.peek(what)
	if err != nil {
		return nil, err
	}
	s.buf = s.buf[:0]
	depth, inString, escaped := 0, false, false
	scalar := c != '{' && c != '[' && c != '"'
	for {
		chunk, err := s.r.Peek(max(1, s.r.Buffered()))
		if len(chunk) == 0 {
			if scalar && len(s.buf) > 0 && errors.Is(err, io.EOF) {
				return s.buf, nil
			}
			return nil, endOfStream(what, err)
		}
		end := -1
	scan:
		for i, c := range chunk {
			switch {
			case inString:
				switch {
				case escaped:
					escaped = false
				case c == '\\':
					escaped = true
				case c == '"':
					inString = false
					if depth == 0 {
						end = i + 1
						break scan
					}
				}
			case scalar:
				if c <= ' ' || c == ',' || c == ']' || c == '}' || c == ':' || c == '"' || c == '[' || c == '{' {
					end = i
					break scan
				}
			case c == '"':
				inString = true
			case c == '{' || c == '[':
				depth++
			case c == '}' || c == ']':
				depth--
				if depth == 0 {
					end = i + 1
					break scan
				}
			}
		}
		n := len(chunk)
		if end >= 0 {
			n = end
		}
		if len(s.buf)+n > MaxImportRecordBytes {
			return nil, errImportRecordTooLarge
		}
		s.buf = append(s.buf, chunk[:n]...)
		s.r.Discard(n)
		if end >= 0 {
			if len(s.buf) == 0 {
				return nil, invalid(what, "malformed JSON: unexpected %q", chunk[0])
			}
			return s.buf, nil
		}
	}
}

// endOfStream is the error of a stream that ends, or fails, within the
// export: a reader's own failure (a body over its limit, a lost
// connection) as it is.
func endOfStream(what string, err error) error {
	if err == nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return invalid(what, "malformed JSON: unexpected end of the export")
	}
	return err
}

// malformed is the error of a value that does not decode.
func malformed(field string, err error) error {
	return invalid(field, "malformed JSON: %v", err)
}
