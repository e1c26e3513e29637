package interop

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/accessauth/caddy-access-auth/internal/gatewaytest"
)

const consoleToken = "console-test-token-0123456789abcdef"

// consoleRoutes is the site of the console test: the remote admin handler
// and, once protected is set, a route that access_auth guards for group.
func consoleRoutes(group string, protected bool) string {
	routes := "\taccess_auth_admin {\n\t\ttoken " + consoleToken + "\n\t}\n"
	if protected {
		routes += "\troute /api/* {\n\t\taccess_auth " + group + "\n\t\trespond \"upstream reached\"\n\t}\n"
	}
	return routes
}

// TestConsoleInChromium walks the console's whole flow in headless Chromium
// against the real Caddy binary, as a new user would: sign in (a wrong
// token first), create a group, create a key and land on its page with the
// secret shown once, copy the access key ID there, create an authorization
// by pasting that ID into the picker, bind the group in an environment
// chosen from the list, sign a request with the key (200), unbind (403).
// Markup in names stays text. On failure a screenshot is written (the path
// is logged); CONSOLE_SCREENSHOT_DIR keeps screenshots of every step.
func TestConsoleInChromium(t *testing.T) {
	browser := chromiumPath(t)
	const group = "shop"
	node := gatewaytest.Start(t, "console", "", consoleRoutes(group, false))
	p := openConsole(t, browser, node.Site+"/access-auth/console/")

	// A wrong token stays on the sign-in form with the server's refusal.
	p.do("sign in with a wrong token", chromedp.SendKeys(chromedp.ID("token"), "not-the-token"),
		chromedp.Click(chromedp.CSS(`#sign-in-form button[type=submit]`)))
	p.waitText("#sign-in-error", "401 unauthenticated")
	if stored := evaluate[int](p, `sessionStorage.length`); stored != 0 {
		t.Errorf("a refused token was stored (%d items in sessionStorage)", stored)
	}
	p.signIn()
	if shown := evaluate[bool](p, `!document.getElementById("openapi").hidden`); !shown {
		t.Error("the OpenAPI link is hidden after sign-in")
	}

	p.tab("groups")
	p.dialog("#group-create", map[string]string{"name": group, "description": "the shop API"}, "")
	p.waitText("#groups-list", "the shop API")

	// A new key lands on its page: the secret card above its details.
	p.tab("keys")
	p.dialog("#key-create", map[string]string{"name": "console-key", "description": "made in the browser"}, "")
	p.do("wait for the key's page", chromedp.WaitVisible(chromedp.ID("view-key")), chromedp.WaitVisible(chromedp.ID("once-api-secret")))
	p.waitText("#key-details", "console-key")
	key := gatewaytest.Credentials{
		ID:        p.value("#once-id"),
		APIKey:    p.value("#once-api-key"),
		APISecret: p.value("#once-api-secret"),
	}
	if !strings.HasPrefix(key.ID, "ak-") || len(key.APIKey) != 32 || len(key.APISecret) < 32 {
		t.Fatalf("the secret shown once: %+v", key)
	}
	if hash := evaluate[string](p, `location.hash`); hash != "#key/"+key.ID {
		t.Errorf("a new key lands on %q, want its page #key/%s", hash, key.ID)
	}
	p.waitText("#secret-once", "will not be shown again")
	p.screenshot("key-details")
	// The details page shows what the caller hands over.
	copiedID := evaluate[string](p, `document.querySelector("#key-details dl.details dd code").textContent`)
	if copiedID != key.ID {
		t.Fatalf("the details page's access key ID %q, want %s", copiedID, key.ID)
	}
	for _, want := range []string{key.APIKey, "generated", "enabled", "never rotated", "No authorization yet"} {
		p.waitText("#key-details", want)
	}
	if status, raw := node.Request(http.MethodGet, "/access-auth/keys/"+key.ID, nil); status != http.StatusOK || strings.Contains(string(raw), key.APISecret) {
		t.Fatalf("the key as the API shows it: %d %s", status, raw)
	}

	// Leaving the secret asks first; staying keeps it.
	p.do("leave for the authorizations", chromedp.Click(chromedp.CSS(`[data-tab=authorizations]`)))
	p.waitText("#dialog-title", "Leave without the secret?")
	p.do("stay", chromedp.Click(chromedp.ID("dialog-cancel")))
	if still := evaluate[bool](p, `!!document.getElementById("once-api-secret") && location.hash.startsWith("#key/") && !document.getElementById("view-key").hidden`); !still {
		t.Fatal("staying lost the secret or the key's page")
	}
	p.do("dismiss the secret", chromedp.Click(chromedp.Search(`//button[text()="I have saved the secret"]`)), chromedp.WaitNotPresent(chromedp.ID("once-api-secret")))

	// Authorize by pasting the access key ID: the picker names the key.
	p.tab("authorizations")
	p.do("open the new authorization", chromedp.Click(chromedp.ID("auth-create")), chromedp.WaitVisible(chromedp.CSS(`#dialog [name=key_search]`)))
	p.do("paste the access key ID", chromedp.SendKeys(chromedp.CSS(`#dialog [name=key_search]`), key.ID))
	p.waitText("#key-picked", "console-key")
	p.waitText("#key-picked", key.ID)
	p.do("choose the group", chromedp.SetValue(chromedp.CSS(`#dialog [name=binding_group]`), group))
	evaluate[chromedp.Void](p, `document.querySelector("#dialog [name=binding_group]").dispatchEvent(new Event("change"))`)
	if env := p.value(`#dialog .binding-row [name=environment]`); env != "*" {
		t.Errorf("the binding's environment defaults to %q, want *", env)
	}
	p.dialog("", map[string]string{"description": "console e2e"}, "")
	p.waitText("#authorizations-list", "console e2e")
	p.waitText("#authorizations-list", group+" · *")
	// Its row names the key and its state.
	row := evaluate[string](p, `[...document.querySelectorAll("#authorizations-list tbody tr")].map(r => r.textContent).find(t => t.includes("console e2e")) || ""`)
	if !strings.Contains(row, "console-key") || !strings.Contains(row, "key enabled") {
		t.Errorf("the authorization's row %q: want the key's name and state", row)
	}
	p.screenshot("authorizations")

	// The protected route starts after the group exists (a route registers
	// its group itself, so the console's create would race it).
	node.Reload("", consoleRoutes(group, true))
	signedCall := func() gatewaytest.Answer { return node.Send(node.SignedRequest("/api/x", key)) }
	if a := signedCall(); a.Status != http.StatusOK || a.Body != "upstream reached" {
		t.Fatalf("request signed with the key made in the console: %s", a)
	}

	// A plan with a quota on the authorization, and the request counted:
	// the key's page draws its budget as a gauge and its days as a chart.
	node.AdminJSON(http.MethodPost, "/access-auth/plans", map[string]any{"name": "metered", "quota": map[string]any{"requests": 100, "period": "day"}}, http.StatusCreated, nil)
	var auths struct{ Items []struct{ ID string } }
	node.AdminJSON(http.MethodGet, "/access-auth/authorizations?access_key_id="+key.ID, nil, http.StatusOK, &auths)
	if len(auths.Items) != 1 {
		t.Fatalf("the key's authorizations: %+v", auths.Items)
	}
	node.AdminJSON(http.MethodPatch, "/access-auth/authorizations/"+auths.Items[0].ID, map[string]any{"plan": "metered"}, http.StatusOK, nil)
	gatewaytest.Eventually(t, 10*time.Second, "the request in the key's daily usage", func() error {
		var usage struct{ Daily []struct{ Allowed int } }
		node.AdminJSON(http.MethodGet, "/access-auth/keys/"+key.ID+"/usage", nil, http.StatusOK, &usage)
		if len(usage.Daily) == 0 {
			return fmt.Errorf("no daily counts yet")
		}
		return nil
	})

	// The key's page shows its authorization, the groups it may call, its usage.
	p.do("open the key's page", chromedp.Click(chromedp.Search(`//*[@id="authorizations-list"]//a[text()="console-key"]`)), chromedp.WaitVisible(chromedp.ID("key-authorization")))
	p.waitText("#key-groups", group+" · every environment")
	p.waitText("#key-authorization", group+" · *")
	p.do("wait for the usage", chromedp.WaitVisible(chromedp.ID("key-usage")), chromedp.WaitVisible(chromedp.ID("usage-chart")))
	p.waitText("#key-usage", "of 100 requests this day used")
	if chart := evaluate[string](p, `document.getElementById("usage-chart").getAttribute("aria-label")`); !strings.Contains(chart, "1 allowed") {
		t.Errorf("the usage chart reads %q, want the one allowed request", chart)
	}
	p.screenshot("usage")

	// Unbinding (confirmed) refuses the key's next request.
	p.do("unbind on the key's page", chromedp.Click(chromedp.CSS(`#key-authorization button[aria-label="Unbind shop * from the authorization of key console-key"]`)))
	p.waitText("#dialog-title", "Unbind shop?")
	p.do("confirm", chromedp.Click(chromedp.ID("dialog-submit")))
	p.waitText("#notices", "Unbound shop (*)")
	gatewaytest.WantAnswer(t, "request after the console unbound the group", signedCall(), http.StatusForbidden, "not_authorized")
	p.waitText("#key-groups", "None.")

	// Markup in a name is text: no element made of it, no script run.
	p.tab("keys")
	const markup = `<img src=x onerror=alert(1)>`
	p.dialog("#key-create", map[string]string{"name": markup, "description": `<script>alert(2)</script><b>bold</b>`}, "")
	p.waitText("#key-details", markup)
	p.waitText("#key-details", `<script>alert(2)</script><b>bold</b>`)
	if n := evaluate[int](p, `document.querySelectorAll("#key-details img, #key-details script, #key-details b, #secret-once img").length`); n != 0 {
		t.Errorf("markup in a key's name became %d elements", n)
	}
	p.do("close the secret", chromedp.Click(chromedp.Search(`//button[text()="I have saved the secret"]`)), chromedp.WaitNotPresent(chromedp.ID("once-api-secret")))

	// A key with an authorization cannot be deleted: the 409 reads as such.
	p.tab("keys")
	p.rowButton("#keys-list", "console-key", "Delete")
	p.do("confirm", chromedp.Click(chromedp.ID("dialog-submit")))
	p.waitText("#dialog-error", "delete that authorization first")
	p.waitText("#dialog-error", "Server says")
	p.waitText("#dialog-error", "key_in_use, HTTP 409")
	p.do("cancel", chromedp.Click(chromedp.ID("dialog-cancel")))

	p.tab("audit")
	p.waitText("#audit-list", "remote-admin")

	// A token the server stops accepting ends the session with a message.
	evaluate[chromedp.Void](p, `sessionStorage.setItem("access-auth-console-token", "revoked"), location.hash = "#keys"`)
	p.waitText("#sign-in-error", "no longer accepts your token")
	p.signIn()
	p.do("sign out", chromedp.Click(chromedp.ID("sign-out")), chromedp.WaitVisible(chromedp.ID("sign-in")))
	if stored := evaluate[int](p, `sessionStorage.length + document.querySelectorAll("#keys-list tr, #key-details *").length`); stored != 0 {
		t.Errorf("signing out left %d stored items and rendered nodes", stored)
	}
	p.checkConsole()
}

