package caddymodule

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// TestAdminHandlerConsole: access_auth_admin serves the web console without
// a token unless it is off, and the API beside it still needs the token.
// Each site is reached by its Host on the one test port.
func TestAdminHandlerConsole(t *testing.T) {
	startCaddy(t, "access_auth {\nstore file "+filepath.Join(t.TempDir(), "store.db")+"\n}", `
http://default.test:9080 {
	access_auth_admin {
		token `+testAdminToken+`
	}
}
http://on.test:9080 {
	access_auth_admin {
		token `+testAdminToken+`
		console on
	}
}
http://off.test:9080 {
	access_auth_admin {
		token `+testAdminToken+`
		console off
	}
	respond "site"
}`)
	get := func(host, path, token string) answer {
		req, _ := http.NewRequest(http.MethodGet, siteURL+path, nil)
		req.Host = host
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		return send(t, req)
	}
	for _, tt := range []struct {
		host, path, token string
		status            int
		contentType       string
		location          string
	}{
		{host: "default.test", path: "/access-auth/console/", status: 200, contentType: "text/html; charset=utf-8"},
		{host: "default.test", path: "/access-auth/console/app.js", status: 200, contentType: "text/javascript; charset=utf-8"},
		{host: "default.test", path: "/access-auth/console", status: 301, location: "console/"},
		{host: "default.test", path: "/access-auth/console/nothing", status: 404, contentType: "text/plain; charset=utf-8"},
		{host: "default.test", path: "/access-auth/keys", status: 401, contentType: "application/json"},
		{host: "default.test", path: "/access-auth/keys", token: testAdminToken, status: 200, contentType: "application/json"},
		{host: "on.test", path: "/access-auth/console/", status: 200, contentType: "text/html; charset=utf-8"},
		{host: "on.test", path: "/access-auth/console/style.css", status: 200, contentType: "text/css; charset=utf-8"},
		{host: "off.test", path: "/access-auth/console/", status: 404, contentType: "application/json"},
		{host: "off.test", path: "/access-auth/console/", token: testAdminToken, status: 404, contentType: "application/json"},
		{host: "off.test", path: "/access-auth/console", status: 404, contentType: "application/json"},
		{host: "off.test", path: "/access-auth/keys", token: testAdminToken, status: 200, contentType: "application/json"},
	} {
		a := get(tt.host, tt.path, tt.token)
		if a.status != tt.status || a.header.Get("Location") != tt.location || a.header.Get("Content-Type") != tt.contentType {
			t.Errorf("%s %s (token %q): %d %q Location %q, want %d %q Location %q: %.200s", tt.host, tt.path, tt.token,
				a.status, a.header.Get("Content-Type"), a.header.Get("Location"), tt.status, tt.contentType, tt.location, a.body)
		}
		console := tt.host != "off.test" && strings.HasPrefix(tt.path, "/access-auth/console")
		if csp := a.header.Get("Content-Security-Policy"); console != strings.HasPrefix(csp, "default-src 'self'") {
			t.Errorf("%s %s: Content-Security-Policy %q", tt.host, tt.path, csp)
		}
	}
	if a := get("off.test", "/access-auth/console/", ""); !strings.Contains(a.body, `"code":"not_found"`) {
		t.Errorf("console off: %s", a.body)
	}
}
