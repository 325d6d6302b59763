#!/usr/bin/env bash
# The server crate's import picture: every `use crate::<module>` arrow between its top-level
# rooms, and the ones that point up (from a lower floor to a higher one). Floors, top first, as
# docs/architecture.md draws them; a room not listed counts as floor 0 (it is reported).
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
    case "$1" in
        cli) echo 12 ;; process) echo 11 ;; web | api) echo 10 ;; listener) echo 9 ;;
        proxy | node | access) echo 8 ;; ssh | diag | tls) echo 7 ;; tunnel | proxies) echo 6 ;;
        config | authz | sso) echo 5 ;; auth) echo 4 ;; follow | services) echo 3 ;; storage) echo 2 ;;
        shutdown | limits | audit | live | throttle | gate) echo 1 ;; *) echo 0 ;;
    esac
}
arrows=$(cd "$dir" && for f in $(find . -name '*.rs'); do
    m=${f#./}; m=${m%%/*}; m=${m%.rs}
    [ "$m" = lib ] || [ "$m" = bin ] && continue
    # Test modules may reach anywhere; count what the code itself imports.
    sed '/^#\[cfg(test)\]/,$d' "$f" | grep -o 'crate::[a-z_]*' | sort -u | sed "s/crate:://;/^$m\$/d;s/^/$m /"
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
