package e2e

import (
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/accessauth/caddy-access-auth/internal/gatewaytest"
)

// cliCase is one run of the CLI: it must exit zero or not, and print
// every one of want and none of refuse.
type cliCase struct {
	name   string
	args   []string
	ok     bool
	want   []string
	refuse []string
}

func runCLICases(t *testing.T, n *gatewaytest.Node, cases []cliCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, ok := cli(t, n, tc.args...)
			if ok != tc.ok {
				t.Errorf("caddy access-auth %s: exited zero = %v, want %v:\n%s", strings.Join(tc.args, " "), ok, tc.ok, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("caddy access-auth %s: output lacks %q:\n%s", strings.Join(tc.args, " "), w, out)
				}
			}
			for _, r := range tc.refuse {
				if strings.Contains(out, r) {
					t.Errorf("caddy access-auth %s: output holds %q:\n%s", strings.Join(tc.args, " "), r, out)
				}
			}
		})
	}
}

// TestCLIExitsNonZeroOnErrors: a mistyped subcommand or flag, and a curl
// answered 400 or above, exit non-zero, so scripts notice; curl still
// prints the body.
func TestCLIExitsNonZeroOnErrors(t *testing.T) {
	n := gatewaytest.Start(t, "cli-exit", "", ordersSite)
	n.WaitGroup("orders")
	key := n.AuthorizedKey("alice", "orders")
	curl := func(secret string) []string {
		return []string{"curl", "--key", key.APIKey, "--secret", secret, n.Site + "/"}
	}
	runCLICases(t, n, []cliCase{
		{"unknown subcommand", []string{"bogus"}, false,
			[]string{`unknown subcommand "bogus"`, "keys", "authorizations", "curl"}, nil},
		{"unknown sub-subcommand", []string{"keys", "lst"}, false,
			[]string{`unknown subcommand "lst"`, "create", "list", "did you mean list"}, nil},
		{"missing subcommand", []string{"plans"}, false, []string{"needs a subcommand", "create"}, nil},
		{"unknown flag", []string{"keys", "list", "--bogus"}, false, []string{"unknown flag: --bogus"}, nil},
		{"curl answered 200", curl(key.APISecret), true, []string{"ok " + key.ID}, nil},
		{"curl answered 401", curl("wrong-secret"), false, []string{`"reason"`, "401"}, nil},
	})
}

// TestCLIErrorsAreSentences: an error is the API's code and message, not
// its JSON, and a refused connection names the address tried.
func TestCLIErrorsAreSentences(t *testing.T) {
	n := gatewaytest.Start(t, "cli-errors", "", ordersSite)
	n.CreateKey("alice")
	runCLICases(t, n, []cliCase{
		{"name taken", []string{"keys", "create", "--name", "alice"}, false,
			[]string{`name_taken: `, "alice"}, []string{`{`, "HTTP 409"}},
		{"not found", []string{"keys", "show", "ak-missing"}, false,
			[]string{"not_found: "}, []string{`{`}},
		{"bad argument", []string{"plans", "create", "p", "--rate", "1/1y"}, false,
			[]string{"invalid_argument: "}, []string{`{`}},
	})
	t.Run("refused connection", func(t *testing.T) {
		address := fmt.Sprintf("127.0.0.1:%d", gatewaytest.FreePort(t))
		out, err := gatewaytest.Command(t, "access-auth", "keys", "list", "--address", address).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "admin address "+address) || !strings.Contains(string(out), "--address") {
			t.Errorf("keys list against a closed port: %v, want an error naming %s and --address:\n%s", err, address, out)
		}
	})
}

