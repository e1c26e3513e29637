// Package bulkgen writes exports of many access keys, each with an
// authorization bound to one group, as another installation would: the
// data of the scale campaign (scale/), the bulk tests and benchmarks. It
// streams, so a million keys never sit in memory.
package bulkgen

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/accessauth/caddy-access-auth/store"
)

// Spec describes a generated data set.
type Spec struct {
	Keys      int    // how many access keys, each with an authorization
	Group     string // the group every authorization is bound to (any environment)
	MasterKey []byte // seals the secrets
}

// KeyID, APIKey and Secret are the credentials of the i-th key, so a load
// generator can sign as any of them without reading the export.
func KeyID(i int) string  { return fmt.Sprintf("ak-bulk%09d", i) }
func APIKey(i int) string { return fmt.Sprintf("BULKAK%010d", i) }
func Secret(i int) string { return fmt.Sprintf("bulk-secret-%010d-%x", i, uint32(i)*2654435761) }

// AuthorizationID is the ID of the i-th key's authorization.
func AuthorizationID(i int) string { return fmt.Sprintf("az-bulk%09d", i) }

// Write writes the export of spec to w in the order ExportTo writes
// (groups, plans, keys, authorizations), one record at a time.
func Write(w io.Writer, spec Spec) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	group, _ := json.Marshal(store.Group{Name: spec.Group, Environments: []string{"online"}, CreatedAt: at})
	fmt.Fprintf(bw, `{"version":%d,"exported_at":"2026-01-01T00:00:00Z","groups":[%s],"plans":[],"keys":[`, store.ExportVersion, group)
	for i := range spec.Keys {
		sealed, err := store.SealSecret(spec.MasterKey, KeyID(i), Secret(i))
		if err != nil {
			return err
		}
		b, _ := json.Marshal(store.ExportedKey{AccessKey: store.AccessKey{
			ID: KeyID(i), Name: fmt.Sprintf("bulk-%09d", i), Kind: store.KindImported, APIKey: APIKey(i),
			Enabled: true, CreatedAt: at, UpdatedAt: at,
		}, SealedSecret: sealed})
		if i > 0 {
			bw.WriteByte(',')
		}
		if _, err := bw.Write(b); err != nil {
			return err
		}
	}
	bw.WriteString(`],"authorizations":[`)
	for i := range spec.Keys {
		b, _ := json.Marshal(store.Authorization{
			ID: AuthorizationID(i), AccessKeyID: KeyID(i), Enabled: true, CreatedAt: at, UpdatedAt: at,
			AllowedIPs: []string{}, Bindings: []store.Binding{{Group: spec.Group, Environment: store.AnyEnvironment}},
		})
		if i > 0 {
			bw.WriteByte(',')
		}
		if _, err := bw.Write(b); err != nil {
			return err
		}
	}
	bw.WriteString("]}\n")
	return bw.Flush()
}
