#!/usr/bin/env bash
# Installs what the tests need that a fresh Debian machine lacks (a no-op once it is all there):
# OpenSSH for the interop tests, iproute2 and nftables for the network-namespace tests,
# PostgreSQL and HAProxy for the high-availability tests, Node.js for the identity providers of
# the SSO tests (their npm packages from tests/idp's lockfile), Chromium and its WebDriver for
# the web UI tests, the applications the app-access tests put behind a leaf (Apache with
# mod_auth_openidc, httpbin, Redis) and wrk for their benchmark rows. `make check` and
# `make test` run it.
set -euo pipefail

pkgs=(curl jq openssh-client openssh-server iproute2 nftables procps ca-certificates openssl postgresql haproxy chromium chromium-driver
    apache2 libapache2-mod-auth-openidc python3-httpbin redis-server wrk)
need=()
for p in "${pkgs[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
# kubectl may come from elsewhere too (our machine image has 1.32); Debian's is the fallback.
if ! command -v kubectl >/dev/null 2>&1; then
    need+=(kubernetes-client)
fi
# Node may come from elsewhere than Debian (it does on our build machines): any node and npm do.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    need+=(nodejs npm)
fi

idp_packages() {
    local dir
    dir="$(dirname "$0")/../tests/idp"
    if [ ! -d "$dir/node_modules/oidc-provider" ] || [ ! -d "$dir/node_modules/samlify" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules" ]; then
        echo "installing the test identity providers' npm packages (tests/idp)"
        (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    fi
}

if [ ${#need[@]} -eq 0 ]; then
    idp_packages
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "the tests need these Debian packages: ${need[*]}" >&2
    echo "install them as root: apt-get install ${need[*]}" >&2
    exit 1
fi
echo "installing: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}"
idp_packages
