package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// RouteActor is the actor of the audit records RegisterGroup writes.
const RouteActor = "route"

// CreateGroup creates an API group (Name, Description and the declared
// Environments are taken; ErrNameTaken when it exists).
func (s *Store) CreateGroup(ctx context.Context, g Group, actor Actor) (Group, error) {
	if err := validateGroupName("name", g.Name); err != nil {
		return Group{}, err
	}
	if err := validateDescription("description", g.Description); err != nil {
		return Group{}, err
	}
	var envs []string
	for i, env := range g.Environments {
		if err := validateEnvironment(fmt.Sprintf("environments[%d]", i), env); err != nil {
			return Group{}, err
		}
		envs, _ = addEnvironment(envs, env)
	}
	var created Group
	err := s.update(ctx, actor, func(w *writer) error {
		if existing, err := w.tx.Get(tblGroups, g.Name); err != nil {
			return err
		} else if existing != nil {
			return fmt.Errorf("group %s: %w", g.Name, ErrNameTaken)
		}
		created = Group{Name: g.Name, Description: g.Description, Environments: envs, CreatedAt: w.now}
		if err := putJSON(w.tx, tblGroups, g.Name, created); err != nil {
			return err
		}
		return w.audit("group.create", g.Name)
	})
	if err != nil {
		return Group{}, err
	}
	return withEnvironments(created), nil
}

// withEnvironments makes a group's environments a list, never null.
func withEnvironments(g Group) Group {
	if g.Environments == nil {
		g.Environments = []string{}
	}
	return g
}

// GetGroup returns a group, or ErrNotFound.
func (s *Store) GetGroup(ctx context.Context, name string) (Group, error) {
	var g Group
	err := s.backend.View(ctx, func(tx Tx) error {
		return mustGetGroup(tx, name, &g)
	})
	return withEnvironments(g), err
}

func mustGetGroup(tx Tx, name string, g *Group) error {
	ok, err := getJSON(tx, tblGroups, name, g)
	if err == nil && !ok {
		err = fmt.Errorf("group %s: %w", quoteInput(name), ErrNotFound)
	}
	return err
}

// ListGroups returns a page of groups in name order.
func (s *Store) ListGroups(ctx context.Context, page Page) ([]Group, string, error) {
	var items []Group
	var next string
	err := s.backend.View(ctx, func(tx Tx) error {
		var err error
		items, next, err = scanPage(tx, tblGroups, page, func(r Record) (Group, bool, error) {
			var g Group
			err := json.Unmarshal(r.Value, &g)
			return withEnvironments(g), true, err
		})
		return err
	})
	return items, next, err
}

// GroupAuthorizations returns a page of the authorizations bound to a group
// (ErrNotFound when the group does not exist).
func (s *Store) GroupAuthorizations(ctx context.Context, name string, page Page) ([]Authorization, string, error) {
	var items []Authorization
	var next string
	err := s.backend.View(ctx, func(tx Tx) error {
		if err := mustGetGroup(tx, name, &Group{}); err != nil {
			return err
		}
		var err error
		items, next, err = groupAuthorizations(tx, name, page)
		return err
	})
	return items, next, err
}

// DeleteGroup deletes a group and removes its bindings from every
// authorization.
func (s *Store) DeleteGroup(ctx context.Context, name string, actor Actor) error {
	return s.update(ctx, actor, func(w *writer) error {
		if err := mustGetGroup(w.tx, name, &Group{}); err != nil {
			return err
		}
		// Read the whole index before writing to it (see Tx.Get).
		authIDs, err := indexedAuthorizationIDs(w.tx, tblGroupAuthorizations, name)
		if err != nil {
			return err
		}
		for _, authID := range authIDs {
			var auth Authorization
			if err := mustGetAuthorization(w.tx, authID, &auth); err != nil {
				return err
			}
			before := auth.Bindings
			auth.Bindings = slices.DeleteFunc(slices.Clone(before), func(b Binding) bool { return b.Group == name })
			auth.UpdatedAt = w.now
			if err := w.putAuthorization(auth); err != nil {
				return err
			}
		}
		if err := w.tx.Delete(tblGroups, name); err != nil {
			return err
		}
		return w.audit("group.delete", name)
	})
}

// indexedAuthorizationIDs reads the IDs of every authorization an index
// table lists under a group or plan name.
func indexedAuthorizationIDs(tx Tx, table, name string) ([]string, error) {
	const chunk = 256
	prefix := indexID(name, "")
	var ids []string
	after := prefix
	for {
		records, err := tx.Scan(table, after, chunk)
		if err != nil {
			return nil, err
		}
		for _, r := range records {
			id, ok := strings.CutPrefix(r.ID, prefix)
			if !ok {
				return ids, nil
			}
			ids = append(ids, id)
			after = r.ID
		}
		if len(records) < chunk {
			return ids, nil
		}
	}
}

// RegisterGroup makes sure a running route's group exists and lists its
// environment. It writes (with an audit record by RouteActor) only when
// something changes, so it is cheap to call on every start.
func (s *Store) RegisterGroup(ctx context.Context, name, environment string) error {
	if err := validateGroupName("group", name); err != nil {
		return err
	}
	if environment != "" {
		if err := validateEnvironment("environment", environment); err != nil {
			return err
		}
	}
	// Look first: most calls find everything in place.
	var g Group
	var found bool
	err := s.backend.View(ctx, func(tx Tx) error {
		var err error
		found, err = getJSON(tx, tblGroups, name, &g)
		return err
	})
	if err != nil {
		return err
	}
	if _, changed := addEnvironment(g.Environments, environment); found && !changed {
		return nil
	}
	return s.update(ctx, Actor{Name: RouteActor}, func(w *writer) error {
		var g Group
		found, err := getJSON(w.tx, tblGroups, name, &g)
		if err != nil {
			return err
		}
		envs, changed := addEnvironment(g.Environments, environment)
		if found && !changed {
			return nil
		}
		if !found {
			g = Group{Name: name, CreatedAt: w.now}
		}
		g.Environments = envs
		if err := putJSON(w.tx, tblGroups, name, g); err != nil {
			return err
		}
		target := name
		if environment != "" {
			target += "/" + environment
		}
		return w.audit("group.register", target)
	})
}
