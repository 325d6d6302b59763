# Helpers the benchmark scripts share (sourced, not run).
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.4f", b - a }'; }
wait_until() { # timeout-seconds command...
    local t="$1"; shift
    local end; end=$(awk -v n="$(now)" -v t="$t" 'BEGIN { printf "%.3f", n + t }')
    while ! "$@" >/dev/null 2>&1; do
        if awk -v n="$(now)" -v e="$end" 'BEGIN { exit !(n > e) }'; then return 1; fi
        sleep 0.1
    done
}
stats() { # "median p99" in ms of the seconds on stdin
    sort -n | awk '{ v[NR] = $1 } END { m = v[int((NR + 1) / 2)]; p = v[int(NR * 0.99 + 0.999)]; printf "%.1f %.1f", m * 1000, p * 1000 }'
}
rss_kib() { awk '/VmRSS/ { print $2 }' "/proc/$1/status"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "-"; else printf "%.2f", a / b }'; }
