package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/accessauth/caddy-access-auth/store"
)

// FuzzImport feeds arbitrary export documents to Import: it never panics,
// refuses with one of the documented errors, and what it accepts imports
// again without error.
func FuzzImport(f *testing.F) {
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
	f.Add(full)
	f.Add([]byte(`{"version":1,"groups":[{"name":"g","environments":["a","*"]}],"authorizations":[{"id":"auth-1","access_key_id":"ak-1","bindings":[{"group":"g"}]}]}`))
	f.Add([]byte(`{"version":1,"keys":[{"id":"ak-1","name":"n","kind":"imported","api_key":"A","sealed_secret":"v1.00000000.AAAA"}]}`))
	f.Add([]byte(`{"version":1,"plans":[{"name":"p","rate":{"requests":1,"per":"1m"},"burst":0,"quota":null},{"name":"p","quota":{"requests":-1,"period":"week"}}]}`))
	f.Add([]byte(`{"version":1,"groups":[{"name":"g"}],"authorizations":[{"id":"auth-1","access_key_id":"ak-1","plan":"missing","bindings":[{"group":"g","plan":null}]}]}`))
	f.Add([]byte(`{}`))

	s := openStore(f, store.Options{})
	f.Fuzz(func(t *testing.T, data []byte) {
		var exp store.Export
		if json.Unmarshal(data, &exp) != nil {
			return
		}
		err := s.Import(ctx, exp, actor)
		var invalid *store.InvalidArgumentError
		switch {
		case err == nil:
		case errors.As(err, &invalid), errors.Is(err, store.ErrNameTaken),
			errors.Is(err, store.ErrAuthorizationExists), errors.Is(err, store.ErrGroupNotFound),
			errors.Is(err, store.ErrPlanNotFound):
			return
		default:
			t.Fatalf("Import: %v", err)
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