// TestConsoleChecks checks in headless Chromium what a user finds hard
// otherwise: finding keys (newest first, search, filters, the picker by
// search or pasted APIKey), safe steps (confirmations, no reset for imported
// keys, environments from the group's list, errors worded by their source),
// plans (create, edit, attach, delete refused while in use), and access
// (accessible names with the row, aria-current, 760 and 1400 px, keyboard).
func TestConsoleChecks(t *testing.T) {
	browser := chromiumPath(t)
	node := gatewaytest.Start(t, "console-checks", "", consoleRoutes("shop", false))
	node.AdminJSON(http.MethodPost, "/access-auth/groups", map[string]any{"name": "catalog", "environments": []string{"online", "staging"}}, http.StatusCreated, nil)
	alpha := node.CreateKey("alpha-one")
	beta := node.CreateKey("beta-two")
	node.ImportKey("gamma-imp", "GAMMA-ACCOUNT-AK", "gamma-secret")
	p := openConsole(t, browser, node.Site+"/access-auth/console/")
	p.signIn()

	// Newest first, the current page marked.
	p.waitText("#keys-list", "gamma-imp")
	names := func() []string {
		return evaluate[[]string](p, `[...document.querySelectorAll("#keys-list tbody tr strong")].map(s => s.textContent)`)
	}
	if got := names(); len(got) != 3 || got[0] != "gamma-imp" || got[2] != "alpha-one" {
		t.Errorf("keys listed %q, want newest first", got)
	}
	if current := evaluate[string](p, `[...document.querySelectorAll("[aria-current=page]")].map(a => a.dataset.tab).join()`); current != "keys" {
		t.Errorf("aria-current marks %q, want keys", current)
	}

	// Search as one types (part of a name, or of an APIKey); filter by kind.
	for _, tc := range []struct{ field, value, want string }{
		{"q", "ta-tw", "beta-two"},
		{"q", strings.ToLower(alpha.APIKey[5:17]), "alpha-one"},
		{"kind", "imported", "gamma-imp"},
	} {
		evaluate[chromedp.Void](p, `(() => { const f = document.getElementById("key-filter").elements; f.q.value = ""; f.kind.value = ""; })()`)
		if tc.field == "q" {
			p.do("type "+tc.value, chromedp.SendKeys(chromedp.CSS(`#key-filter [name=q]`), tc.value))
		} else {
			p.do("choose "+tc.value, chromedp.SetValue(chromedp.CSS(`#key-filter [name=`+tc.field+`]`), tc.value))
			evaluate[chromedp.Void](p, `document.querySelector("#key-filter [name=`+tc.field+`]").dispatchEvent(new Event("change"))`)
		}
		only := fmt.Sprintf(`(() => { const s = [...document.querySelectorAll("#keys-list tbody tr strong")]; return s.length === 1 && s[0].textContent === %s; })()`, jsString(tc.want))
		if _, err := tryRun(p, chromedp.Poll[chromedp.Void](only, chromedp.WithPollingTimeout(stepTimeout))); err != nil {
			t.Errorf("%s=%s lists %q, want only %s", tc.field, tc.value, names(), tc.want)
		}
	}
	evaluate[chromedp.Void](p, `(() => { const f = document.getElementById("key-filter").elements; f.q.value = ""; f.kind.value = ""; document.getElementById("key-filter").requestSubmit(); })()`)
	p.waitText("#keys-list", "alpha-one")

	// Row actions: each names its row; an imported key offers no reset.
	unnamed := evaluate[[]string](p, `[...document.querySelectorAll("#keys-list tbody tr")].flatMap(r => {
		const name = r.querySelector("strong").textContent;
		return [...r.querySelectorAll("button")].map(b => b.getAttribute("aria-label") || b.textContent).filter(n => !n.includes(name));
	})`)
	if len(unnamed) > 0 {
		t.Errorf("row buttons whose accessible name lacks their row: %q", unnamed)
	}
	resets := evaluate[[]string](p, `[...document.querySelectorAll("#keys-list button")].filter(b => b.textContent === "Reset secret").map(b => b.getAttribute("aria-label"))`)
	if len(resets) != 2 || slices.ContainsFunc(resets, func(n string) bool { return strings.Contains(n, "gamma-imp") }) {
		t.Errorf("reset offered as %q, want for the two generated keys only", resets)
	}

	// Disabling asks first: cancelled, the key stays enabled.
	p.rowButton("#keys-list", "beta-two", "Disable")
	p.waitText("#dialog-title", "Disable key beta-two?")
	p.do("cancel", chromedp.Click(chromedp.ID("dialog-cancel")))
	var k struct{ Enabled bool }
	node.AdminJSON(http.MethodGet, "/access-auth/keys/"+beta.ID, nil, http.StatusOK, &k)
	if !k.Enabled {
		t.Error("a cancelled Disable disabled the key")
	}

	// Errors say where they come from.
	p.dialog("#key-create", map[string]string{"name": "alpha-one"}, "Server says")
	p.dialog("#key-create", map[string]string{"name": "  "}, "Check the form")

	// The picker searches as one types and takes a pasted APIKey.
	p.tab("authorizations")
	p.do("open the new authorization", chromedp.Click(chromedp.ID("auth-create")), chromedp.WaitVisible(chromedp.CSS(`#dialog [name=key_search]`)))
	p.do("type part of a name", chromedp.SendKeys(chromedp.CSS(`#dialog [name=key_search]`), "alp"))
	p.waitText("#key-matches", alpha.ID)
	p.do("choose the match", chromedp.Click(chromedp.CSS(`#key-matches button.match`)))
	p.waitText("#key-picked", alpha.ID)
	evaluate[chromedp.Void](p, `document.querySelector("#dialog [name=key_search]").value = ""`)
	p.do("paste an APIKey", chromedp.SendKeys(chromedp.CSS(`#dialog [name=key_search]`), beta.APIKey))
	p.waitText("#key-picked", "beta-two")
	p.waitText("#key-picked", beta.ID)

	// Environments come from the group's list plus *; a new one is explicit.
	p.do("choose catalog", chromedp.SetValue(chromedp.CSS(`#dialog [name=binding_group]`), "catalog"))
	evaluate[chromedp.Void](p, `document.querySelector("#dialog [name=binding_group]").dispatchEvent(new Event("change"))`)
	envs := evaluate[[]string](p, `[...document.querySelectorAll("#dialog .binding-row select[name=environment] option")].map(o => o.value)`)
	if !slices.Equal(envs, []string{"*", "online", "staging"}) {
		t.Errorf("environments offered %q, want * online staging", envs)
	}
	if n := evaluate[int](p, `document.querySelectorAll("#dialog .binding-row input").length`); n != 0 {
		t.Errorf("%d free-text environment fields before Add environment", n)
	}
	p.do("add an environment", chromedp.Click(chromedp.CSS(`#dialog .binding-row button[aria-label="Add a new environment"]`)))
	p.do("name it", chromedp.SendKeys(chromedp.CSS(`#dialog [name=new_environment]`), "canary"))
	p.do("submit", chromedp.Click(chromedp.ID("dialog-submit")))
	p.waitText("#authorizations-list", "catalog · canary")
	p.waitText("#authorizations-list", "beta-two")

	// Plans: create, edit, attach, and a delete refused while in use.
	p.tab("plans")
	p.dialog("#plan-create", map[string]string{"name": "gold", "description": "paying", "rate_requests": "10", "rate_per": "1s", "quota_requests": "1000", "quota_period": "day"}, "")
	p.waitText("#plans-list", "10 per second")
	p.waitText("#plans-list", "1000 per day")
	p.dialog("#plan-create", map[string]string{"name": "empty"}, "Check the form: a plan needs a rate, a quota or both")
	p.rowButton("#plans-list", "gold", "Edit")
	p.dialog("", map[string]string{"quota_requests": "2000", "quota_period": "month"}, "")
	p.waitText("#plans-list", "2000 per month")
	p.tab("authorizations")
	p.rowButton("#authorizations-list", "beta-two", "Edit")
	p.dialog("", map[string]string{"plan": "gold"}, "")
	var auths struct{ Items []struct{ Plan *string } }
	node.AdminJSON(http.MethodGet, "/access-auth/authorizations?access_key_id="+beta.ID, nil, http.StatusOK, &auths)
	if len(auths.Items) != 1 || auths.Items[0].Plan == nil || *auths.Items[0].Plan != "gold" {
		t.Errorf("the plan chosen in the console: %+v", auths.Items)
	}
	p.rowButton("#authorizations-list", "beta-two", "+ Bind")
	p.do("the bind dialog offers plans", chromedp.WaitReady(chromedp.CSS(`#dialog select[name=plan] option[value=gold]`)))
	p.dialog("", map[string]string{"plan": "gold"}, "Check the form: choose a group")
	p.tab("plans")
	p.rowButton("#plans-list", "gold", "Delete")
	p.do("confirm", chromedp.Click(chromedp.ID("dialog-submit")))
	p.waitText("#dialog-error", "still names this plan")
	p.waitText("#dialog-error", "plan_in_use, HTTP 409")
	p.do("cancel", chromedp.Click(chromedp.ID("dialog-cancel")))

	// Keyboard: a page link takes Enter.
	p.do("focus the groups link", chromedp.Focus(chromedp.CSS(`[data-tab=groups]`)), chromedp.KeyEvent("\r"), chromedp.WaitVisible(chromedp.ID("view-groups")))

	// At 760 px every row action stays on screen; at 1400 px too.
	for _, width := range []int64{760, 1400} {
		p.do(fmt.Sprintf("resize to %d px", width), chromedp.EmulateViewport(width, 900))
		for _, tab := range []string{"keys", "authorizations"} {
			p.tab(tab)
			p.waitText("#"+tab+"-list", "beta-two")
			off := evaluate[[]string](p, `[...document.querySelectorAll("#`+tab+`-list .row-actions button")].filter(b => b.getBoundingClientRect().right > window.innerWidth).map(b => b.getAttribute("aria-label"))`)
			if len(off) > 0 {
				t.Errorf("at %d px on %s these are off screen: %q", width, tab, off)
			}
			if scroll := evaluate[bool](p, `document.documentElement.scrollWidth > window.innerWidth`); scroll {
				t.Errorf("at %d px %s scrolls sideways", width, tab)
			}
		}
		p.screenshot(fmt.Sprintf("keys-%d", width))
	}

	// A server that stops answering is a network error, not the server's word.
	p.checkConsole()
	node.Stop()
	p.tab("keys")
	p.waitText("#keys-list", "Network error")
}

