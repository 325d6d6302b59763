#!/usr/bin/env bash
# The server crate's import picture: every `crate::<module>` path (comments and test modules
# left out) from one top-level room to another, and the ones that point up (from a lower floor
# to a higher one). Floors, top first, as docs/architecture.md draws them; a room not listed
# counts as floor 0.
#   scripts/layers.sh [DIR]        (default server/src)     scripts/layers.sh --up   (only upward arrows)
set -euo pipefail
cd "$(dirname "$0")/.."
only_up=0
dir=server/src
for a in "$@"; do
    case "$a" in
        --up) only_up=1 ;;
        *) dir=$a ;;
    esac
done
floor() {
    # ssh/ is plumbing (server config, host credentials, the vouch) under the tunnel and the
    # proxy; diag serves /metrics of everything, so it sits with the listeners.
    case "$1" in
        cli) echo 13 ;; process) echo 12 ;; web | api) echo 11 ;; listener | diag) echo 10 ;;
        proxy | node | access) echo 9 ;; tunnel | proxies) echo 8 ;; ssh | tls) echo 7 ;;
        config | authz | sso) echo 6 ;; auth) echo 5 ;; follow | services | audit) echo 4 ;; storage) echo 3 ;;
        shutdown | limits | live | throttle | gate) echo 2 ;; *) echo 0 ;;
    esac
}
arrows=$(cd "$dir" && for f in $(find . -name '*.rs'); do
    m=${f#./}; m=${m%%/*}; m=${m%.rs}
    [ "$m" = lib ] || [ "$m" = bin ] && continue
    # Test modules may reach anywhere; count what the code itself imports.
    { sed '/^#\[cfg(test)\]/,$d; /^[[:space:]]*\/\//d' "$f" | grep -o 'crate::[a-z_]*' || true; } | sort -u | sed "s/crate:://;/^$m\$/d;s/^/$m /"
done | sort -u)
up=0
total=0
while read -r from to; do
    [ -n "$from" ] || continue
    total=$((total + 1))
    ff=$(floor "$from"); ft=$(floor "$to")
    if [ "$ft" -gt "$ff" ]; then
        up=$((up + 1)); echo "UP   $from ($ff) -> $to ($ft)"
    elif [ "$only_up" = 0 ]; then
        echo "     $from -> $to"
    fi
done <<< "$arrows"
echo "room-to-room arrows: $total; pointing up: $up"
