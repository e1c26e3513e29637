package cache

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/accessauth/caddy-access-auth/store"
)

func TestEntryUsable(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		enabled   bool
		expiresAt time.Time
		want      bool
	}{
		{"enabled, never expires", true, time.Time{}, true},
		{"enabled, expires later", true, now.Add(time.Second), true},
		{"enabled, expires now", true, now, false},
		{"enabled, expired", true, now.Add(-time.Hour), false},
		{"enabled, expires after year 2262", true, time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), true},
		{"disabled", false, time.Time{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := Compile(&store.Credential{APIKey: "K", Enabled: tt.enabled, ExpiresAt: tt.expiresAt, Secret: "s"})
			if got := e.Usable(now); got != tt.want {
				t.Fatalf("Usable = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPreviousSecretAt(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	e := Compile(&store.Credential{APIKey: "K", Secret: "new", PreviousSecret: "old", PreviousSecretExpiresAt: now.Add(time.Hour)})
	if e.PreviousSecretAt(now) == nil || e.PreviousSecretAt(now) != e.PreviousSecret {
		t.Fatal("the previous secret should serve within its grace")
	}
	if e.PreviousSecretAt(now.Add(time.Hour)) != nil {
		t.Fatal("the previous secret served after its grace")
	}
	if Compile(&store.Credential{APIKey: "K", Secret: "new"}).PreviousSecretAt(now) != nil {
		t.Fatal("a key never reset has no previous secret")
	}
}

func TestAuthorizationValidAt(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name        string
		enabled     bool
		from, until time.Time
		want        bool
	}{
		{"open window", true, time.Time{}, time.Time{}, true},
		{"inside", true, now.Add(-time.Hour), now.Add(time.Hour), true},
		{"starts now", true, now, time.Time{}, true},
		{"not yet valid", true, now.Add(time.Second), time.Time{}, false},
		{"ends now", true, time.Time{}, now, false},
		{"ended", true, time.Time{}, now.Add(-time.Hour), false},
		{"disabled", false, time.Time{}, time.Time{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := Compile(&store.Credential{APIKey: "K", Authorization: &store.CredentialAuthorization{
				ID: "auth-1", Enabled: tt.enabled, ValidFrom: tt.from, ValidUntil: tt.until,
			}})
			if got := e.Authorization.ValidAt(now); got != tt.want {
				t.Fatalf("ValidAt = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestAuthorizationAllows(t *testing.T) {
	a := Compile(&store.Credential{APIKey: "K", Authorization: &store.CredentialAuthorization{
		Bindings: []store.Binding{
			{Group: "orders", Environment: "online"},
			{Group: "billing", Environment: "*"},
			{Group: "users"}, // environment defaults to every one
			{Group: "orders", Environment: "online"},
			{Group: "alpha", Environment: "test"},
			{Group: "zeta", Environment: "online"},
		},
	}}).Authorization
	tests := []struct {
		group, environment string
		want               bool
	}{
		{"orders", "online", true},
		{"orders", "test", false},
		{"billing", "online", true},
		{"billing", "test", true},
		{"users", "preview", true},
		{"alpha", "test", true},
		{"alpha", "online", false},
		{"zeta", "online", true},
		{"unbound", "online", false},
		{"", "", false},
		{"orders", "*", false}, // a route's environment is never "*"; only a binding's is
	}
	for _, tt := range tests {
		if got := a.Allows(tt.group, tt.environment); got != tt.want {
			t.Errorf("Allows(%q, %q) = %v, want %v", tt.group, tt.environment, got, tt.want)
		}
	}
}

func TestAuthorizationPlan(t *testing.T) {
	bindings := []store.Binding{
		{Group: "orders", Environment: "online", Plan: "orders-online"},
		{Group: "orders", Environment: "*", Plan: "orders-any"},
		{Group: "billing", Environment: "test"}, // no plan of its own
		{Group: "billing", Environment: "*", Plan: "billing-any"},
		{Group: "users"},
	}
	withPlan := Compile(&store.Credential{APIKey: "K", Authorization: &store.CredentialAuthorization{
		Bindings: bindings, Plan: "gold",
	}}).Authorization
	withoutPlan := Compile(&store.Credential{APIKey: "L", Authorization: &store.CredentialAuthorization{
		Bindings: bindings,
	}}).Authorization
	tests := []struct {
		group, environment string
		want, wantWithout  string
		wantBudget         string // the budget's group with the authorization's plan: "" its own
	}{
		{"orders", "online", "orders-online", "orders-online", "orders"},
		{"orders", "test", "orders-any", "orders-any", "orders"},
		{"billing", "test", "gold", "", ""}, // the binding that allows it has no plan
		{"billing", "online", "billing-any", "billing-any", "billing"},
		{"users", "online", "gold", "", ""},
		{"unbound", "online", "gold", "", ""},
	}
	for _, tt := range tests {
		if got := withPlan.Plan(tt.group, tt.environment); got != tt.want {
			t.Errorf("with the authorization's plan: Plan(%q, %q) = %q, want %q", tt.group, tt.environment, got, tt.want)
		}
		if plan, budget := withPlan.PlanBudget(tt.group, tt.environment); plan != tt.want || budget != tt.wantBudget {
			t.Errorf("PlanBudget(%q, %q) = %q, %q, want %q, %q", tt.group, tt.environment, plan, budget, tt.want, tt.wantBudget)
		}
		if got := withoutPlan.Plan(tt.group, tt.environment); got != tt.wantWithout {
			t.Errorf("without: Plan(%q, %q) = %q, want %q", tt.group, tt.environment, got, tt.wantWithout)
		}
	}
}

func TestAuthorizationAllowsIP(t *testing.T) {
	tests := []struct {
		name    string
		allowed []string
		remote  string
		want    bool
	}{
		{"empty list allows any", nil, "203.0.113.9", true},
		{"inside a CIDR", []string{"10.0.0.0/8"}, "10.1.2.3", true},
		{"outside a CIDR", []string{"10.0.0.0/8"}, "11.0.0.1", false},
		{"a bare address", []string{"192.0.2.7"}, "192.0.2.7", true},
		{"a bare address is one host", []string{"192.0.2.7"}, "192.0.2.8", false},
		{"IPv4-mapped remote", []string{"10.0.0.0/8"}, "::ffff:10.0.0.1", true},
		{"IPv4-mapped prefix", []string{"::ffff:10.0.0.0/104"}, "10.9.9.9", true},
		{"IPv6", []string{"2001:db8::/32"}, "2001:db8::1", true},
		{"unmasked CIDR", []string{"10.1.2.3/8"}, "10.200.0.1", true},
		{"spaces around", []string{" 10.0.0.0/8 "}, "10.0.0.1", true},
		{"an unparsable entry matches nothing", []string{"not-an-ip"}, "10.0.0.1", false},
		{"an unparsable entry keeps the list restrictive", []string{"bogus", "192.0.2.0/24"}, "192.0.2.5", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := Compile(&store.Credential{APIKey: "K", Authorization: &store.CredentialAuthorization{AllowedIPs: tt.allowed}}).Authorization
			if got := a.AllowsIP(netip.MustParseAddr(tt.remote)); got != tt.want {
				t.Fatalf("AllowsIP(%s) with %q = %v, want %v", tt.remote, tt.allowed, got, tt.want)
			}
		})
	}
}

// FuzzAllowedIPs compiles arbitrary allowed_ips entries: never a panic, and
// an address is allowed only when the list is empty or an entry that
// parses as a prefix or address covers it.
func FuzzAllowedIPs(f *testing.F) {
	f.Add("10.0.0.0/8", "10.1.2.3")
	f.Add("192.0.2.7", "::ffff:192.0.2.7")
	f.Add("::ffff:10.0.0.0/104", "10.0.0.1")
	f.Add("2001:db8::/129", "2001:db8::1")
	f.Add("not-an-ip", "")
	f.Fuzz(func(t *testing.T, entry, remote string) {
		a := Compile(&store.Credential{Authorization: &store.CredentialAuthorization{AllowedIPs: []string{entry}}}).Authorization
		addr, err := netip.ParseAddr(remote)
		if err != nil {
			addr = netip.Addr{}
		}
		if !a.AllowsIP(addr) {
			return
		}
		if !addr.IsValid() {
			t.Fatalf("%q allowed the invalid address", entry)
		}
		p, err := netip.ParsePrefix(strings.TrimSpace(entry))
		if err != nil {
			if single, err := netip.ParseAddr(strings.TrimSpace(entry)); err != nil || single.Unmap() != addr.Unmap() {
				t.Fatalf("%q allowed %s", entry, addr)
			}
			return
		}
		if !p.Contains(addr) && !p.Contains(netip.AddrFrom16(addr.As16())) {
			t.Fatalf("%q allowed %s outside it", entry, addr)
		}
	})
}
