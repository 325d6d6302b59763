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
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; } # of the numbers on stdin
rss_kib() { awk '/VmRSS/ { print $2 }' "/proc/$1/status"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "-"; else printf "%.2f", a / b }'; }
plus() { awk -v a="$1" -v b="$2" -v d="${3:-3}" 'BEGIN { printf("+%." d "f ms", a - b) }'; } # a − b ms, d decimals (3)

# A cluster of one process (auth, proxy, node) on $ip, its web port 3080, node 3022, diag 3000;
# keep_alive "" leaves the default. Its pid in $d/pid and in PIDS (the caller's cleanup kills them).
start_cluster() { # dir name ip keep_alive [env...]
    local d="$1" name="$2" ip="$3" ka="$4"; shift 4
    mkdir -p "$d"
    cat >"$d/teleport.yaml" <<YAML
version: v3
teleport:
  nodename: ${name%%.*}-node
  data_dir: $d/data
  diag_addr: $ip:3000
auth_service:
  cluster_name: $name
${ka:+  keep_alive_interval: $ka
  keep_alive_count_max: 3
}  # Users sign in with a password on standard input here; a new cluster's default is second_factor: otp.
  authentication:
    type: local
    second_factor: off
ssh_service:
  enabled: yes
  listen_addr: $ip:3022
proxy_service:
  web_listen_addr: $ip:3080
  public_addr: $ip:3080
YAML
    [ -z "${CLUSTER_EXTRA:-}" ] || printf '%s\n' "$CLUSTER_EXTRA" >>"$d/teleport.yaml"
    env "$@" teleport start -c "$d/teleport.yaml" >"$d/teleport.log" 2>&1 &
    PIDS+=($!)
    echo $! >"$d/pid"
    wait_until 30 test -f "$d/data/web/webca.pem"
    wait_until 30 curl -sf --cacert "$d/data/web/webca.pem" "https://$ip:3080/webapi/ping"
}
set_password() { # dir ip invite-output
    local url token
    url="$(printf '%s\n' "$3" | grep -m1 '^https://')"
    token="${url##*/}"
    curl -sf --cacert "$1/data/web/webca.pem" -X PUT "https://$2:3080/webapi/users/password/token" -d "{\"token\":\"$token\",\"password\":\"bench-password-1\"}" >/dev/null
}
