package admin

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"net/http"
	"strings"
	"sync"
	"time"
)

// ConsolePath is where the web console lives: its page, and its script
// and style sheet beside it. The console calls the admin API at the
// relative paths ../keys, ../groups, … with the bearer token its user signs
// in with, so it needs the API served at the same origin and prefix.
const ConsolePath = PathPrefix + "console/"

// IsConsolePath reports whether an admin request's path belongs to the web
// console rather than to the REST API.
func IsConsolePath(path string) bool {
	return path == strings.TrimSuffix(ConsolePath, "/") || strings.HasPrefix(path, ConsolePath)
}

// consoleSecurityHeaders go on every answer of the console, errors and
// redirects too: scripts and styles only from its own files (nothing
// inline, so injected markup cannot run), no framing, no MIME sniffing and
// no Referer sent anywhere. Forms never submit by themselves: the script
// sends everything, so a form that did submit (say, with the script not
// loaded) must not put the token into a URL.
var consoleSecurityHeaders = map[string]string{
	"Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
	"X-Content-Type-Options":  "nosniff",
	"Referrer-Policy":         "no-referrer",
}

//go:embed console/index.html console/app.js console/style.css
var consoleFiles embed.FS

// consoleAsset is one file of the console, ready to serve.
type consoleAsset struct {
	name         string
	body         []byte
	contentType  string
	cacheControl string
	etag         string
}

// consoleAssets maps a path below ConsolePath to its file. The page is
// never cached (a new release must not meet an old page); the script and
// style sheet are revalidated by ETag on every load.
var consoleAssets = sync.OnceValue(func() map[string]consoleAsset {
	assets := make(map[string]consoleAsset)
	for _, f := range []struct{ path, file, contentType, cacheControl string }{
		{"", "index.html", "text/html; charset=utf-8", "no-store"},
		{"app.js", "app.js", "text/javascript; charset=utf-8", "no-cache"},
		{"style.css", "style.css", "text/css; charset=utf-8", "no-cache"},
	} {
		body, err := consoleFiles.ReadFile("console/" + f.file)
		if err != nil {
			panic("admin: console asset missing from the build: " + err.Error())
		}
		sum := sha256.Sum256(body)
		assets[f.path] = consoleAsset{
			name:         f.file,
			body:         body,
			contentType:  f.contentType,
			cacheControl: f.cacheControl,
			etag:         `"` + hex.EncodeToString(sum[:16]) + `"`,
		}
	}
	return assets
})

// Console returns the handler of the web console, serving its page at
// /access-auth/console/ and its two assets beside it, and redirecting
// /access-auth/console there. Other paths are 404 (there is no directory
// listing); methods other than GET and HEAD are 405. The assets hold no
// secrets and need no authentication; every API call the console makes
// carries the user's bearer token.
func Console() http.Handler {
	assets := consoleAssets()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		for name, value := range consoleSecurityHeaders {
			h.Set(name, value)
		}
		rest, found := strings.CutPrefix(r.URL.Path, ConsolePath)
		asset, known := assets[rest]
		if !found || !known {
			if r.URL.Path == strings.TrimSuffix(ConsolePath, "/") {
				redirectToConsole(w, r)
				return
			}
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h.Set("Content-Type", asset.contentType)
		h.Set("Cache-Control", asset.cacheControl)
		h.Set("ETag", asset.etag)
		http.ServeContent(w, r, asset.name, time.Time{}, bytes.NewReader(asset.body))
	})
}

// redirectToConsole sends /access-auth/console to /access-auth/console/
// with a relative Location, so it also works behind a proxy that serves
// the admin API under a path prefix of its own.
func redirectToConsole(w http.ResponseWriter, r *http.Request) {
	target := "console/"
	if r.URL.RawQuery != "" {
		target += "?" + r.URL.RawQuery
	}
	w.Header().Set("Location", target)
	w.WriteHeader(http.StatusMovedPermanently)
}
