package caddymodule

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/accessauth/caddy-access-auth/store"
)

// applyCommand brings the store to the state of a file (docs/apply.md).
func applyCommand() *cobra.Command {
	c := subcommand("apply -f <file|-> [--dry-run] [--prune]",
		"Brings groups, plans, keys and authorizations to the state of a JSON or YAML file", cobra.NoArgs, runApply)
	c.Flags().StringP("file", "f", "", "the file, JSON or YAML (- reads stdin)")
	c.Flags().Bool("dry-run", false, "print what would change, change nothing")
	c.Flags().Bool("prune", false, "also delete what the file neither declares nor refers to")
	c.Flags().Bool("json", false, "print the admin API's JSON answer instead of the diff")
	return c
}

func runApply(cmd *cobra.Command, _ []string) error {
	flags := cmd.Flags()
	file, _ := flags.GetString("file")
	if file == "" {
		return errors.New("--file (-f) is required: the JSON or YAML file to apply, or - for stdin")
	}
	var raw []byte
	var err error
	if file == "-" {
		raw, err = io.ReadAll(cmd.InOrStdin())
	} else {
		raw, err = os.ReadFile(file)
	}
	if err != nil {
		return err
	}
	body, err := applyFileJSON(file, raw)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	// Check here first: a mistake is reported with its path before the
	// admin endpoint is even asked.
	if _, err := store.ParseDesiredState(body); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	q := url.Values{}
	for _, name := range []string{"dry-run", "prune"} {
		if on, _ := flags.GetBool(name); on {
			q.Set(strings.ReplaceAll(name, "-", "_"), "true")
		}
	}
	path := "/access-auth/apply"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	if asJSON, _ := flags.GetBool("json"); asJSON {
		return adminCall(cmd, http.MethodPost, path, body)
	}
	answer, err := adminAnswer(cmd, http.MethodPost, path, body)
	if err != nil {
		return err
	}
	var result store.ApplyResult
	if err := json.Unmarshal(answer, &result); err != nil {
		return fmt.Errorf("reading the answer of the admin API: %v", err)
	}
	printApplyResult(cmd.OutOrStdout(), result)
	return nil
}

// printApplyResult prints the diff, one change a line, a count, and the
// secrets of the generated keys created (the only time they are shown).
func printApplyResult(w io.Writer, r store.ApplyResult) {
	counts := map[string]int{}
	for _, c := range r.Changes {
		counts[c.Op]++
		line := c.Op + " " + c.Kind + " " + c.Name
		if len(c.Fields) > 0 {
			line += " (" + strings.Join(c.Fields, ", ") + ")"
		}
		fmt.Fprintln(w, line)
	}
	switch {
	case len(r.Changes) == 0:
		fmt.Fprintln(w, "no change: the store already holds the file's state")
	case r.DryRun:
		fmt.Fprintf(w, "dry run: %d to create, %d to change, %d to delete; nothing was changed\n",
			counts[store.ApplyCreate], counts[store.ApplyUpdate], counts[store.ApplyDelete])
	default:
		fmt.Fprintf(w, "%d created, %d changed, %d deleted\n",
			counts[store.ApplyCreate], counts[store.ApplyUpdate], counts[store.ApplyDelete])
	}
	if len(r.Secrets) == 0 {
		return
	}
	fmt.Fprintln(w, "\nnew keys; their secrets are shown this once, keep them now:")
	for _, s := range r.Secrets {
		fmt.Fprintf(w, "  %s  id=%s  api_key=%s  api_secret=%s\n", s.Name, s.ID, s.APIKey, s.APISecret)
	}
}

// applyFileJSON returns an apply file as JSON: a .json file, or one that
// starts with {, as it is; anything else is read as YAML.
func applyFileJSON(name string, raw []byte) ([]byte, error) {
	if strings.EqualFold(filepath.Ext(name), ".json") || bytes.HasPrefix(bytes.TrimSpace(raw), []byte("{")) {
		return raw, nil
	}
	return yamlToJSON(raw)
}

// yamlToJSON converts one YAML document to JSON. Mapping keys must be
// strings and appear once; aliases are refused (they could multiply a
// small file into a huge one); timestamps stay as written, for the
// parser to check as RFC 3339.
func yamlToJSON(raw []byte) ([]byte, error) {
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("the file is empty")
		}
		return nil, fmt.Errorf("not valid YAML: %v", err)
	}
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		return nil, errors.New("the file holds more than one YAML document")
	}
	v, err := yamlValue(&doc, "")
	if err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

// yamlValue turns a node into the value encoding/json writes; path names
// it in errors, beside its line.
func yamlValue(n *yaml.Node, path string) (any, error) {
	fail := func(format string, args ...any) error { return yamlError(n, path, format, args...) }
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return yamlValue(n.Content[0], path)
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode || k.Tag == "!!merge" {
				return nil, yamlError(k, path, "a key must be a plain name")
			}
			if _, dup := m[k.Value]; dup {
				return nil, yamlError(k, path, "%s appears twice", k.Value)
			}
			child := k.Value
			if path != "" {
				child = path + "." + k.Value
			}
			v, err := yamlValue(n.Content[i+1], child)
			if err != nil {
				return nil, err
			}
			m[k.Value] = v
		}
		return m, nil
	case yaml.SequenceNode:
		list := make([]any, 0, len(n.Content))
		for i, item := range n.Content {
			v, err := yamlValue(item, fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return nil, err
			}
			list = append(list, v)
		}
		return list, nil
	case yaml.AliasNode:
		return nil, fail("aliases (*%s) are not supported; write the value out", n.Value)
	}
	switch n.Tag {
	case "!!null":
		return nil, nil
	case "!!bool", "!!int", "!!float":
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, fail("%v", err)
		}
		if f, ok := v.(float64); ok && (math.IsInf(f, 0) || math.IsNaN(f)) {
			return nil, fail("%s is not a number JSON can hold", n.Value)
		}
		return v, nil
	}
	return n.Value, nil
}

// yamlError says where a node is: its line, and its path when below the
// top.
func yamlError(n *yaml.Node, path, format string, args ...any) error {
	where := fmt.Sprintf("line %d", n.Line)
	if path != "" {
		where += " (" + path + ")"
	}
	return fmt.Errorf("%s: %s", where, fmt.Sprintf(format, args...))
}
