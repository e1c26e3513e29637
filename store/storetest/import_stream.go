package storetest

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/accessauth/caddy-access-auth/internal/bulkgen"
	"github.com/accessauth/caddy-access-auth/store"
)

// testImportStream: ImportFrom commits batch by batch while the export is
// still arriving, brings every key and authorization in, and what ExportTo
// streams out imports again.
func testImportStream(t *testing.T, newBackend func(t *testing.T) store.Backend) {
	e := newEnv(t, newBackend)
	n := 2*store.ImportBatch + 10
	spec := bulkgen.Spec{Keys: n, Group: "bulk", MasterKey: masterKey1}
	var size countingWriter
	noErr(t, bulkgen.Write(&size, spec))

	pr, pw := io.Pipe()
	seenEarly := make(chan bool, 1)
	go func() {
		// Near the end of the stream, the first keys must be in the store
		// already: the import did not wait for the whole export.
		w := &checkpointWriter{w: pw, at: size.n * 9 / 10, check: func() {
			_, err := e.s.LoadCredential(e.ctx, bulkgen.APIKey(0))
			seenEarly <- err == nil
		}}
		pw.CloseWithError(bulkgen.Write(w, spec))
	}()
	sum := get(e.s.ImportFrom(e.ctx, pr, actor)).must(t)
	if !<-seenEarly {
		t.Error("the first keys were not committed before the stream ended")
	}
	if want := (store.ImportSummary{Keys: n, Authorizations: n, Groups: 1}); sum != want {
		t.Fatalf("summary %+v, want %+v", sum, want)
	}
	for _, i := range []int{0, store.ImportBatch, n - 1} {
		c := e.credential(bulkgen.APIKey(i))
		if c.Secret != bulkgen.Secret(i) || c.Authorization == nil || c.Authorization.ID != bulkgen.AuthorizationID(i) ||
			len(c.Authorization.Bindings) != 1 || c.Authorization.Bindings[0].Group != "bulk" {
			t.Errorf("credential %d = %+v", i, c)
		}
	}

	// Out through ExportTo, in again elsewhere, through a pipe.
	other := newEnv(t, newBackend)
	pr, pw = io.Pipe()
	go func() { pw.CloseWithError(e.s.ExportTo(e.ctx, pw)) }()
	again := get(other.s.ImportFrom(other.ctx, pr, actor)).must(t)
	if again != sum {
		t.Errorf("re-import of the export: %+v, want %+v", again, sum)
	}
	if c := other.credential(bulkgen.APIKey(n - 1)); c.Secret != bulkgen.Secret(n-1) || c.Authorization == nil {
		t.Errorf("re-imported credential %+v", c)
	}
}

// testImportStreamErrors: malformed streams are invalid_argument naming
// where, and a failing batch names the record by its place in the whole
// export.
func testImportStreamErrors(t *testing.T, newBackend func(t *testing.T) store.Backend) {
	e := newEnv(t, newBackend)
	for _, tt := range []struct{ name, body, field string }{
		{"not JSON", `nope`, "the export"},
		{"an array", `[]`, "the export"},
		{"truncated", `{"version":1,"keys":[{"id":"ak-1"`, "keys[0]"},
		{"records before version", `{"keys":[]}`, "version"},
		{"wrong version", `{"version":9}`, "version"},
		{"no version", `{}`, "version"},
		{"keys not an array", `{"version":1,"keys":"no"}`, "keys"},
		{"a key of the wrong type", `{"version":1,"keys":[7]}`, "keys[0]"},
		{"an authorization for no key", `{"version":1,"authorizations":[{"id":"az-1","access_key_id":"ak-none"}]}`, "authorizations[0].access_key_id"},
		{"a field after the last", `{"version":1,"keys":[],}`, "the export"},
		{"a record after the last", `{"version":1,"keys":[{"id":"ak-1"},]}`, "keys[1]"},
	} {
		t.Run(strings.ReplaceAll(tt.name, " ", "_"), func(t *testing.T) {
			_, err := e.s.ImportFrom(e.ctx, strings.NewReader(tt.body), actor)
			var invalid *store.InvalidArgumentError
			if !errors.As(err, &invalid) || invalid.Field != tt.field {
				t.Errorf("error %v, want invalid argument in %s", err, tt.field)
			}
		})
	}
}

