package cache

import (
	"math"
	"net/netip"
	"slices"
	"strings"
	"time"
	"unique"

	"github.com/accessauth/caddy-access-auth/signature"
	"github.com/accessauth/caddy-access-auth/store"
)

// Entry is the compiled credential of one API key: everything the request
// check reads, in the form it reads it. Entries are immutable once compiled
// and shared by every request that hits them. Times are kept as Unix
// nanoseconds (0: none) to keep entries small (1 KiB per key, docs/operations.md).
type Entry struct {
	AccessKeyID string
	APIKey      string
	Enabled     bool
	expiresAt   int64

	Secret                  *signature.Secret
	PreviousSecret          *signature.Secret // nil: no rotation grace
	previousSecretExpiresAt int64

	Authorization *Authorization // nil: no authorization names the key
}

// Usable reports whether the key is enabled and not expired at now.
func (e *Entry) Usable(now time.Time) bool {
	return e.Enabled && (e.expiresAt == 0 || now.UnixNano() < e.expiresAt)
}

// ExpiresAt is when the key expires, the zero Time when it does not.
func (e *Entry) ExpiresAt() time.Time { return timeOf(e.expiresAt) }

// PreviousSecretAt returns the secret replaced by the last reset while its
// grace lasts at now, else nil.
func (e *Entry) PreviousSecretAt(now time.Time) *signature.Secret {
	if e.PreviousSecret == nil || now.UnixNano() >= e.previousSecretExpiresAt {
		return nil
	}
	return e.PreviousSecret
}

// Authorization is the compiled authorization of a key.
type Authorization struct {
	ID         string
	Enabled    bool
	validFrom  int64
	validUntil int64
	// AllowedIPs is empty when any address may call. An entry the store
	// could not parse is kept as an invalid prefix that matches nothing, so
	// a bad entry narrows the list instead of opening it.
	AllowedIPs []netip.Prefix

	bindings []binding             // sorted by group, then environment
	plan     unique.Handle[string] // noPlan: none
}

// noPlan is the zero handle: no plan named.
var noPlan unique.Handle[string]

// Plan returns the name of the usage plan that governs requests to
// environment of group, "" when none: the plan of the binding that allows
// them (the one to the environment itself before the one to every
// environment) when it has one, else the authorization's. It reads the
// compiled entry only, so the hot path needs no store trip for it.
func (a *Authorization) Plan(group, environment string) string {
	plan, _ := a.PlanBudget(group, environment)
	return plan
}

// PlanBudget is Plan with the budget the plan meters: the binding's own
// (budgetGroup = group) or the authorization's (budgetGroup "", one budget
// for all the key's calls).
func (a *Authorization) PlanBudget(group, environment string) (plan, budgetGroup string) {
	for _, env := range [...]string{environment, store.AnyEnvironment} {
		i, found := slices.BinarySearchFunc(a.bindings, store.Binding{Group: group, Environment: env}, compareBinding)
		if found {
			if p := a.bindings[i].plan; p != noPlan {
				return p.Value(), group
			}
			break
		}
	}
	if a.plan == noPlan {
		return "", ""
	}
	return a.plan.Value(), ""
}

// ValidAt reports whether the authorization is enabled and within its
// validity window at now.
func (a *Authorization) ValidAt(now time.Time) bool {
	t := now.UnixNano()
	return a.Enabled &&
		(a.validFrom == 0 || t >= a.validFrom) &&
		(a.validUntil == 0 || t < a.validUntil)
}

// Window is the authorization's validity window; a zero Time is no bound.
func (a *Authorization) Window() (from, until time.Time) {
	return timeOf(a.validFrom), timeOf(a.validUntil)
}

// Allows reports whether the authorization is bound to environment of
// group, directly or through a binding to every environment ("*").
func (a *Authorization) Allows(group, environment string) bool {
	return a.bound(group, environment) || a.bound(group, store.AnyEnvironment)
}

func (a *Authorization) bound(group, environment string) bool {
	_, found := slices.BinarySearchFunc(a.bindings, store.Binding{Group: group, Environment: environment}, compareBinding)
	return found
}

// binding is a store.Binding with its names interned: every key bound to a
// group shares one copy of its name, and a binding takes 24 bytes, not 48.
type binding struct {
	group, environment unique.Handle[string]
	plan               unique.Handle[string] // noPlan: none
}

