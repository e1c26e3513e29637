package store

import (
	"regexp"
	"strings"
	"testing"
)

// The regular expressions the name syntaxes stand for.
var nameSyntaxes = []struct {
	name   string
	syntax *nameSyntax
	regexp *regexp.Regexp
}{
	{"group", groupNamePattern, regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)},
	{"environment", environmentPattern, regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)},
	{"record ID", recordIDPattern, regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)},
}

func TestNameSyntax(t *testing.T) {
	for _, tt := range []struct {
		s                  string
		group, env, record bool
	}{
		{"", false, false, false},
		{"a", true, true, true},
		{"ak-01h.x_Y", false, true, true},
		{"bulk-000001", true, true, true},
		{"-a", false, false, false},
		{"_a", false, false, false},
		{".a", false, false, false},
		{"A", false, true, true},
		{"a b", false, false, false},
		{"a\n", false, false, false},
		{"é", false, false, false},
		{strings.Repeat("a", 64), true, true, true},
		{strings.Repeat("a", 65), false, false, true},
		{strings.Repeat("a", 128), false, false, true},
		{strings.Repeat("a", 129), false, false, false},
	} {
		for i, want := range []bool{tt.group, tt.env, tt.record} {
			if got := nameSyntaxes[i].syntax.MatchString(tt.s); got != want {
				t.Errorf("%s %q: %v, want %v", nameSyntaxes[i].name, tt.s, got, want)
			}
		}
	}
}

// FuzzNameSyntax holds the name syntaxes to the regular expressions they
// replaced.
func FuzzNameSyntax(f *testing.F) {
	for _, s := range []string{"", "a", "ak-01h.x_Y", "-a", "A_", "a\n", "é", strings.Repeat("z", 64), strings.Repeat("Z9", 64)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, n := range nameSyntaxes {
			if got, want := n.syntax.MatchString(s), n.regexp.MatchString(s); got != want {
				t.Fatalf("%s %q: %v, the regular expression %v", n.name, s, got, want)
			}
		}
	})
}
