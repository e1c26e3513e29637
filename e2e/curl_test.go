package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/accessauth/caddy-access-auth/internal/gatewaytest"
)

// TestCurlReadsTheSecret: `caddy access-auth curl` takes the APISecret
// from --secret-file or $ACCESS_AUTH_SECRET as well as --secret, so it
// need not show in the process list.
func TestCurlReadsTheSecret(t *testing.T) {
	n := gatewaytest.Start(t, "curl", "", ordersSite)
	n.WaitGroup("orders")
	key := n.AuthorizedKey("alice", "orders")
	secretFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secretFile, []byte(key.APISecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	url := n.Site + "/"
	for _, tc := range []struct {
		name string
		args []string
		env  []string
		want string // in the output; "" means the command fails
	}{
		{"--secret-file", []string{"--secret-file", secretFile}, nil, "ok " + key.ID},
		{"$ACCESS_AUTH_SECRET", nil, []string{"ACCESS_AUTH_SECRET=" + key.APISecret}, "ok " + key.ID},
		{"--secret", []string{"--secret", key.APISecret}, nil, "ok " + key.ID},
		{"a flag before the variable", []string{"--secret-file", secretFile}, []string{"ACCESS_AUTH_SECRET=wrong"}, "ok " + key.ID},
		{"no secret", nil, []string{"ACCESS_AUTH_SECRET="}, ""},
		{"both flags", []string{"--secret-file", secretFile, "--secret", key.APISecret}, nil, ""},
		{"a missing file", []string{"--secret-file", secretFile + ".missing"}, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"access-auth", "curl", "--key", key.APIKey}, tc.args...)
			cmd := gatewaytest.Command(t, append(args, url)...)
			cmd.Env = append(cmd.Env, tc.env...)
			out, err := cmd.CombinedOutput()
			switch {
			case tc.want == "" && err == nil:
				t.Errorf("succeeded, want an error:\n%s", out)
			case tc.want != "" && (err != nil || !strings.Contains(string(out), tc.want)):
				t.Errorf("%v, want %q:\n%s", err, tc.want, out)
			}
		})
	}
}
