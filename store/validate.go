package store

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits of admin input.
const (
	maxNameLength        = 128
	maxDescriptionLength = 1024
	maxImportedKeyLength = 256
	maxAllowedIPs        = 1000
	maxBindings          = 1000
)

// The syntax of names and IDs: a letter or digit, then up to max-1 of
// these ASCII characters. (A regular expression said the same at eight
// times the cost, which a bulk import paid on every record.)
var (
	groupNamePattern   = newNameSyntax("abcdefghijklmnopqrstuvwxyz0123456789", "_-", 64)
	environmentPattern = newNameSyntax("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", "_.-", 64)
	recordIDPattern    = newNameSyntax("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", "_.-", 128)
)

// nameSyntax is a name of 1 to max bytes: one of first, then any of first
// and more.
type nameSyntax struct {
	max         int
	first, rest [256]bool
}

func newNameSyntax(first, more string, max int) *nameSyntax {
	n := &nameSyntax{max: max}
	for _, c := range []byte(first) {
		n.first[c], n.rest[c] = true, true
	}
	for _, c := range []byte(more) {
		n.rest[c] = true
	}
	return n
}

// MatchString reports whether s has the syntax.
func (n *nameSyntax) MatchString(s string) bool {
	if len(s) == 0 || len(s) > n.max || !n.first[s[0]] {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !n.rest[s[i]] {
			return false
		}
	}
	return true
}

func invalid(field, format string, args ...any) error {
	return &InvalidArgumentError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// quoteInput quotes user input for an error message, shortened.
func quoteInput(s string) string {
	if len(s) > 70 {
		s = s[:64] + "…"
	}
	return fmt.Sprintf("%q", s)
}

func validateKeyName(field, name string) error {
	switch {
	case strings.TrimSpace(name) == "":
		return invalid(field, "is required")
	case len(name) > maxNameLength:
		return invalid(field, "is longer than %d bytes", maxNameLength)
	case !utf8.ValidString(name) || strings.ContainsFunc(name, unprintableInName):
		return invalid(field, "must be printable UTF-8, without control or invisible format characters (such as U+200B or U+202E)")
	case strings.TrimSpace(name) != name:
		return invalid(field, "must not start or end with spaces")
	}
	return nil
}

// unprintableInName reports a rune a name must not hold: a control
// character, or a format character (Unicode Cf: zero-width and
// bidirectional controls) that would make two names look alike or reorder
// what a console or log shows.
func unprintableInName(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Cf, r)
}

func validateDescription(field, description string) error {
	switch {
	case len(description) > maxDescriptionLength:
		return invalid(field, "is longer than %d bytes", maxDescriptionLength)
	case !utf8.ValidString(description):
		return invalid(field, "must be UTF-8")
	}
	return nil
}

// validateImported checks an imported AK or SK: non-empty printable ASCII.
// The AK may not hold spaces, which cannot survive an Authorization header.
func validateImported(field, value string, spaceOK bool) error {
	if value == "" {
		return invalid(field, "is required for an imported key")
	}
	if len(value) > maxImportedKeyLength {
		return invalid(field, "is longer than %d characters", maxImportedKeyLength)
	}
	for i := 0; i < len(value); i++ {
		c := value[i]
		if c < 0x20 || c > 0x7e || (c == ' ' && !spaceOK) {
			if spaceOK {
				return invalid(field, "must be printable ASCII")
			}
			return invalid(field, "must be printable ASCII without spaces")
		}
	}
	return nil
}

func validateGroupName(field, name string) error {
	if !groupNamePattern.MatchString(name) {
		return invalid(field, "%s is not a valid group name (lower-case letters, digits, _ and -, at most 64, starting with a letter or digit)", quoteInput(name))
	}
	return nil
}

// ValidGroupName reports whether name may name an API group:
// [a-z0-9][a-z0-9_-]{0,63}.
func ValidGroupName(name string) bool { return groupNamePattern.MatchString(name) }

// ValidEnvironment reports whether env may name one environment of a group
// (letters, digits, _ . and -, at most 64); a binding may also say
// AnyEnvironment.
func ValidEnvironment(env string) bool { return environmentPattern.MatchString(env) }

func validateEnvironment(field, env string) error {
	if env != AnyEnvironment && !environmentPattern.MatchString(env) {
		return invalid(field, "%s is not a valid environment (letters, digits, _ . and -, at most 64, or *)", quoteInput(env))
	}
	return nil
}