// TestConsoleStoreUnavailable: with the store down every view says so and
// offers a retry, and the console stays usable (no exception, tabs work).
func TestConsoleStoreUnavailable(t *testing.T) {
	browser := chromiumPath(t)
	unreachable := fmt.Sprintf("redis://127.0.0.1:%d", gatewaytest.FreePort(t))
	node := gatewaytest.Start(t, "console-503", gatewaytest.RedisOptions(gatewaytest.NewMasterKey(t), unreachable),
		consoleRoutes("shop", false))
	p := openConsole(t, browser, node.Site+"/access-auth/console/")
	p.signIn()
	p.waitText("#keys-list", "The store is unavailable right now")
	p.waitText("#keys-list", "store_unavailable, HTTP 503")
	p.do("open the groups", chromedp.Click(chromedp.CSS(`[data-tab=groups]`)))
	p.waitText("#groups-list", "store_unavailable")
	p.do("retry", chromedp.Click(chromedp.Search(`//*[@id="groups-list"]//button[text()="Retry"]`)))
	p.waitText("#groups-list", "store_unavailable")
	p.dialog("#group-create", map[string]string{"name": "shop"}, "store_unavailable")
	p.screenshot("unavailable")
	p.checkConsole()
}

// chromiumPath finds Chromium or Chrome. A missing browser skips the test,
// except under CI=true, where nothing may be skipped.
func chromiumPath(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("Chromium is required under CI=true (install the chromium package, or run make tools)")
	}
	t.Skip("no Chromium installed (install the chromium package, or run make tools)")
	return ""
}

