package store_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/accessauth/caddy-access-auth/store"
)

// importSeeds are the seed documents of the import fuzzers: a full export
// of a store with plans, bindings and both kinds of key, and documents
// that break the rules.
func importSeeds(f *testing.F) [][]byte {
	var seeds [][]byte
	ctx := context.Background()
	actor := store.Actor{Name: "fuzz"}
	seed := openStore(f, store.Options{})
	if _, err := seed.CreateGroup(ctx, store.Group{Name: "g", Environments: []string{"online"}}, actor); err != nil {
		f.Fatal(err)
	}
	gold := store.NewPlan{Name: "gold", Rate: &store.PlanRate{Requests: 5, Per: store.PerSecond}, Burst: 1,
		Quota: &store.PlanQuota{Requests: 100, Period: store.PeriodMonth}}
	if _, err := seed.CreatePlan(ctx, gold, actor); err != nil {
		f.Fatal(err)
	}
	for i, kind := range []string{store.KindGenerated, store.KindImported} {
		nk := store.NewKey{Name: "k" + kind, Kind: kind}
		if kind == store.KindImported {
			nk.APIKey, nk.APISecret = "AK-IMPORTED", "secret"
		}
		k, err := seed.CreateKey(ctx, nk, actor)
		if err != nil {
			f.Fatal(err)
		}
		if _, err := seed.ResetKey(ctx, k.ID, time.Hour, actor); err != nil && kind == store.KindGenerated {
			f.Fatal(err)
		}
		na := store.NewAuthorization{AccessKeyID: k.ID, AllowedIPs: []string{"10.0.0.0/8"}}
		if i == 0 {
			na.Bindings = []store.Binding{{Group: "g", Environment: "online", Plan: "gold"}}
		} else {
			na.Plan = "gold"
		}
		if _, err := seed.CreateAuthorization(ctx, na, actor); err != nil {
			f.Fatal(err)
		}
	}
	exp, err := seed.Export(ctx)
	if err != nil {
		f.Fatal(err)
	}
	full, _ := json.Marshal(exp)
	seeds = append(seeds, full)
	seeds = append(seeds, []byte(`{"version":1,"groups":[{"name":"g","environments":["a","*"]}],"authorizations":[{"id":"auth-1","access_key_id":"ak-1","bindings":[{"group":"g"}]}]}`))
	seeds = append(seeds, []byte(`{"version":1,"keys":[{"id":"ak-1","name":"n","kind":"imported","api_key":"A","sealed_secret":"v1.00000000.AAAA"}]}`))
	seeds = append(seeds, []byte(`{"version":1,"plans":[{"name":"p","rate":{"requests":1,"per":"1m"},"burst":0,"quota":null},{"name":"p","quota":{"requests":-1,"period":"week"}}]}`))
	seeds = append(seeds, []byte(`{"version":1,"groups":[{"name":"g"}],"authorizations":[{"id":"auth-1","access_key_id":"ak-1","plan":"missing","bindings":[{"group":"g","plan":null}]}]}`))
	seeds = append(seeds, []byte(`{}`))
	return seeds
}

// FuzzImport feeds arbitrary export documents to Import: it never panics,
// refuses with one of the documented errors, and what it accepts imports
// again without error.
func FuzzImport(f *testing.F) {
	ctx := context.Background()
	actor := store.Actor{Name: "fuzz"}
	for _, seed := range importSeeds(f) {
		f.Add(seed)
	}
	s := openStore(f, store.Options{})
	f.Fuzz(func(t *testing.T, data []byte) {
		var exp store.Export
		if json.Unmarshal(data, &exp) != nil {
			return
		}
		err := s.Import(ctx, exp, actor)
		if !expectedImportError(err) {
			t.Fatalf("Import: %v", err)
		}
		if err != nil {
			return
		}
		if err := s.Import(ctx, exp, actor); err != nil {
			t.Fatalf("importing an accepted export again: %v", err)
		}
		for _, k := range exp.Keys {
			if _, err := s.LoadCredential(ctx, k.APIKey); err != nil {
				t.Fatalf("credential of imported key %s: %v", k.ID, err)
			}
		}
	})
}

// FuzzImportFrom feeds arbitrary bytes to the streaming import: it never
// panics, refuses with one of the documented errors, and what it accepts
// imports again without error.
func FuzzImportFrom(f *testing.F) {
	ctx := context.Background()
	actor := store.Actor{Name: "fuzz"}
	for _, seed := range importSeeds(f) {
		f.Add(seed)
	}
	f.Add([]byte(`{"version":1,"keys":null,"exported_at":{"x":[1,2]}}`))
	f.Add([]byte(`{"keys":[],"version":1}`))
	s := openStore(f, store.Options{})
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := s.ImportFrom(ctx, bytes.NewReader(data), actor)
		if !expectedImportError(err) {
			t.Fatalf("ImportFrom: %v", err)
		}
		if err != nil {
			return
		}
		if _, err := s.ImportFrom(ctx, bytes.NewReader(data), actor); err != nil {
			t.Fatalf("importing an accepted stream again: %v", err)
		}
	})
}

// expectedImportError says whether err is nil or one of the errors an
// import documents.
func expectedImportError(err error) bool {
	var invalid *store.InvalidArgumentError
	return err == nil || errors.As(err, &invalid) || errors.Is(err, store.ErrNameTaken) ||
		errors.Is(err, store.ErrAuthorizationExists) || errors.Is(err, store.ErrGroupNotFound) ||
		errors.Is(err, store.ErrPlanNotFound)
}
