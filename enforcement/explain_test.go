package enforcement

import (
	"bytes"
	"context"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/accessauth/caddy-access-auth/cache"
	"github.com/accessauth/caddy-access-auth/replay"
	"github.com/accessauth/caddy-access-auth/signature"
)

// explainOf explains r (its body: ContentLength bytes) for group orders
// from remote.
func explainOf(c *Checker, r *http.Request, group, remote string) Explanation {
	in := ExplainRequest{
		Request: originalOf(r),
		Body:    bytes.Repeat([]byte("x"), int(max(r.ContentLength, 0))),
		Group:   group,
	}
	if remote != "" {
		in.ClientIP = netip.MustParseAddr(remote)
	}
	return c.Explain(context.Background(), in)
}

// TestExplainAgreesWithCheck explains every request of the table of
// reasons and checks that the explanation's decision is the check's, that
// its last step is the one that decided, and that no step shows the key's
// secret.
func TestExplainAgreesWithCheck(t *testing.T) {
	keys := testKeys()
	for _, tt := range reasonCases() {
		t.Run(tt.name, func(t *testing.T) {
			c, r, apiKey, remote := tt.setUp(t, keys)
			if tt.nonces {
				// Explained first, the request is not recorded: the check
				// then lets it through once, and explain sees the replay.
				if e := explainOf(c, r, "orders", remote); e.Decision != Allowed {
					t.Fatalf("explained before it was sent: %s, want allowed", e.Decision)
				}
				if d := check(c, r, remote); d.Reason != Allowed {
					t.Fatalf("sent after explain: %s, want allowed (explain must record no nonce)", d.Reason)
				}
			}
			e := explainOf(c, r, "orders", remote)
			d := check(c, r, remote)
			defer d.Cleanup()
			if e.Decision != d.Reason || e.Decision != tt.want {
				t.Fatalf("explain says %s, check says %s, want %s", e.Decision, d.Reason, tt.want)
			}
			if e.AccessKeyID != d.Identity.AccessKeyID || e.APIKey != d.Identity.APIKey || e.Scheme != d.Identity.Scheme {
				t.Fatalf("explain names %s/%s/%s, check %s/%s/%s", e.Scheme, e.APIKey, e.AccessKeyID,
					d.Identity.Scheme, d.Identity.APIKey, d.Identity.AccessKeyID)
			}
			assertSteps(t, e, apiKey)
		})
	}
}

// assertSteps checks that every step but the last passed, that the last
// passed exactly when the request is allowed and names the reason when
// not, and that no detail holds the key's secret.
func assertSteps(t *testing.T, e Explanation, apiKey string) {
	t.Helper()
	if len(e.Steps) == 0 {
		t.Fatal("no steps")
	}
	for i, s := range e.Steps {
		if strings.Contains(s.Detail, secretOf(apiKey)) || strings.Contains(s.Detail, "old-secret") {
			t.Errorf("step %s shows a secret: %q", s.Name, s.Detail)
		}
		if i < len(e.Steps)-1 && !s.OK {
			t.Errorf("step %s failed but the check went on: %+v", s.Name, e.Steps)
		}
	}
	last := e.Steps[len(e.Steps)-1]
	if last.OK != (e.Decision == Allowed) {
		t.Errorf("last step %+v for decision %s", last, e.Decision)
	}
	if !last.OK && !strings.HasPrefix(last.Detail, e.Decision.String()+":") {
		t.Errorf("last step %q does not start with the reason %s", last.Detail, e.Decision)
	}
}