// consolePage is the console open in a browser tab.
type consolePage struct {
	t   *testing.T
	ctx context.Context

	mu       sync.Mutex
	messages []chromedp.ConsoleMessage // the page's console and browser log
	alerts   []string                  // JavaScript dialogs opened
}

func openConsole(t *testing.T, browser, url string) *consolePage {
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser),
		chromedp.NoSandbox, // root in containers has no user namespace for the sandbox
		chromedp.WindowSize(1280, 900),
		chromedp.UserDataDir(t.TempDir()),
	)
	ctx, cancelAllocator := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAllocator)
	ctx, cancelTab := chromedp.NewContext(ctx)
	t.Cleanup(cancelTab)
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(cancelTimeout)

	p := &consolePage{t: t, ctx: ctx}
	messages := chromedp.Console(ctx)
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			p.mu.Lock()
			p.messages = append(p.messages, m)
			p.mu.Unlock()
		}
	}()
	go func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			p.mu.Lock()
			p.alerts = append(p.alerts, ev.Message)
			p.mu.Unlock()
			_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
		}
	}()
	p.do("open the console", chromedp.Navigate(url), chromedp.WaitVisible(chromedp.ID("token")))
	return p
}

// signIn signs in with the right token.
func (p *consolePage) signIn() {
	p.t.Helper()
	evaluate[chromedp.Void](p, `document.getElementById("token").value = ""`)
	p.do("sign in", chromedp.SendKeys(chromedp.ID("token"), consoleToken),
		chromedp.Click(chromedp.CSS(`#sign-in-form button[type=submit]`)), chromedp.WaitVisible(chromedp.ID("view-keys")))
}

