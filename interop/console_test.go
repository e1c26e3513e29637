package interop

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
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

// TestConsoleInChromium drives the web console in headless Chromium against
// the real Caddy binary: it signs in (a wrong token first), creates a group,
// a key (reading the secret shown once), an authorization and a binding, and
// checks that a request signed with the key passes a route of the group;
// then it disables the key in the console and the next request is refused.
// A key named like markup must show as text. Set CONSOLE_SCREENSHOT_DIR to
// keep screenshots of the pages.
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

	p.do("open the groups", chromedp.Click(chromedp.CSS(`[data-tab=groups]`)), chromedp.WaitVisible(chromedp.ID("view-groups")))
	p.dialog("#group-create", map[string]string{"name": group, "description": "the shop API"}, "")
	p.waitText("#groups-list", "the shop API")

	p.do("open the keys", chromedp.Click(chromedp.CSS(`[data-tab=keys]`)), chromedp.WaitVisible(chromedp.ID("view-keys")))
	p.dialog("#key-create", map[string]string{"name": "console-key", "description": "made in the browser"}, "")
	p.do("wait for the secret", chromedp.WaitVisible(chromedp.ID("once-api-secret")))
	key := gatewaytest.Credentials{
		ID:        p.value("#once-id"),
		APIKey:    p.value("#once-api-key"),
		APISecret: p.value("#once-api-secret"),
	}
	if !strings.HasPrefix(key.ID, "ak-") || len(key.APIKey) != 32 || len(key.APISecret) < 32 {
		t.Fatalf("the secret shown once: %+v", key)
	}
	p.waitText("#secret-once", "will not be shown again")
	p.screenshot("secret")
	p.waitText("#keys-list", key.APIKey)
	if status, raw := node.Request(http.MethodGet, "/access-auth/keys/"+key.ID, nil); status != http.StatusOK || strings.Contains(string(raw), key.APISecret) {
		t.Fatalf("the key as the API shows it: %d %s", status, raw)
	}

	// Authorize the key without bindings, then bind the group in its row.
	p.rowButton("#keys-list", "console-key", "Authorize")
	p.do("wait for the keys to choose from", chromedp.WaitVisible(chromedp.CSS(`#dialog select[name=access_key_id]`)))
	if chosen := p.value(`#dialog select[name=access_key_id]`); chosen != key.ID {
		t.Errorf("authorizing from the key's row chose %q, want %s", chosen, key.ID)
	}
	p.dialog("", map[string]string{"description": "console e2e"}, "")
	p.waitText("#authorizations-list", "console e2e")
	p.rowButton("#authorizations-list", key.APIKey, "+ Bind")
	p.do("wait for the groups to choose from", chromedp.WaitVisible(chromedp.CSS(`#dialog select[name=group]`)))
	p.dialog("", map[string]string{"group": group, "environment": "*"}, "")
	p.waitText("#authorizations-list", group+" · *")

	// The protected route starts after the group exists (a route registers
	// its group itself, so the console's create would race it).
	node.Reload("", consoleRoutes(group, true))
	signedCall := func() gatewaytest.Answer { return node.Send(node.SignedRequest("/api/x", key)) }
	if a := signedCall(); a.Status != http.StatusOK || a.Body != "upstream reached" {
		t.Fatalf("request signed with the key made in the console: %s", a)
	}
	p.do("open the groups again", chromedp.Click(chromedp.CSS(`[data-tab=groups]`)))
	p.waitText("#groups-list", "enforced")
	p.screenshot("groups")

	// Markup in a name is text: no element made of it, no script run.
	p.do("open the keys again", chromedp.Click(chromedp.CSS(`[data-tab=keys]`)), chromedp.WaitVisible(chromedp.ID("view-keys")))
	const markup = `<img src=x onerror=alert(1)>`
	p.dialog("#key-create", map[string]string{"name": markup, "description": `<script>alert(2)</script><b>bold</b>`}, "")
	p.waitText("#keys-list", markup)
	p.waitText("#keys-list", `<script>alert(2)</script><b>bold</b>`)
	if n := evaluate[int](p, `document.querySelectorAll("#keys-list img, #keys-list script, #keys-list b, #secret-once img").length`); n != 0 {
		t.Errorf("markup in a key's name became %d elements", n)
	}
	p.do("close the secret", chromedp.Click(chromedp.Search(`//button[text()="I have saved the secret"]`)), chromedp.WaitNotPresent(chromedp.ID("once-api-secret")))
	p.screenshot("keys")

	// Disabling the key in the console refuses its next request.
	p.rowButton("#keys-list", "console-key", "Disable")
	p.waitText("#notices", "Key console-key disabled.")
	gatewaytest.WantAnswer(t, "request after the console disabled the key", signedCall(), http.StatusUnauthorized, "invalid_key")

	// A key with an authorization cannot be deleted: the 409 reads as such.
	p.rowButton("#keys-list", "console-key", "Delete")
	p.do("confirm", chromedp.Click(chromedp.ID("dialog-submit")))
	p.waitText("#dialog-error", "delete that authorization first")
	p.waitText("#dialog-error", "key_in_use, HTTP 409")
	p.do("cancel", chromedp.Click(chromedp.ID("dialog-cancel")))

	p.do("open the authorizations", chromedp.Click(chromedp.CSS(`[data-tab=authorizations]`)))
	p.waitText("#authorizations-list", group+" · *")
	p.screenshot("authorizations")
	p.do("open the audit log", chromedp.Click(chromedp.CSS(`[data-tab=audit]`)))
	p.waitText("#audit-list", "remote-admin")

	// A token the server stops accepting ends the session with a message.
	evaluate[chromedp.Void](p, `sessionStorage.setItem("access-auth-console-token", "revoked"), location.hash = "#keys"`)
	p.waitText("#sign-in-error", "no longer accepts your token")
	p.signIn()
	p.do("sign out", chromedp.Click(chromedp.ID("sign-out")), chromedp.WaitVisible(chromedp.ID("sign-in")))
	if stored := evaluate[int](p, `sessionStorage.length + document.querySelectorAll("#keys-list tr").length`); stored != 0 {
		t.Errorf("signing out left %d stored items and rows", stored)
	}
	p.screenshot("sign-in")
	p.checkConsole()
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
func (p *consolePage) screenshot(name string) {
	dir := os.Getenv("CONSOLE_SCREENSHOT_DIR")
	if dir == "" {
		return
	}
	png, err := tryRun(p, chromedp.CaptureScreenshot())
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, "console-"+name+".png"), png, 0o644)
	}
	if err != nil {
		p.t.Errorf("screenshot %s: %v", name, err)
	}
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
