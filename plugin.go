// Package caddyaccessauth is the root of the caddy-access-auth plugin. Importing it
// (as `xcaddy build --with github.com/accessauth/caddy-access-auth` does) registers
// the access_auth app, the access_auth and access_auth_admin handlers and the
// admin API module with Caddy.
package caddyaccessauth

import _ "github.com/accessauth/caddy-access-auth/caddymodule"
