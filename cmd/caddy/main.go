// Command caddy is Caddy with the caddy-access-auth plugin and Caddy's standard modules.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/accessauth/caddy-access-auth"
)

func main() {
	caddycmd.Main()
}
