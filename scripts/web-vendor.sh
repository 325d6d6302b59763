#!/usr/bin/env bash
# Copies the web UI's pinned browser libraries (web/package-lock.json) into server/web/vendor,
# which is committed: `cargo build` embeds those files and never needs Node. Run it after
# changing web/package.json; `scripts/web-vendor.sh --check` fails if the committed copies
# differ from what the lockfile installs.
set -euo pipefail
cd "$(dirname "$0")/.."
(cd web && npm ci --no-audit --no-fund --loglevel=error)
out=server/web/vendor
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp web/node_modules/@xterm/xterm/lib/xterm.js "$tmp/xterm.js"
cp web/node_modules/@xterm/xterm/css/xterm.css "$tmp/xterm.css"
cp web/node_modules/@xterm/xterm/LICENSE "$tmp/xterm.LICENSE"
cp web/node_modules/@xterm/addon-fit/lib/addon-fit.js "$tmp/addon-fit.js"
cp web/node_modules/@xterm/addon-fit/LICENSE "$tmp/addon-fit.LICENSE"
# The built files end with a source map reference we do not serve.
sed -i '/^\/\/# sourceMappingURL=/d' "$tmp/xterm.js" "$tmp/addon-fit.js"
if [ "${1:-}" = "--check" ]; then
    diff -r "$tmp" "$out" && echo "server/web/vendor matches web/package-lock.json"
    exit
fi
mkdir -p "$out"
cp "$tmp"/* "$out"/
echo "copied into $out"
