package caddymodule

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/accessauth/caddy-access-auth/store"
)

// TestApplyFileJSON: a YAML file becomes the JSON the admin API takes,
// JSON passes as it is, and what YAML can say but JSON cannot is refused
// with its line.
func TestApplyFileJSON(t *testing.T) {
	yamlFile := `
groups:
  - name: orders
    environments: [prod]
plans:
  - {name: gold, rate: {requests: 5, per: 1s}, burst: 2, quota: null}
keys:
  - name: alice
    enabled: false
    expires_at: 2030-01-02T03:04:05Z
  - name: "007"
authorizations:
  - key: alice
    bindings:
      - group: orders
        environment: prod
`
	body, err := applyFileJSON("state.yaml", []byte(yamlFile))
	if err != nil {
		t.Fatal(err)
	}
	d, err := store.ParseDesiredState(body)
	if err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	if d.Groups[0].Environments[0] != "prod" || d.Plans[0].Rate.Requests != 5 || d.Plans[0].Burst != 2 ||
		*d.Keys[0].Enabled || d.Keys[0].ExpiresAt.Year() != 2030 || d.Keys[1].Name != "007" ||
		d.Authorizations[0].Bindings[0].Environment != "prod" {
		t.Fatalf("parsed %s as %+v", body, d)
	}
	raw := []byte(`{"keys":[{"name":"a"}]}`)
	if got, err := applyFileJSON("-", raw); err != nil || !bytes.Equal(got, raw) {
		t.Errorf("JSON on stdin: %s, %v", got, err)
	}

	for _, tc := range []struct{ file, says string }{
		{"keys:\n  - &a {name: a}\n  - *a\n", "line 3 (keys[1]): aliases (*a) are not supported"},
		{"keys:\n  - name: a\n    name: b\n", "line 3 (keys[0]): name appears twice"},
		{"keys:\n  - ? [a]\n    : b\n", "a key must be a plain name"},
		{"plans:\n  - name: p\n    burst: .inf\n", "line 3 (plans[0].burst): .inf is not a number"},
		{"keys: [\n", "not valid YAML"},
		{"", "empty"},
		{"keys: []\n---\nkeys: []\n", "more than one YAML document"},
	} {
		_, err := applyFileJSON("state.yaml", []byte(tc.file))
		if err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%q: error %v, want %q", tc.file, err, tc.says)
		}
	}
}

// TestPrintApplyResult: the diff is one change a line, +, ~ or -, with the
// fields changed, then a count; new secrets are printed after it.
func TestPrintApplyResult(t *testing.T) {
	for _, tc := range []struct {
		result store.ApplyResult
		want   string
	}{
		{store.ApplyResult{Changes: []store.AppliedChange{}}, "no change: the store already holds the file's state\n"},
		{store.ApplyResult{DryRun: true, Changes: []store.AppliedChange{
			{Op: "+", Kind: "group", Name: "orders"},
			{Op: "~", Kind: "key", Name: "partner", Fields: []string{"description", "api_secret"}},
			{Op: "-", Kind: "plan", Name: "old"},
		}}, "+ group orders\n~ key partner (description, api_secret)\n- plan old\n" +
			"dry run: 1 to create, 1 to change, 1 to delete; nothing was changed\n"},
		{store.ApplyResult{Changes: []store.AppliedChange{{Op: "+", Kind: "key", Name: "alice"}},
			Secrets: []store.GeneratedSecret{{Name: "alice", ID: "ak-1", APIKey: "AK", APISecret: "SK"}}},
			"+ key alice\n1 created, 0 changed, 0 deleted\n\nnew keys; their secrets are shown this once, keep them now:\n" +
				"  alice  id=ak-1  api_key=AK  api_secret=SK\n"},
	} {
		var b strings.Builder
		printApplyResult(&b, tc.result)
		if b.String() != tc.want {
			t.Errorf("printed:\n%s\nwant:\n%s", b.String(), tc.want)
		}
	}
}

// FuzzApplyFileYAML feeds arbitrary text to the YAML reader: it never
// panics, and what it accepts is JSON, which the file parser accepts or
// refuses with a path.
func FuzzApplyFileYAML(f *testing.F) {
	for _, seed := range []string{
		"groups:\n  - name: g\n    environments: [a]\nkeys:\n  - name: k\nauthorizations:\n  - key: k\n    bindings: [{group: g}]\n",
		"plans:\n  - {name: p, rate: {requests: 1, per: 1m}, burst: 0x10, quota: ~}\n",
		"keys:\n  - &x {name: a}\n  - *x\n",
		"keys:\n  - name: a\n    expires_at: 2030-01-01\n    enabled: yes\n",
		"<<: {a: 1}\n",
		"- 1\n- 2.5\n- .nan\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		body, err := yamlToJSON([]byte(s))
		if err != nil {
			return
		}
		if !json.Valid(body) {
			t.Fatalf("%q became invalid JSON %s", s, body)
		}
		if _, err := store.ParseDesiredState(body); err != nil {
			var invalid *store.InvalidArgumentError
			if !errors.As(err, &invalid) || invalid.Field == "" {
				t.Fatalf("%q: %v is not an error naming a path", s, err)
			}
		}
	})
}