// normalizeBindings validates bindings, defaults their environment to "*",
// and returns them sorted without duplicates.
func normalizeBindings(field string, bindings []Binding) ([]Binding, error) {
	if len(bindings) > maxBindings {
		return nil, invalid(field, "has more than %d bindings", maxBindings)
	}
	out := make([]Binding, 0, len(bindings))
	for i, b := range bindings {
		if b.Environment == "" {
			b.Environment = AnyEnvironment
		}
		if err := validateGroupName(fmt.Sprintf("%s[%d].group", field, i), b.Group); err != nil {
			return nil, err
		}
		if err := validateEnvironment(fmt.Sprintf("%s[%d].environment", field, i), b.Environment); err != nil {
			return nil, err
		}
		if err := validatePlanRef(fmt.Sprintf("%s[%d].plan", field, i), b.Plan); err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	sortBindings(out)
	out = slices.Compact(out)
	for i := 1; i < len(out); i++ {
		if out[i].Group == out[i-1].Group && out[i].Environment == out[i-1].Environment {
			return nil, invalid(field, "binds %s/%s twice with different plans", out[i].Group, out[i].Environment)
		}
	}
	return out, nil
}

func sortBindings(bindings []Binding) {
	slices.SortFunc(bindings, func(a, b Binding) int {
		if c := strings.Compare(a.Group, b.Group); c != 0 {
			return c
		}
		return strings.Compare(a.Environment, b.Environment)
	})
}

// normalizeAllowedIPs accepts CIDRs and single addresses and returns them in
// canonical form (a CIDR's host bits cleared), without duplicates.
func normalizeAllowedIPs(field string, ips []string) ([]string, error) {
	if len(ips) > maxAllowedIPs {
		return nil, invalid(field, "has more than %d entries", maxAllowedIPs)
	}
	out := make([]string, 0, len(ips))
	for i, s := range ips {
		s = strings.TrimSpace(s)
		if prefix, err := netip.ParsePrefix(s); err == nil {
			s = prefix.Masked().String()
		} else if addr, err := netip.ParseAddr(s); err == nil && addr.Zone() == "" {
			s = addr.String()
		} else {
			return nil, invalid(fmt.Sprintf("%s[%d]", field, i), "%s is not an IP address or CIDR", quoteInput(s))
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out, nil
}

func validateWindow(from, until *time.Time) error {
	if from != nil && until != nil && !from.Before(*until) {
		return invalid("valid_from", "must be before valid_until")
	}
	return nil
}

func validateRecordID(field, id string) error {
	if !recordIDPattern.MatchString(id) {
		return invalid(field, "%s is not a valid id", quoteInput(id))
	}
	return nil
}

// utcPtr returns a copy of t in UTC, or nil.
func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// addEnvironment adds env (unless "*" or "") to a sorted list; it reports
// whether the list changed.
func addEnvironment(envs []string, env string) ([]string, bool) {
	if env == "" || env == AnyEnvironment {
		return envs, false
	}
	i, found := slices.BinarySearch(envs, env)
	if found {
		return envs, false
	}
	return slices.Insert(envs, i, env), true
}

// validatePlanRef checks the plan an authorization or binding names ("" is
// none).
func validatePlanRef(field string, plan PlanRef) error {
	if plan == "" {
		return nil
	}
	if !groupNamePattern.MatchString(string(plan)) {
		return invalid(field, "%s is not a valid plan name (lower-case letters, digits, _ and -, at most 64, starting with a letter or digit)", quoteInput(string(plan)))
	}
	return nil
}

// validatePlan checks a plan's description, rate, burst and quota; prefix
// goes before each field name (e.g. "plans[2].").
func validatePlan(prefix string, p Plan) error {
	if err := validateDescription(prefix+"description", p.Description); err != nil {
		return err
	}
	if p.Rate == nil && p.Quota == nil {
		return invalid(prefix+"rate", "a plan needs a rate, a quota or both")
	}
	if p.Rate != nil {
		if p.Rate.Requests <= 0 {
			return invalid(prefix+"rate.requests", "must be a positive number")
		}
		if p.Rate.Per != PerSecond && p.Rate.Per != PerMinute && p.Rate.Per != PerHour {
			return invalid(prefix+"rate.per", "%s is not 1s, 1m or 1h", quoteInput(p.Rate.Per))
		}
	}
	switch {
	case p.Burst < 0:
		return invalid(prefix+"burst", "must not be negative")
	case p.Burst > 0 && p.Rate == nil:
		return invalid(prefix+"burst", "needs a rate")
	}
	if p.Quota != nil {
		if p.Quota.Requests <= 0 {
			return invalid(prefix+"quota.requests", "must be a positive number")
		}
		if p.Quota.Period != PeriodDay && p.Quota.Period != PeriodWeek && p.Quota.Period != PeriodMonth {
			return invalid(prefix+"quota.period", "%s is not day, week or month", quoteInput(p.Quota.Period))
		}
	}
	return nil
}