// stepTimeout bounds one step; the browser outlives it.
const stepTimeout = 20 * time.Second

// do runs actions, failing the test with the step's name.
func (p *consolePage) do(step string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	for _, action := range actions {
		run(p, step, action)
	}
}

// run runs one action and returns its value, failing the test with the
// step's name.
func run[T any](p *consolePage, step string, action chromedp.Action[T]) T {
	p.t.Helper()
	v, err := tryRun(p, action)
	if err != nil {
		p.fatalf("%s: %v", step, err)
	}
	return v
}

func tryRun[T any](p *consolePage, action chromedp.Action[T]) (T, error) {
	ctx, cancel := context.WithTimeout(p.ctx, stepTimeout)
	defer cancel()
	return chromedp.Run(ctx, action)
}

// fatalf fails the test with what the page shows.
func (p *consolePage) fatalf(format string, args ...any) {
	p.t.Helper()
	p.screenshot("failure")
	text, _ := tryRun(p, chromedp.Text(chromedp.CSS("body")))
	p.t.Fatalf(format+"\npage text:\n%s", append(args, gatewaytest.Tail(text, 3000))...)
}

func (p *consolePage) value(sel string) string {
	p.t.Helper()
	return run(p, "value of "+sel, chromedp.Value(chromedp.CSS(sel)))
}

