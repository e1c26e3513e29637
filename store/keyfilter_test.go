package store

import (
	"encoding/json"
	"testing"
)

// TestKeyFilterMayMatch: the check on the raw record never refuses a key
// that the filter matches once decoded, escaped characters included.
func TestKeyFilterMayMatch(t *testing.T) {
	for _, tc := range []struct {
		name, query string
		want        bool
	}{
		{"Alice-Prod", "ALICE-p", true},
		{"Alice-Prod", "bob", false},
		{"a<b>&c", "<b>&", true}, // JSON writes \u003cb\u003e\u0026
		{`quote"d`, `e"d`, true},
		{"tab\tname", "b\tn", true},
		{"Zoë", "zoë", true},
		{"plain", "é", true}, // cannot be ruled out on the record: decoded, it does not match
	} {
		key := AccessKey{ID: "ak-0123", Name: tc.name, APIKey: "ABCDEF"}
		record, err := json.Marshal(ExportedKey{AccessKey: key})
		if err != nil {
			t.Fatal(err)
		}
		f := KeyFilter{Query: tc.query}
		if got := f.mayMatch(record); got != tc.want {
			t.Errorf("mayMatch(%q) on %s = %v, want %v", tc.query, record, got, tc.want)
		}
		if f.matches(key) && !f.mayMatch(record) {
			t.Errorf("%q matches %q but its record was ruled out", tc.query, tc.name)
		}
	}
}
