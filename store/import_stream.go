package store

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

// ImportFrom reads an export from r as it streams in and merges it into
// the store by Import's rules. An export of up to ImportBatch keys and
// authorizations is one transaction, as with Import. A larger one commits
// a batch of ImportBatch records at a time, each batch atomic: an import
// that fails part way keeps the batches before the failure, and running it
// again completes it (importing is idempotent). Memory stays bounded when
// the sections come in ExportTo's order (groups, plans, keys,
// authorizations); in another order the authorizations are held until the
// groups, plans and keys they may name have been read.
func (s *Store) ImportFrom(ctx context.Context, r io.Reader, actor Actor) (ImportSummary, error) {
	in := &valueLimitReader{r: bufio.NewReaderSize(r, 64<<10)}
	im := &streamImport{s: s, ctx: ctx, actor: actor, in: in, dec: json.NewDecoder(in), read: map[string]bool{}}
	err := im.run()
	return im.done, err
}

// streamImport is the state of one ImportFrom.
type streamImport struct {
	s     *Store
	ctx   context.Context
	actor Actor
	in    *valueLimitReader
	dec   *json.Decoder

	pending Export        // read, not yet committed
	at      importOffsets // position of pending's first records
	read    map[string]bool
	done    ImportSummary // committed
}

func (im *streamImport) run() error {
	if err := im.delim('{', "the export"); err != nil {
		return err
	}
	for im.dec.More() {
		im.in.read = 0
		tok, err := im.dec.Token()
		if err != nil {
			return im.malformed("the export", err)
		}
		name, _ := tok.(string)
		switch name {
		case "version":
			if err := im.dec.Decode(&im.pending.Version); err != nil {
				return im.malformed("version", err)
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
			var skip json.RawMessage
			if err := im.dec.Decode(&skip); err != nil {
				return im.malformed(name, err)
			}
		}
	}
	if err := im.delim('}', "the export"); err != nil {
		return err
	}
	if im.pending.Version != ExportVersion {
		return errExportVersion(im.pending.Version)
	}
	return im.commit(true)
}

// section reads one array of records, committing full batches.
func (im *streamImport) section(name string) error {
	tok, err := im.dec.Token()
	if err != nil {
		return im.malformed(name, err)
	}
	if tok == nil { // null: no records
		im.read[name] = true
		return nil
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return invalid(name, "expected an array")
	}
	for i := 0; im.dec.More(); i++ {
		im.in.read = 0
		if err := im.record(name, i); err != nil {
			return err
		}
		if err := im.commit(false); err != nil {
			return err
		}
	}
	if _, err := im.dec.Token(); err != nil {
		return im.malformed(name, err)
	}
	im.read[name] = true
	return nil
}

// record decodes the i-th record of a section into pending.
func (im *streamImport) record(name string, i int) error {
	var err error
	switch name {
	case "keys":
		err = decodeAppend(im.dec, &im.pending.Keys)
	case "authorizations":
		err = decodeAppend(im.dec, &im.pending.Authorizations)
	case "groups":
		err = decodeAppend(im.dec, &im.pending.Groups)
	case "plans":
		err = decodeAppend(im.dec, &im.pending.Plans)
	}
	if err != nil {
		return im.malformed(fmt.Sprintf("%s[%d]", name, i), err)
	}
	return nil
}

func decodeAppend[T any](dec *json.Decoder, list *[]T) error {
	var v T
	if err := dec.Decode(&v); err != nil {
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
	if err := im.s.importBatch(im.ctx, batch, im.at, im.actor); err != nil {
		return err
	}
	im.at.groups += len(batch.Groups)
	im.at.plans += len(batch.Plans)
	im.at.keys += len(batch.Keys)
	im.at.authorizations += len(batch.Authorizations)
	im.done.Groups += len(batch.Groups)
	im.done.Plans += len(batch.Plans)
	im.done.Keys += len(batch.Keys)
	im.done.Authorizations += len(batch.Authorizations)
	held := im.pending.Authorizations
	im.pending = Export{Version: im.pending.Version}
	if !authsReady {
		im.pending.Authorizations = held
	}
	return nil
}

func (im *streamImport) delim(want json.Delim, what string) error {
	tok, err := im.dec.Token()
	if err != nil {
		return im.malformed(what, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return invalid(what, "expected a JSON object")
	}
	return nil
}

// valueLimitReader fails once more than MaxImportRecordBytes have been
// read since read was last zeroed (before each value): json.Decoder would
// otherwise buffer a value of any size.
type valueLimitReader struct {
	r    io.Reader
	read int
	err  error // the last failure of the reader, EOF aside
}

var errImportRecordTooLarge = invalid("import", "a record (or other value) larger than %d bytes", MaxImportRecordBytes)

func (l *valueLimitReader) Read(p []byte) (int, error) {
	if l.read > MaxImportRecordBytes {
		l.err = errImportRecordTooLarge
		return 0, l.err
	}
	n, err := l.r.Read(p)
	l.read += n
	if err != nil && err != io.EOF {
		l.err = err
	}
	return n, err
}

// malformed is the error of a value that does not decode: invalid, unless
// the reader itself failed (a body over its limit, a lost connection,
// too large a record), whose error is kept as it is.
func (im *streamImport) malformed(field string, err error) error {
	if im.in.err != nil && errors.Is(err, im.in.err) {
		return err
	}
	return invalid(field, "malformed JSON: %v", err)
}
