#!/usr/bin/env bash
# Installs what the tests need that a fresh Debian machine lacks (a no-op once it is all there):
# OpenSSH for the interop tests, iproute2 and nftables for the network-namespace tests,
# PostgreSQL and HAProxy for the high-availability tests. `make check` and `make test` run it.
set -euo pipefail

pkgs=(curl jq openssh-client openssh-server iproute2 nftables procps ca-certificates postgresql haproxy)
need=()
for p in "${pkgs[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "the tests need these Debian packages: ${need[*]}" >&2
    echo "install them as root: apt-get install ${need[*]}" >&2
    exit 1
fi
echo "installing: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}"