// testImportRecordLimit: a record larger than store.MaxImportRecordBytes
// fails the import, whatever it holds, with an error naming the limit; one
// just within it is read (and then judged on its fields).
func testImportRecordLimit(t *testing.T, newBackend func(t *testing.T) store.Backend) {
	e := newEnv(t, newBackend)
	record := func(size int) string {
		const open, end = `{"id":"ak-1","description":"`, `"}`
		return open + strings.Repeat("d", size-len(open)-len(end)) + end
	}
	for _, body := range []string{
		`{"version":1,"keys":[` + record(store.MaxImportRecordBytes+1) + `]}`,
		`{"version":1,"keys":[{"id":"ak-1"},` + record(store.MaxImportRecordBytes+1) + `]}`,
		`{"version":1,"pad":` + record(store.MaxImportRecordBytes+1) + `}`,
	} {
		_, err := e.s.ImportFrom(e.ctx, strings.NewReader(body), actor)
		if err == nil || !strings.Contains(err.Error(), "MaxImportRecordBytes") ||
			!strings.Contains(err.Error(), strconv.Itoa(store.MaxImportRecordBytes)) {
			t.Errorf("a value of %d bytes: %v, want the limit named", store.MaxImportRecordBytes+1, err)
		}
	}
	_, err := e.s.ImportFrom(e.ctx, strings.NewReader(`{"version":1,"keys":[`+record(store.MaxImportRecordBytes)+`]}`), actor)
	var invalid *store.InvalidArgumentError
	if !errors.As(err, &invalid) || strings.Contains(err.Error(), "MaxImportRecordBytes") {
		t.Errorf("a record of exactly the limit: %v, want it read and refused on its fields", err)
	}
}

// testImportStreamPartial: an import that fails after some batches keeps
// and counts exactly the batches committed before the failure, and the
// failure of a batch wins over an error in what was read after it.
func testImportStreamPartial(t *testing.T, newBackend func(t *testing.T) store.Backend) {
	n := store.ImportBatch
	var export strings.Builder
	noErr(t, bulkgen.Write(&export, bulkgen.Spec{Keys: n, Group: "bulk", MasterKey: masterKey1}))
	full := export.String()

	t.Run("a later batch fails", func(t *testing.T) {
		e := newEnv(t, newBackend)
		body := strings.TrimSuffix(full, "]}\n") + `,{"id":"az-none","access_key_id":"ak-none"}]}`
		sum, err := e.s.ImportFrom(e.ctx, strings.NewReader(body), actor)
		wantInvalid(t, err, fmt.Sprintf("authorizations[%d].access_key_id", n))
		if want := (store.ImportSummary{Keys: n, Authorizations: n, Groups: 1}); sum != want {
			t.Fatalf("summary %+v, want %+v", sum, want)
		}
		if c := e.credential(bulkgen.APIKey(n - 1)); c.Authorization == nil || c.Authorization.ID != bulkgen.AuthorizationID(n-1) {
			t.Errorf("credential of the last committed authorization: %+v", c)
		}
	})

	t.Run("a batch fails while the next is read", func(t *testing.T) {
		e := newEnv(t, newBackend)
		e.key("bulk-000000005") // the name of the export's sixth key: its batch fails
		body := strings.Replace(full, `"authorizations":[`, `"authorizations":[7,`, 1)
		sum, err := e.s.ImportFrom(e.ctx, strings.NewReader(body), actor)
		wantErr(t, err, store.ErrNameTaken)
		if sum != (store.ImportSummary{}) {
			t.Fatalf("summary %+v, want nothing imported", sum)
		}
		if c, err := e.s.LoadCredential(e.ctx, bulkgen.APIKey(0)); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("a key of the failed batch is in the store: %+v %v", c, err)
		}
	})
}

type countingWriter struct{ n int }

func (c *countingWriter) Write(p []byte) (int, error) { c.n += len(p); return len(p), nil }

// checkpointWriter runs check once, when at bytes have been written.
type checkpointWriter struct {
	w       io.Writer
	written int
	at      int
	check   func()
}

func (c *checkpointWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	before := c.written
	c.written += n
	if before < c.at && c.written >= c.at {
		c.check()
	}
	return n, err
}
