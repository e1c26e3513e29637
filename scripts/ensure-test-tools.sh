#!/usr/bin/env bash
# Installs what the tests need when it is missing, so a fresh machine can run `make test`.
set -euo pipefail

need_apt=()
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || need_apt+=(redis-tools)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
# The web console's browser test drives headless Chromium (chromedp needs no driver).
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)

if [ ${#need_apt[@]} -gt 0 ]; then
	echo "installing: ${need_apt[*]}"
	if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -qq
	$SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
	# The tests start their own redis-server processes; a packaged service is not needed.
	if command -v systemctl >/dev/null 2>&1; then $SUDO systemctl disable --now redis-server >/dev/null 2>&1 || true; fi
fi

# The interop tests sign requests with the npm package aliyun-api-gateway.
node_dir="$(dirname "$0")/../interop/node"
if [ ! -d "$node_dir/node_modules/aliyun-api-gateway" ]; then
	(cd "$node_dir" && npm ci --no-audit --no-fund)
fi

redis-server --version