// waitText waits until the element's text holds text.
func (p *consolePage) waitText(sel, text string) {
	p.t.Helper()
	expr := fmt.Sprintf(`(document.querySelector(%s)?.textContent ?? "").includes(%s)`, jsString(sel), jsString(text))
	run(p, fmt.Sprintf("waiting for %q in %s", text, sel), chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(stepTimeout)))
}

// rowButton clicks the button labelled label in the table row of within
// that shows rowText.
func (p *consolePage) rowButton(within, rowText, label string) {
	p.t.Helper()
	p.waitText(within, rowText)
	xpath := fmt.Sprintf(`//*[@id=%s]//tr[contains(., %s)]//button[normalize-space()=%s]`,
		xpathString(strings.TrimPrefix(within, "#")), xpathString(rowText), xpathString(label))
	p.do(fmt.Sprintf("click %s in the row of %s", label, rowText), chromedp.Click(chromedp.Search(xpath)))
}

// dialog opens the dialog with the button opener (none: it is opening
// already), fills its fields by name and submits it. With wantError empty
// the dialog must close; else it must stay open showing wantError.
func (p *consolePage) dialog(opener string, fields map[string]string, wantError string) {
	p.t.Helper()
	if opener != "" {
		p.do("open "+opener, chromedp.Click(chromedp.CSS(opener)))
	}
	p.do("dialog open", chromedp.WaitVisible(chromedp.ID("dialog-submit")))
	for name, value := range fields {
		p.do("fill "+name, chromedp.SetValue(chromedp.CSS(fmt.Sprintf(`#dialog [name=%q]`, name)), value))
	}
	p.do("submit", chromedp.Click(chromedp.ID("dialog-submit")))
	closed := `!document.getElementById("dialog").open || !document.getElementById("dialog-error").hidden`
	run(p, "waiting for the dialog to close", chromedp.Poll[chromedp.Void](closed, chromedp.WithPollingTimeout(stepTimeout)))
	shown := evaluate[string](p, `document.getElementById("dialog").open ? document.getElementById("dialog-error").textContent : ""`)
	if wantError == "" && shown != "" || !strings.Contains(shown, wantError) {
		p.fatalf("dialog answered %q, want an error holding %q", shown, wantError)
	}
	if wantError != "" {
		p.do("cancel the dialog", chromedp.Click(chromedp.ID("dialog-cancel")))
	}
}