// TestExplainSteps checks the steps an explanation has: the authorization
// steps only with a group, the client IP only with an address, the forms
// whenever the signature was checked.
func TestExplainSteps(t *testing.T) {
	c := newTestChecker(t, testKeys(), nil)
	tests := []struct {
		name         string
		apiKey       string
		group        string
		remote       string
		tamper       bool
		want         Reason
		wantSteps    []string
		wantNoForms  bool
		wantInDetail string
	}{
		{name: "every step", apiKey: "GOOD", group: "orders", remote: "192.0.2.7", want: Allowed,
			wantSteps:    []string{StepCredentials, StepKey, StepKeyEnabled, StepDate, StepBody, StepSignature, StepReplay, StepAuthorization, StepBinding, StepClientIP},
			wantInDetail: "192.0.2.7"},
		{name: "no client address", apiKey: "GOOD", group: "orders", want: Allowed,
			wantSteps: []string{StepCredentials, StepKey, StepKeyEnabled, StepDate, StepBody, StepSignature, StepReplay, StepAuthorization, StepBinding}},
		{name: "no group: no authorization steps", apiKey: "NOAUTH", want: Allowed,
			wantSteps: []string{StepCredentials, StepKey, StepKeyEnabled, StepDate, StepBody, StepSignature, StepReplay}},
		{name: "with a group", apiKey: "NOAUTH", group: "orders", want: NotAuthorized,
			wantSteps:    []string{StepCredentials, StepKey, StepKeyEnabled, StepDate, StepBody, StepSignature, StepReplay, StepAuthorization},
			wantInDetail: "no authorization names the key"},
		{name: "another group", apiKey: "GOOD", group: "billing", want: NotAuthorized,
			wantSteps:    []string{StepCredentials, StepKey, StepKeyEnabled, StepDate, StepBody, StepSignature, StepReplay, StepAuthorization, StepBinding},
			wantInDetail: `group "billing", environment "online"`},
		{name: "signature mismatch", apiKey: "GOOD", tamper: true, want: SignatureMismatch,
			wantSteps:    []string{StepCredentials, StepKey, StepKeyEnabled, StepDate, StepBody, StepSignature},
			wantInDetail: "documented"},
		{name: "unknown key: no forms", apiKey: "UNKNOWN", want: InvalidKey, wantNoForms: true,
			wantSteps: []string{StepCredentials, StepKey}, wantInDetail: "UNKNOWN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var signed signature.Form
			r := signedRequest(t, http.MethodGet, "http://api.example.com/v1/orders?page=1", "", tt.apiKey, secretOf(tt.apiKey),
				signature.JDCloud2, signature.WithSignedForm(&signed))
			if tt.tamper {
				r.URL.Path = "/v1/moved"
			}
			e := explainOf(c, r, tt.group, tt.remote)
			if e.Decision != tt.want {
				t.Fatalf("decision %s, want %s; steps %+v", e.Decision, tt.want, e.Steps)
			}
			var names []string
			var details strings.Builder
			for _, s := range e.Steps {
				names = append(names, s.Name)
				details.WriteString(s.Detail + "\n")
			}
			if strings.Join(names, ",") != strings.Join(tt.wantSteps, ",") {
				t.Errorf("steps %v, want %v", names, tt.wantSteps)
			}
			if !strings.Contains(details.String(), tt.wantInDetail) {
				t.Errorf("no %q in the details:\n%s", tt.wantInDetail, details.String())
			}
			if tt.wantNoForms {
				if e.Forms != nil {
					t.Errorf("forms %+v before the signature step", e.Forms)
				}
				return
			}
			if len(e.Forms) == 0 || e.Forms[0].Name != signature.FormDocumented {
				t.Fatalf("forms %+v, want the documented one first", e.Forms)
			}
			// Untampered, the gateway's documented form is the signer's;
			// tampered, it differs from it in the path line alone.
			got, want := strings.Split(e.Forms[0].CanonicalRequest, "\n"), strings.Split(signed.CanonicalRequest, "\n")
			var differ []string
			for i := range min(len(got), len(want)) {
				if got[i] != want[i] {
					differ = append(differ, got[i])
				}
			}
			if tt.tamper != (len(differ) == 1 && differ[0] == "/v1/moved") || len(got) != len(want) {
				t.Errorf("lines differing from the signer's canonical request: %q", differ)
			}
		})
	}
}