// TestCLITakesTimesAsDurations: a time flag takes a duration from now as
// well as RFC 3339, and a bad value is refused with an example, not Go's
// time-format error.
func TestCLITakesTimesAsDurations(t *testing.T) {
	n := gatewaytest.Start(t, "cli-times", "", ordersSite)
	key := n.CreateKey("alice")
	before := time.Now()
	var created struct {
		ExpiresAt time.Time `json:"expires_at"`
	}
	cliJSON(t, n, &created, "keys", "create", "--name", "bob", "--expires-at", "720h")
	if lo, hi := before.Add(720*time.Hour-time.Second), time.Now().Add(720*time.Hour+time.Second); created.ExpiresAt.Before(lo) || created.ExpiresAt.After(hi) {
		t.Errorf("--expires-at 720h: expires_at %v, want between %v and %v", created.ExpiresAt, lo, hi)
	}
	bad := []string{"RFC 3339", "720h"}
	runCLICases(t, n, []cliCase{
		{"RFC 3339", []string{"keys", "update", key.ID, "--expires-at", "2031-06-07T08:09:10Z"}, true,
			[]string{`"expires_at": "2031-06-07T08:09:10Z"`}, nil},
		{"never", []string{"keys", "update", key.ID, "--expires-at", "never"}, true, []string{`"expires_at": null`}, nil},
		{"bad expiry", []string{"keys", "create", "--name", "carol", "--expires-at", "tomorrow"}, false,
			append(bad, "--expires-at"), []string{"parsing time", "{"}},
		{"bad validity", []string{"authorizations", "create", "--access-key-id", key.ID, "--valid-until", "2031-06-07"}, false,
			append(bad, "--valid-until"), []string{"parsing time", "{"}},
	})
}

// TestCLITakesKeyNames: where an access key ID is expected, the key's
// name does too; an unknown name is a not_found sentence.
func TestCLITakesKeyNames(t *testing.T) {
	n := gatewaytest.Start(t, "cli-names", "", ordersSite)
	n.EnsureGroup("orders")
	key := n.CreateKey("alice")
	runCLICases(t, n, []cliCase{
		{"keys show", []string{"keys", "show", "alice"}, true, []string{`"id": "` + key.ID + `"`}, nil},
		{"keys update", []string{"keys", "update", "alice", "--description", "renamed by name"}, true,
			[]string{`"description": "renamed by name"`}, nil},
		{"authorizations create", []string{"authorizations", "create", "--access-key-id", "alice", "--bind", "orders"}, true,
			[]string{`"access_key_id": "` + key.ID + `"`}, nil},
		{"authorizations list", []string{"authorizations", "list", "--access-key-id", "alice"}, true,
			[]string{`"access_key_id": "` + key.ID + `"`}, nil},
		{"an ID still works", []string{"keys", "show", key.ID}, true, []string{`"name": "alice"`}, nil},
		{"unknown name", []string{"keys", "show", "nobody"}, false, []string{`not_found: no access key is named "nobody"`}, []string{"{"}},
	})
}

// TestCurlTLSFlags: curl verifies an HTTPS server's certificate, and takes
// -k/--insecure to skip that and --cacert to trust another CA, as curl does.
func TestCurlTLSFlags(t *testing.T) {
	server := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "signed: ", r.Header.Get("Authorization") != "")
	}))
	defer server.Close()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: server.Certificate().Raw})
	if err := os.WriteFile(caFile, ca, 0o600); err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(t.TempDir(), "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string // in the output; the command must succeed
		fail string // in the output; the command must fail
	}{
		{"unknown CA", nil, "", "certificate"},
		{"-k", []string{"-k"}, "signed: true", ""},
		{"--insecure", []string{"--insecure"}, "signed: true", ""},
		{"--cacert", []string{"--cacert", caFile}, "signed: true", ""},
		{"--cacert without PEM", []string{"--cacert", notPEM}, "", "holds no PEM certificate"},
		{"--cacert missing", []string{"--cacert", caFile + ".missing"}, "", "--cacert"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"access-auth", "curl", "--key", "AK", "--secret", "SK"}, tc.args...)
			out, err := gatewaytest.Command(t, append(args, server.URL+"/")...).CombinedOutput()
			if tc.want != "" && (err != nil || !strings.Contains(string(out), tc.want)) {
				t.Errorf("%v, want success with %q:\n%s", err, tc.want, out)
			}
			if tc.fail != "" && (err == nil || !strings.Contains(string(out), tc.fail)) {
				t.Errorf("%v, want a failure with %q:\n%s", err, tc.fail, out)
			}
		})
	}
}
