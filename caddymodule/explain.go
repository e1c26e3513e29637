package caddymodule

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/accessauth/caddy-access-auth/admin"
	"github.com/accessauth/caddy-access-auth/enforcement"
	"github.com/accessauth/caddy-access-auth/replay"
)

// explainer answers the admin API's explain with the running config's
// check (docs/explain.md): the route that serves the group asked about,
// so its schemes, max_skew, scope pins and replay store apply, else a
// check with the defaults.
type explainer struct{ app *App }

// registerExplained records a handler for explain.
func (a *App) registerExplained(h *Handler) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.handlers = append(a.handlers, h)
}

// routeOf is the handler of group (of environment, when given, else the
// first of the group), nil when none serves it.
func (a *App) routeOf(group, environment string) *Handler {
	a.mu.Lock()
	defer a.mu.Unlock()
	var found *Handler
	for _, h := range a.handlers {
		if h.Group != group {
			continue
		}
		if environment == "" || h.Environment == environment {
			return h
		}
		if found == nil {
			found = h
		}
	}
	return found
}

func (e explainer) Explain(ctx context.Context, in enforcement.ExplainRequest) (enforcement.Explanation, error) {
	var checker *enforcement.Checker
	var err error
	if h := e.app.routeOf(in.Group, in.Environment); in.Group != "" && h != nil {
		checker, err = h.getChecker()
		in.Route = fmt.Sprintf("the route of group %q, environment %q: %s", h.Group, h.Environment, h.settings())
	} else {
		checker, err = e.app.defaultChecker()
		defaults := fmt.Sprintf("the check's defaults (every scheme, max_skew %s, replay protection %s)",
			enforcement.DefaultMaxSkew, e.app.defaultReplay())
		in.Route = "no group given: " + defaults
		if in.Group != "" {
			in.Route = fmt.Sprintf("no route of this config serves group %q: %s", in.Group, defaults)
		}
	}
	if err != nil {
		return enforcement.Explanation{}, err
	}
	return checker.Explain(ctx, in), nil
}

// settings sums up the handler's options that change the check.
func (h *Handler) settings() string {
	schemes := "every scheme"
	if len(h.Schemes) > 0 {
		schemes = "schemes " + strings.Join(h.Schemes, ", ")
	}
	skew := time.Duration(h.MaxSkew)
	if skew == 0 {
		skew = enforcement.DefaultMaxSkew
	}
	s := fmt.Sprintf("%s, max_skew %s, replay protection %s", schemes, skew, h.replay)
	if h.Region != "" || h.Service != "" {
		s += fmt.Sprintf(", region %q, service %q", h.Region, h.Service)
	}
	return s
}

// defaultReplay is replay_protection auto's mode for the app's store.
func (a *App) defaultReplay() replay.Mode {
	if a.isRedis() {
		return replay.ModeStore
	}
	return replay.ModeLocal
}

// defaultChecker is a check with the defaults over the app's store.
func (a *App) defaultChecker() (*enforcement.Checker, error) {
	st, err := a.acquire()
	if err != nil {
		return nil, err
	}
	// The group only satisfies NewChecker: Explain checks the one it is given.
	cfg := enforcement.Config{Group: "explain", Bodies: bodyBudget, Nonces: st.replay.guard(a.defaultReplay())}
	return enforcement.NewChecker(cfg, st.cache)
}

// Interface guards
var _ admin.Explainer = explainer{}
