package admin

import (
	"net/http"
	"strings"
	"testing"

	"github.com/accessauth/caddy-access-auth/store"
)

const applyBody = `{
	"groups": [{"name": "orders"}],
	"keys": [{"name": "alice"}, {"name": "partner", "api_key": "PARTNER-AK", "api_secret": "partner secret"}],
	"authorizations": [{"key": "alice", "bindings": [{"group": "orders"}]}, {"api_key": "PARTNER-AK"}]
}`

type auditList struct {
	Items []store.AuditRecord
}

// TestApply: POST /access-auth/apply answers the diff and the generated
// secrets, changes nothing on a dry run or a second run, and refuses a bad
// file with the path of the bad entry.
func TestApply(t *testing.T) {
	c, _ := newClient(t, Options{})
	var dry store.ApplyResult
	c.call("POST", "/access-auth/apply?dry_run=true", applyBody, http.StatusOK, &dry)
	if !dry.DryRun || len(dry.Changes) != 5 || len(dry.Secrets) != 0 {
		t.Fatalf("dry run answered %+v", dry)
	}
	var audit auditList
	c.call("GET", "/access-auth/audit", "", http.StatusOK, &audit)
	if len(audit.Items) != 0 {
		t.Fatalf("a dry run wrote %d audit records", len(audit.Items))
	}

	var res store.ApplyResult
	c.call("POST", "/access-auth/apply", applyBody, http.StatusOK, &res)
	if res.DryRun || len(res.Changes) != 5 || res.Changes[0].Op+res.Changes[0].Kind+res.Changes[0].Name != "+grouporders" {
		t.Fatalf("apply answered %+v", res)
	}
	if len(res.Secrets) != 1 || res.Secrets[0].Name != "alice" || res.Secrets[0].APISecret == "" {
		t.Fatalf("secrets %+v, want alice's", res.Secrets)
	}
	w := c.do("POST", "/access-auth/apply", applyBody)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"changes":[]`) || !strings.Contains(w.Body.String(), `"secrets":[]`) {
		t.Fatalf("second apply: %d %s", w.Code, w.Body)
	}
	if strings.Contains(w.Body.String(), "partner secret") {
		t.Fatal("an answer repeats an imported secret")
	}
	var after auditList
	c.call("GET", "/access-auth/audit", "", http.StatusOK, &after)
	if len(after.Items) != 6 {
		t.Errorf("%d audit records after two applies, want the first one's 6", len(after.Items))
	}

	for _, tc := range []struct{ target, body, says string }{
		{"/access-auth/apply", `{"authorizations":[{"key":"alice","bindings":[{"group":"pay"}]}]}`,
			`authorizations[0].bindings[0].group: group "pay" is neither in the file nor in the store`},
		{"/access-auth/apply", `{"keys":[{"name":"bob","secret":"x"}]}`, "keys[0].secret: is not a field here"},
		{"/access-auth/apply", ``, "file: is empty"},
		{"/access-auth/apply?prune=maybe", applyBody, "prune must be true or false"},
		{"/access-auth/apply?dry_run=1x", applyBody, "dry_run must be true or false"},
	} {
		var e struct{ Error, Code string }
		c.call("POST", tc.target, tc.body, http.StatusBadRequest, &e)
		if e.Code != "invalid_argument" || !strings.Contains(e.Error, tc.says) {
			t.Errorf("POST %s %s: %+v, want invalid_argument saying %q", tc.target, tc.body, e, tc.says)
		}
	}
	c.call("GET", "/access-auth/audit", "", http.StatusOK, &after)
	if len(after.Items) != 6 {
		t.Errorf("refused applies wrote audit records: %d", len(after.Items))
	}
}