// TestExplainRecordsNoNonce checks that explain asks a replay store that
// can be asked without recording, and says so of one that cannot, without
// recording in either.
func TestExplainRecordsNoNonce(t *testing.T) {
	recorded := 0
	tests := []struct {
		name       string
		nonces     replay.Guard
		want       Reason
		wantDetail string
	}{
		{"off", nil, Allowed, "replay protection is off"},
		{"a store that cannot be asked", recordingNonces(func(string, string, time.Duration) { recorded++ }), Allowed, "not checked"},
		{"the node's table", replay.NewLocalNonces(replay.WithNonceClock(func() time.Time { return testNow })), Allowed, "not recorded"},
		{"a store that cannot be reached", failingNonces{}, StoreUnavailable, "store_unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestChecker(t, testKeys(), func(cfg *Config) { cfg.Nonces = tt.nonces })
			r := signedRequest(t, http.MethodGet, "http://api.example.com/v1/orders", "", "GOOD", secretOf("GOOD"), signature.JDCloud2)
			for range 2 {
				e := explainOf(c, r, "orders", "")
				if e.Decision != tt.want {
					t.Fatalf("decision %s, want %s", e.Decision, tt.want)
				}
				if s := stepNamed(e, StepReplay); !strings.Contains(s.Detail, tt.wantDetail) {
					t.Fatalf("replay step %+v, want %q in it", s, tt.wantDetail)
				}
			}
			if recorded != 0 {
				t.Fatalf("explain recorded %d nonces", recorded)
			}
		})
	}
}

func TestExplainStoreUnavailable(t *testing.T) {
	c := newTestChecker(t, &fakeKeys{err: cache.ErrUnavailable}, nil)
	r := signedRequest(t, http.MethodGet, "http://api.example.com/v1/orders", "", "GOOD", secretOf("GOOD"), signature.JDCloud2)
	e := explainOf(c, r, "orders", "")
	if d := check(c, r, "203.0.113.5"); e.Decision != StoreUnavailable || d.Reason != e.Decision {
		t.Fatalf("explain says %s, check %s, want store_unavailable", e.Decision, d.Reason)
	}
	assertSteps(t, e, "GOOD")
}

// TestExplainRoute checks that the route explain was told of is its first
// step, and that an explained body is read as the check reads it.
func TestExplainRoute(t *testing.T) {
	c := newTestChecker(t, testKeys(), nil)
	r := signedRequest(t, http.MethodPost, "http://api.example.com/v1/orders", `{"n":1}`, "GOOD", secretOf("GOOD"), signature.JDCloud2)
	in := ExplainRequest{Request: originalOf(r), Body: []byte(`{"n":1}`), Group: "orders", Route: "the route of group orders"}
	e := c.Explain(context.Background(), in)
	if e.Decision != Allowed || e.Steps[0].Name != StepRoute || e.Steps[0].Detail != in.Route {
		t.Fatalf("explanation %+v", e)
	}
	in.Body = []byte(`{"n":2}`)
	if e := c.Explain(context.Background(), in); e.Decision != SignatureMismatch {
		t.Fatalf("another body: %s, want signature_mismatch", e.Decision)
	}
}

func stepNamed(e Explanation, name string) Step {
	for _, s := range e.Steps {
		if s.Name == name {
			return s
		}
	}
	return Step{}
}

// TestExplainOverloaded checks that explain reads a body within the node's
// budget as the check does, refuses as overloaded when it is spent, and
// gives back what it took.
func TestExplainOverloaded(t *testing.T) {
	budget := NewBodyBudget(DefaultBodyBufferBytes, 1)
	c := newTestChecker(t, testKeys(), func(c *Config) { c.Bodies = budget })
	held := checkAllowed(t, c, signedPost(t, "x"))
	explainBody := func() Reason {
		r := signedPost(t, "y")
		return c.Explain(context.Background(), ExplainRequest{Request: originalOf(r), Body: []byte("y"), Group: "orders"}).Decision
	}
	if got := explainBody(); got != Overloaded {
		t.Fatalf("with the budget spent: %s, want overloaded", got)
	}
	held.Cleanup()
	if got := explainBody(); got != Allowed {
		t.Fatalf("with the budget free: %s, want allowed", got)
	}
	if bytes, bodies := budget.InUse(); bytes != 0 || bodies != 0 {
		t.Fatalf("after explain: %d bytes and %d bodies in use", bytes, bodies)
	}
}