// screenshot saves the visible page to $CONSOLE_SCREENSHOT_DIR, when set.
// The failure screenshot is always written: there, or into a temporary
// folder that outlives the test (its path is logged).
func (p *consolePage) screenshot(name string) {
	dir := os.Getenv("CONSOLE_SCREENSHOT_DIR")
	if dir == "" && name != "failure" {
		return
	}
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "console-screenshots-"); err != nil {
			p.t.Errorf("screenshot %s: %v", name, err)
			return
		}
	}
	png, err := tryRun(p, chromedp.CaptureScreenshot())
	path := filepath.Join(dir, "console-"+strings.ReplaceAll(p.t.Name(), "/", "_")+"-"+name+".png")
	if err == nil {
		err = os.WriteFile(path, png, 0o644)
	}
	if err != nil {
		p.t.Errorf("screenshot %s: %v", name, err)
		return
	}
	p.t.Logf("screenshot: %s", path)
}

// tab opens a page of the console by its link in the top bar.
func (p *consolePage) tab(name string) {
	p.t.Helper()
	p.do("open the "+name, chromedp.Click(chromedp.CSS(`[data-tab=`+name+`]`)), chromedp.WaitVisible(chromedp.ID("view-"+name)))
}

// checkConsole fails the test on what the page must never log: an uncaught
// exception, a blocked script or style (the content security policy), a
// JavaScript dialog. Refused requests (the wrong token's 401) are expected.
func (p *consolePage) checkConsole() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range p.messages {
		if m.IsException() || m.Source == "security" || m.Source == "javascript" ||
			(m.Type == chromedp.ConsoleError && m.Source == "") {
			p.t.Errorf("page console: %s %s: %s (%s:%d)", m.Type, m.Source, m.Text, m.URL, m.Line+1)
		}
	}
	if len(p.alerts) > 0 {
		p.t.Errorf("JavaScript dialogs opened: %q", p.alerts)
	}
}

func evaluate[T any](p *consolePage, expr string) T {
	p.t.Helper()
	return run(p, "evaluating "+expr, chromedp.Evaluate[T](expr))
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// xpathString quotes s as an XPath 1.0 string literal (which has no
// escapes: a string holding both quote marks is built with concat).
func xpathString(s string) string {
	if !strings.Contains(s, `"`) {
		return `"` + s + `"`
	}
	if !strings.Contains(s, "'") {
		return "'" + s + "'"
	}
	return `concat("` + strings.ReplaceAll(s, `"`, `", '"', "`) + `")`
}
