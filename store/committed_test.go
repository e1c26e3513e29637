package store_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/accessauth/caddy-access-auth/store"
)

// TestCommittedHook checks that Options.Committed hears of every committed
// write with the API keys it changed, before the write returns, and of no
// write that failed.
func TestCommittedHook(t *testing.T) {
	ctx := context.Background()
	var heard [][]string
	s := openStore(t, store.Options{
		Committed: func(apiKeys []string) { heard = append(heard, slices.Clone(apiKeys)) },
	})
	actor := store.Actor{Name: "test"}

	key, err := s.CreateKey(ctx, store.NewKey{Name: "alice"}, actor)
	if err != nil {
		t.Fatal(err)
	}
	if len(heard) != 1 || !slices.Equal(heard[0], []string{key.APIKey}) {
		t.Fatalf("after create: heard %v, want [[%s]]", heard, key.APIKey)
	}

	if _, err := s.CreateKey(ctx, store.NewKey{Name: "alice"}, actor); !errors.Is(err, store.ErrNameTaken) {
		t.Fatalf("duplicate name: %v", err)
	}
	if _, err := s.CreateGroup(ctx, store.Group{Name: "orders"}, actor); err != nil {
		t.Fatal(err)
	}
	if len(heard) != 1 {
		t.Fatalf("a failed write and a write changing no credential were heard: %v", heard)
	}

	disabled := false
	if _, err := s.UpdateKey(ctx, key.ID, store.KeyPatch{Enabled: store.Optional[bool]{Set: true, Value: &disabled}}, actor); err != nil {
		t.Fatal(err)
	}
	if len(heard) != 2 || !slices.Equal(heard[1], []string{key.APIKey}) {
		t.Fatalf("after disable: heard %v", heard)
	}
}