func compareBinding(b binding, target store.Binding) int {
	if c := strings.Compare(b.group.Value(), target.Group); c != 0 {
		return c
	}
	return strings.Compare(b.environment.Value(), target.Environment)
}

// AllowsIP reports whether addr may call: any address when AllowedIPs is
// empty, else one inside an allowed prefix.
func (a *Authorization) AllowsIP(addr netip.Addr) bool {
	if len(a.AllowedIPs) == 0 {
		return true
	}
	addr = addr.Unmap()
	for _, p := range a.AllowedIPs {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// Compile turns the store's record of a key into an Entry, as a cache load
// does (for key sources other than Cache, and tests).
func Compile(c *store.Credential) *Entry {
	e := new(Entry)
	compile(e, c)
	return e
}

// compile turns the store's record of a key into e. It is done once per
// load, so that requests only compare.
func compile(e *Entry, c *store.Credential) {
	*e = Entry{
		AccessKeyID:             c.AccessKeyID,
		APIKey:                  c.APIKey,
		Enabled:                 c.Enabled,
		expiresAt:               unixNanos(c.ExpiresAt),
		Secret:                  signature.NewSecret(c.Secret),
		previousSecretExpiresAt: unixNanos(c.PreviousSecretExpiresAt),
	}
	if c.PreviousSecret != "" {
		e.PreviousSecret = signature.NewSecret(c.PreviousSecret)
	}
	if a := c.Authorization; a != nil {
		e.Authorization = &Authorization{
			ID:         a.ID,
			Enabled:    a.Enabled,
			validFrom:  unixNanos(a.ValidFrom),
			validUntil: unixNanos(a.ValidUntil),
			AllowedIPs: compileIPs(a.AllowedIPs),
			bindings:   compileBindings(a.Bindings),
			plan:       planHandle(a.Plan),
		}
	}
}

// unixNanos maps the zero time to 0 and clamps times beyond the range of
// Unix nanoseconds (years 1678..2262), which UnixNano leaves undefined.
// timeOf is the time of a unixNanos value, the zero Time for 0.
func timeOf(nanos int64) time.Time {
	if nanos == 0 {
		return time.Time{}
	}
	return time.Unix(0, nanos).UTC()
}

func unixNanos(t time.Time) int64 {
	switch {
	case t.IsZero():
		return 0
	case t.After(maxTime):
		return math.MaxInt64
	case t.Before(minTime):
		return math.MinInt64 + 1 // not 0, which means none
	}
	return t.UnixNano()
}

var (
	minTime = time.Unix(0, math.MinInt64+1)
	maxTime = time.Unix(0, math.MaxInt64)
)

// compileIPs reads CIDRs and bare addresses (a single host).
func compileIPs(list []string) []netip.Prefix {
	if len(list) == 0 {
		return nil
	}
	prefixes := make([]netip.Prefix, len(list))
	for i, s := range list {
		s = strings.TrimSpace(s)
		if p, err := netip.ParsePrefix(s); err == nil {
			prefixes[i] = netip.PrefixFrom(p.Addr().Unmap(), unmappedBits(p)).Masked()
		} else if addr, err := netip.ParseAddr(s); err == nil {
			addr = addr.Unmap()
			prefixes[i] = netip.PrefixFrom(addr, addr.BitLen())
		} // else the zero Prefix, which contains nothing
	}
	return prefixes
}

// unmappedBits converts the length of an IPv4-mapped IPv6 prefix
// (::ffff:10.0.0.0/104) to its IPv4 length, so requests match it whether
// they arrive over IPv4 or IPv6.
func unmappedBits(p netip.Prefix) int {
	if p.Addr().Is4In6() {
		return max(p.Bits()-96, -1)
	}
	return p.Bits()
}

func compileBindings(list []store.Binding) []binding {
	bindings := make([]binding, 0, len(list))
	for _, b := range list {
		if b.Environment == "" {
			b.Environment = store.AnyEnvironment
		}
		bindings = append(bindings, binding{unique.Make(b.Group), unique.Make(b.Environment), planHandle(b.Plan)})
	}
	slices.SortFunc(bindings, func(a, b binding) int {
		return compareBinding(a, store.Binding{Group: b.group.Value(), Environment: b.environment.Value()})
	})
	return slices.Compact(bindings)
}

// planHandle interns a plan's name; "" is noPlan.
func planHandle(plan store.PlanRef) unique.Handle[string] {
	if plan == "" {
		return noPlan
	}
	return unique.Make(string(plan))
}
