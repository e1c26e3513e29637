package store

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// recordSeeds are records as the store writes them, and near misses.
var recordSeeds = []string{
	`{"id":"ak-1","name":"n","description":"","kind":"imported","api_key":"A","enabled":true,"expires_at":null,"created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00.123456789Z","last_used_at":null,"secret_rotated_at":"2026-02-01T00:00:00Z","previous_secret_expires_at":null,"sealed_secret":"v1.abcd.AAAA","sealed_previous_secret":"v1.abcd.BBBB"}`,
	`{"id":"az-1","access_key_id":"ak-1","api_key":"A","description":"d \u003c\u0026","enabled":false,"valid_from":null,"valid_until":"2027-01-01T00:00:00Z","allowed_ips":["10.0.0.0/8"],"bindings":[{"group":"g","environment":"*","plan":null},{"group":"h","environment":"online","plan":"gold"}],"plan":"gold","created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z"}`,
	`{"access_key_id":"ak-1","api_key":"A","enabled":true,"expires_at":"2027-01-01T00:00:00Z","sealed_secret":"v1.x.y","authorization":{"ID":"az-1","Enabled":true,"ValidFrom":"0001-01-01T00:00:00Z","ValidUntil":"0001-01-01T00:00:00Z","AllowedIPs":null,"Bindings":[],"Plan":null}}`,
	` { "id" : "ak-1" , "ID" : "x", "enabled" : null, "allowed_ips" : [ ] , "bindings" : null } `,
	`{"id":"a","id":"b","created_at":"2026-01-01T00:00:00+01:00","authorization":null}`,
	`{"name":"é\u2028","kind":"x\"y","api_key":"\xff","created_at":"2026-01-01T00:00:00.000Z"}`,
	`{"authorization":{"ID":"a"},"authorization":{"Enabled":true}}`,
	`null`, `{}`, `[]`, `{"id":1}`, `{"bindings":[null]}`, `{"allowed_ips":[null,"a"]}`,
}

// FuzzRecordJSON holds the reflection-free codec of record_json.go to
// encoding/json: the same value or the same refusal when decoding
// anything, byte-identical output when encoding what was decoded.
func FuzzRecordJSON(f *testing.F) {
	for _, s := range recordSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkRecordJSON[ExportedKey](t, data)
		checkRecordJSON[Authorization](t, data)
		checkRecordJSON[credentialRecord](t, data)
	})
}

func checkRecordJSON[T any](t *testing.T, data []byte) {
	t.Helper()
	var want, got T
	wantErr := json.Unmarshal(data, &want)
	gotErr := unmarshalRecord(data, &got)
	if (wantErr == nil) != (gotErr == nil) {
		t.Fatalf("%T from %q: encoding/json %v, fast path %v", want, data, wantErr, gotErr)
	}
	if wantErr != nil {
		return
	}
	if !reflect.DeepEqual(want, got) {
		t.Fatalf("%T from %q:\nencoding/json %+v\nfast path     %+v", want, data, want, got)
	}
	wantOut, wantErr := json.Marshal(want)
	gotOut, gotErr := marshalRecord(got)
	if (wantErr == nil) != (gotErr == nil) || !bytes.Equal(wantOut, gotOut) {
		t.Fatalf("%T encoded:\nencoding/json %s %v\nfast path     %s %v", want, wantOut, wantErr, gotOut, gotErr)
	}
}

// FuzzRecordJSONEncode encodes records of arbitrary strings and times,
// which no decoded record reaches (invalid UTF-8, years beyond 9999,
// offsets of a day), byte for byte as encoding/json does.
func FuzzRecordJSONEncode(f *testing.F) {
	f.Add("ak-1", "name <&>", "\xff\u2028\x01\b\f\n\r\t\"\\", "*", true, int64(1767225600), int64(123), 0, "")
	f.Add("", "", "", "", false, int64(-62135596800), int64(0), 3600, "gold")
	f.Add("é", "\x7f", "", "", false, int64(253402300800), int64(999999999), -86400, "\u2029")
	f.Fuzz(func(t *testing.T, id, name, text, env string, enabled bool, sec, nsec int64, offset int, plan string) {
		at := time.Unix(sec, nsec).In(time.FixedZone("", offset%200000))
		if offset == 0 {
			at = at.UTC()
		}
		key := ExportedKey{AccessKey: AccessKey{
			ID: id, Name: name, Description: text, Kind: env, APIKey: plan, Enabled: enabled,
			ExpiresAt: &at, CreatedAt: at, UpdatedAt: at.UTC(), APISecret: text,
		}, SealedSecret: name, SealedPreviousSecret: text}
		bindings := []Binding{{Group: name, Environment: env, Plan: PlanRef(plan)}}
		auth := Authorization{
			ID: id, AccessKeyID: name, APIKey: env, Description: text, Enabled: enabled,
			ValidUntil: &at, AllowedIPs: []string{text, id}, Bindings: bindings, Plan: PlanRef(plan), CreatedAt: at,
		}
		cred := credentialRecord{
			AccessKeyID: id, APIKey: name, Enabled: enabled, ExpiresAt: &at, SealedSecret: text,
			SealedPreviousSecret: plan, PreviousSecretExpiresAt: &at,
			Authorization: &CredentialAuthorization{ID: id, Enabled: enabled, ValidFrom: at, Bindings: bindings, Plan: PlanRef(plan)},
		}
		for _, v := range []any{key, auth, cred, ExportedKey{}, Authorization{}, credentialRecord{}} {
			want, wantErr := json.Marshal(v)
			got, gotErr := marshalRecord(v)
			if (wantErr == nil) != (gotErr == nil) || !bytes.Equal(want, got) {
				t.Fatalf("%T:\nencoding/json %s %v\nfast path     %s %v", v, want, wantErr, got, gotErr)
			}
		}
	})
}

// The fast path must take what the store writes, or it saves nothing.
func TestRecordJSONFastPathTakesStoredRecords(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 5, time.UTC)
	key := ExportedKey{AccessKey: AccessKey{ID: "ak-1", Name: "n", Kind: KindImported, APIKey: "A", Enabled: true,
		CreatedAt: at, UpdatedAt: at, LastUsedAt: &at}, SealedSecret: "v1.a.b"}
	b, err := marshalRecord(key)
	if err != nil {
		t.Fatal(err)
	}
	r := recordReader{b: b}
	var got ExportedKey
	r.key(&got)
	if r.bad || r.i != len(b) || !reflect.DeepEqual(got, key) {
		t.Fatalf("fast path on %s: bad %v at %d, %+v", b, r.bad, r.i, got)
	}
}
