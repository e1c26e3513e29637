#!/bin/sh
# `make run`: starts bin/caddy with Caddyfile.example and tells you where the
# web console is and which token signs in to it (docs/console.md).
#
# The token is $ACCESS_AUTH_ADMIN_TOKEN when set; otherwise the one in
# .data/admin.token, made (64 random hex digits, mode 0600) on the first run.
# CADDY, CADDYFILE and CONSOLE_URL override the binary, the configuration
# and the URL printed (a copy of the example on other ports, say).
set -eu

CADDY=${CADDY:-bin/caddy}
CADDYFILE=${CADDYFILE:-Caddyfile.example}
CONSOLE_URL=${CONSOLE_URL:-http://localhost:8080/access-auth/console/}
TOKEN_FILE=.data/admin.token

if [ -n "${ACCESS_AUTH_ADMIN_TOKEN:-}" ]; then
	source='$ACCESS_AUTH_ADMIN_TOKEN'
else
	if [ ! -s "$TOKEN_FILE" ]; then
		mkdir -p .data
		# umask first: the file is never readable by others, not even for a moment.
		(umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$TOKEN_FILE")
	fi
	ACCESS_AUTH_ADMIN_TOKEN=$(cat "$TOKEN_FILE")
	export ACCESS_AUTH_ADMIN_TOKEN
	source=$TOKEN_FILE
fi

cat <<INFO
Web console: $CONSOLE_URL
Admin token: $ACCESS_AUTH_ADMIN_TOKEN  (from $source)
CLI:         $CADDY access-auth keys list   (talks to the admin endpoint, localhost:2019)

INFO
exec "$CADDY" run --config "$CADDYFILE" --adapter caddyfile
