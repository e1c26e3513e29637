package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/accessauth/caddy-access-auth/store"
	"github.com/accessauth/caddy-access-auth/store/storetest"
)

// TestParseDesiredState: a file is read strictly, and a mistake is
// reported with the path of the entry that holds it.
func TestParseDesiredState(t *testing.T) {
	d, err := store.ParseDesiredState([]byte(`{
		"groups": [{"name": "orders", "environments": ["prod"]}],
		"plans": [{"name": "gold", "rate": {"requests": 5, "per": "1s"}, "burst": 2, "quota": null}],
		"keys": [{"name": "alice", "enabled": false, "expires_at": "2030-01-02T03:04:05Z"}],
		"authorizations": [{"key": "alice", "plan": "gold", "bindings": [{"group": "orders", "plan": null}]}]
	}`))
	if err != nil {
		t.Fatal(err)
	}
	if d.Plans[0].Rate.Requests != 5 || d.Plans[0].Burst != 2 || d.Plans[0].Quota != nil || *d.Keys[0].Enabled ||
		!d.Keys[0].ExpiresAt.Equal(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)) || d.Authorizations[0].Plan != "gold" ||
		d.Authorizations[0].Bindings[0] != (store.Binding{Group: "orders"}) {
		t.Fatalf("parsed %+v", d)
	}
	for _, tc := range []struct{ file, field, says string }{
		{`{"authorizations":[{"key":"a"},{"key":"b","bindings":[{"gruop":"x"}]}]}`, "authorizations[1].bindings[0].gruop", "known: environment, group, plan"},
		{`{"group":[]}`, "group", "not a field"},
		{`{"":1}`, `[""]`, "not a field"},
		{`{"keys":[{"na me":1}]}`, `keys[0]["na me"]`, "not a field"},
		{`{"keys":{"name":"a"}}`, "keys", "must be a list"},
		{`{"keys":["a"]}`, "keys[0]", "must be an object"},
		{`{"keys":[{"name":1}]}`, "keys[0].name", "must be a string"},
		{`{"keys":[{"name":"a","enabled":"yes"}]}`, "keys[0].enabled", "true or false"},
		{`{"keys":[{"name":"a","expires_at":"2030-01-02"}]}`, "keys[0].expires_at", "RFC 3339"},
		{`{"plans":[{"name":"p","burst":1.5}]}`, "plans[0].burst", "whole number"},
		{`{"plans":[{"name":"p","rate":{"requests":"5"}}]}`, "plans[0].rate.requests", "whole number"},
		{`{"authorizations":[{"key":"a","plan":7}]}`, "authorizations[0].plan", "must be"},
		{`[]`, "file", "must be an object"},
		{`null`, "file", "not null"},
		{``, "file", "empty"},
		{`{"keys":[]} {}`, "file", "single JSON object"},
		{`{"keys":[`, "file", "not valid JSON"},
	} {
		_, err := store.ParseDesiredState([]byte(tc.file))
		var invalid *store.InvalidArgumentError
		if !errors.As(err, &invalid) || invalid.Field != tc.field || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: error %v, want field %s saying %q", tc.file, err, tc.field, tc.says)
		}
	}
}

// FuzzParseDesiredState feeds arbitrary files to the parser and what it
// accepts to a dry run: neither panics, and every refusal is an
// *InvalidArgumentError naming a path.
func FuzzParseDesiredState(f *testing.F) {
	f.Add([]byte(`{"groups":[{"name":"g","environments":["prod"]}],"plans":[{"name":"p","rate":{"requests":1,"per":"1m"}}],` +
		`"keys":[{"name":"a"},{"name":"b","api_key":"AK","api_secret":"SK"}],` +
		`"authorizations":[{"key":"a","plan":"p","bindings":[{"group":"g","environment":"prod","plan":"p"}]},{"api_key":"AK","allowed_ips":["10.0.0.0/8"]}]}`))
	f.Add([]byte(`{"authorizations":[{"key":"a","bindings":[{"group":"missing"}]}]}`))
	f.Add([]byte(`{"keys":[{"name":"a","expires_at":"2030-01-02T03:04:05Z","enabled":null}]}`))
	f.Add([]byte(`{"plans":[{"name":"p","burst":1e3}]}`))
	f.Add([]byte(`[{"keys":1}]`))
	s := openStore(f, store.Options{})
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := store.ParseDesiredState(data)
		if err != nil {
			wantPath(t, err)
			return
		}
		_, err = s.Apply(context.Background(), d, store.ApplyOptions{DryRun: true, Prune: true}, store.Actor{Name: "fuzz"})
		if err != nil {
			wantPath(t, err)
		}
	})
}

func wantPath(t *testing.T, err error) {
	t.Helper()
	var invalid *store.InvalidArgumentError
	if !errors.As(err, &invalid) || invalid.Field == "" {
		t.Fatalf("error %v is not an InvalidArgumentError naming a path", err)
	}
}

// BenchmarkApply1000Keys applies a file of 1,000 generated keys, each with
// an authorization bound to a group, to an empty embedded store; then the
// same file again, which finds nothing to change.
func BenchmarkApply1000Keys(b *testing.B) {
	d := storetest.ManyKeys(1000)
	ctx := context.Background()
	actor := store.Actor{Name: "bench"}
	b.Run("create", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			s := openStore(b, store.Options{})
			b.StartTimer()
			if _, err := s.Apply(ctx, d, store.ApplyOptions{}, actor); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("unchanged", func(b *testing.B) {
		s := openStore(b, store.Options{})
		if _, err := s.Apply(ctx, d, store.ApplyOptions{}, actor); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			res, err := s.Apply(ctx, d, store.ApplyOptions{}, actor)
			if err != nil || len(res.Changes) != 0 {
				b.Fatalf("%v, %d changes", err, len(res.Changes))
			}
		}
	})
}
