package caddymodule

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/spf13/cobra"
)

// keysPath is the admin API path of one access key, followed by its ID.
const keysPath = "/access-auth/keys/"

// keyID returns arg if it is an access key ID (ak-…), else the ID of the
// key named arg, found by the name filter of the key list: people remember
// names, not IDs.
func keyID(cmd *cobra.Command, arg string) (string, error) {
	if strings.HasPrefix(arg, "ak-") {
		return arg, nil
	}
	raw, err := adminAnswer(cmd, http.MethodGet, "/access-auth/keys?"+url.Values{"name": {arg}}.Encode(), nil)
	if err != nil {
		return "", err
	}
	var page struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
	}
	if err := json.Unmarshal(raw, &page); err != nil {
		return "", fmt.Errorf("looking up the key named %q: %v", arg, err)
	}
	if len(page.Items) == 0 || page.Items[0].ID == "" {
		return "", fmt.Errorf("not_found: no access key is named %q (an ID starts with ak-)", arg)
	}
	return page.Items[0].ID, nil
}

// resolveKeyFlag replaces a key name given to flag by the key's ID.
func resolveKeyFlag(cmd *cobra.Command, flag string) error {
	f := cmd.Flags().Lookup(flag)
	if !f.Changed {
		return nil
	}
	id, err := keyID(cmd, f.Value.String())
	if err != nil {
		return err
	}
	return f.Value.Set(id)
}
