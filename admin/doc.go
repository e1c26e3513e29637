// Package admin serves the admin REST API of access authorization (docs/admin-api.md)
// as a plain net/http handler over a *store.Store. Caddy serves it on its
// admin endpoint (admin.api.access_auth) and, behind RequireToken, on a site
// (access_auth_admin); this package itself never imports Caddy.
//
// Every path lies under /access-auth/:
//
//	POST   keys                                   create or import an access key → 201, with api_secret
//	GET    keys?name=&enabled=                    list keys
//	GET    keys/{id}                              one key (never its secret)
//	PATCH  keys/{id}                              name, description, enabled, expires_at
//	DELETE keys/{id}                              → 204; 409 key_in_use while authorized
//	POST   keys/{id}/reset                        new secret; {"grace":"24h"} keeps the old one valid
//	GET    keys/{id}/groups                       bindings the key may call
//	POST   authorizations                         → 201; 409 authorization_exists
//	GET    authorizations?access_key_id=&group=   list authorizations
//	GET    authorizations/{id}                    one authorization
//	PATCH  authorizations/{id}                    description, enabled, valid_from, valid_until, allowed_ips, plan
//	DELETE authorizations/{id}                    → 204, with its bindings
//	PUT    authorizations/{id}/bindings/{group}   bind ?environment= (default *) &plan= → 200 with the authorization
//	DELETE authorizations/{id}/bindings/{group}   unbind ?environment= (default every environment) → 204
//	POST   groups                                 {name, description} → 201
//	GET    groups, groups/{name}                  groups, with configured
//	GET    groups/{name}/authorizations           authorizations bound to the group
//	DELETE groups/{name}                          → 204, with its bindings
//	POST   plans                                  {name, description, rate, burst, quota} → 201
//	GET    plans, plans/{name}                    usage plans
//	PATCH  plans/{name}                           description, rate, burst, quota
//	DELETE plans/{name}                           → 204; 409 plan_in_use while named
//	GET    audit                                  audit records, newest first
//	GET    export                                 the whole data set, secrets sealed
//	POST   import                                 an export's data set → 200 with counts
//
// Bodies are JSON (one value, unknown fields refused, 1 MiB at most; an
// import and an export stream, see docs/admin-api.md). Lists take ?limit= (1..500, default 50) and ?cursor= and answer
// {"items":[…],"next_cursor":"…"}, next_cursor empty on the last page; a
// cursor that is not a next_cursor of this API is 400 invalid_argument. Every
// answer is JSON with Cache-Control: no-store; errors are
// {"error":"<message>","code":"<code>"} with the codes invalid_argument (400),
// unauthenticated (401), not_found, group_not_found and plan_not_found
// (404), method_not_allowed (405), name_taken, authorization_exists,
// key_in_use and plan_in_use (409), body_too_large (413), rate_limited (429: RequireToken, after too
// many failed sign-ins), store_unavailable (503) and internal (500,
// details only in the log). Writes are audited with the actor named by
// Options.Actor and the request's remote address.
//
// Console serves the web console (console/: one page, a script and a style
// sheet, embedded) at /access-auth/console/. It is a client of this API at
// the same origin: its files need no authentication, its calls carry the
// bearer token its user signs in with, and it writes API data as text only.
package admin
