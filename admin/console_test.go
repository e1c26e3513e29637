package admin

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func TestConsoleServesItsThreeFiles(t *testing.T) {
	console := Console()
	for _, tt := range []struct {
		method, path     string
		status           int
		contentType      string
		cacheControl     string
		bodyContains     string
		location, allows string
	}{
		{method: "GET", path: "/access-auth/console/", status: 200, contentType: "text/html; charset=utf-8", cacheControl: "no-store", bodyContains: `<script src="app.js" defer></script>`},
		{method: "GET", path: "/access-auth/console/?tab=keys", status: 200, contentType: "text/html; charset=utf-8", cacheControl: "no-store", bodyContains: "<!doctype html>"},
		{method: "GET", path: "/access-auth/console/app.js", status: 200, contentType: "text/javascript; charset=utf-8", cacheControl: "no-cache", bodyContains: `"use strict"`},
		{method: "GET", path: "/access-auth/console/style.css", status: 200, contentType: "text/css; charset=utf-8", cacheControl: "no-cache", bodyContains: ":root"},
		{method: "HEAD", path: "/access-auth/console/", status: 200, contentType: "text/html; charset=utf-8", cacheControl: "no-store"},
		{method: "GET", path: "/access-auth/console", status: 301, location: "console/"},
		{method: "GET", path: "/access-auth/console?x=1", status: 301, location: "console/?x=1"},
		// No other file, no directory listing, no index.html alias.
		{method: "GET", path: "/access-auth/console/index.html", status: 404},
		{method: "GET", path: "/access-auth/console/console/", status: 404},
		{method: "GET", path: "/access-auth/console/app.js/", status: 404},
		{method: "GET", path: "/access-auth/console/missing.js", status: 404},
		{method: "GET", path: "/access-auth/console/../console.go", status: 404},
		{method: "GET", path: "/access-auth/console/%2e%2e/console.go", status: 404},
		{method: "GET", path: "/access-auth/keys", status: 404},
		{method: "POST", path: "/access-auth/console/", status: 405, allows: "GET, HEAD"},
		{method: "DELETE", path: "/access-auth/console/app.js", status: 405, allows: "GET, HEAD"},
	} {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			w := httptest.NewRecorder()
			console.ServeHTTP(w, httptest.NewRequest(tt.method, tt.path, nil))
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.status, w.Body)
			}
			h := w.Header()
			for name, want := range consoleSecurityHeaders {
				if got := h.Get(name); got != want {
					t.Errorf("%s: %q, want %q", name, got, want)
				}
			}
			if tt.status == 200 && (h.Get("Content-Type") != tt.contentType || h.Get("Cache-Control") != tt.cacheControl) {
				t.Errorf("Content-Type %q, Cache-Control %q; want %q, %q", h.Get("Content-Type"), h.Get("Cache-Control"), tt.contentType, tt.cacheControl)
			}
			if !strings.Contains(w.Body.String(), tt.bodyContains) {
				t.Errorf("body does not contain %q", tt.bodyContains)
			}
			if tt.method == "HEAD" && w.Body.Len() != 0 {
				t.Errorf("HEAD answered a body of %d bytes", w.Body.Len())
			}
			if h.Get("Location") != tt.location || h.Get("Allow") != tt.allows {
				t.Errorf("Location %q, Allow %q; want %q, %q", h.Get("Location"), h.Get("Allow"), tt.location, tt.allows)
			}
		})
	}
}

// TestConsoleContentSecurityPolicy: the policy allows only the console's
// own files and names no unsafe source.
func TestConsoleContentSecurityPolicy(t *testing.T) {
	csp := consoleSecurityHeaders["Content-Security-Policy"]
	if !strings.HasPrefix(csp, "default-src 'self'; frame-ancestors 'none'") || strings.Contains(csp, "unsafe") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
}

func TestConsoleRevalidatesByETag(t *testing.T) {
	console := Console()
	first := httptest.NewRecorder()
	console.ServeHTTP(first, httptest.NewRequest("GET", "/access-auth/console/app.js", nil))
	etag := first.Header().Get("ETag")
	if !regexp.MustCompile(`^"[0-9a-f]{32}"$`).MatchString(etag) {
		t.Fatalf("ETag %q", etag)
	}
	again := httptest.NewRequest("GET", "/access-auth/console/app.js", nil)
	again.Header.Set("If-None-Match", etag)
	w := httptest.NewRecorder()
	console.ServeHTTP(w, again)
	if w.Code != http.StatusNotModified || w.Body.Len() != 0 {
		t.Errorf("revalidation: %d with %d bytes, want 304 and none", w.Code, w.Body.Len())
	}
}

// TestConsoleAssetsFollowTheirPolicy reads the assets for what the policy
// would block (inline script and style) or what would let API data become
// markup: the console writes text through textContent and DOM nodes only.
func TestConsoleAssetsFollowTheirPolicy(t *testing.T) {
	assets := consoleAssets()
	page := string(assets[""].body)
	for _, inline := range []*regexp.Regexp{
		regexp.MustCompile(`<script(\s[^>]*)?>[^<]`),           // a script with a body
		regexp.MustCompile(`<script(?:\s(?:[^s>]|s[^r>])*)?>`), // a script without src
		regexp.MustCompile(`(?i)<style`),
		regexp.MustCompile(`(?i)\sstyle=`),
		regexp.MustCompile(`(?i)\son[a-z]+=`),
		regexp.MustCompile(`(?i)https?://`), // nothing from elsewhere
	} {
		if m := inline.FindString(page); m != "" {
			t.Errorf("index.html: %q", m)
		}
	}
	for _, tag := range regexp.MustCompile(`<script[^>]*>`).FindAllString(page, -1) {
		if !strings.Contains(tag, ` src="`) {
			t.Errorf("index.html: inline script %q", tag)
		}
	}
	script := string(assets["app.js"].body)
	for _, sink := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "localStorage", ".style."} {
		if strings.Contains(script, sink) {
			t.Errorf("app.js uses %s", sink)
		}
	}
}

func TestIsConsolePath(t *testing.T) {
	for path, want := range map[string]bool{
		"/access-auth/console":        true,
		"/access-auth/console/":       true,
		"/access-auth/console/app.js": true,
		"/access-auth/consoles":       false,
		"/access-auth/keys":           false,
		"/access-auth/":               false,
		"/other/access-auth/console/": false,
	} {
		if got := IsConsolePath(path); got != want {
			t.Errorf("IsConsolePath(%q) = %v", path, got)
		}
	}
}
