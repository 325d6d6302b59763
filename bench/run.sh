#!/usr/bin/env bash
# Benchmarks, side by side with OpenSSH, on loopback, in one run. Writes BENCHMARKS.md.
#
#   ./bench/run.sh                         full run (median of 3 transfers of 1 GiB, 30 connects,
#                                          N = 1 100 1000; 256 MiB per transport-choice row)
#   BENCH_MB=256 BENCH_XFERS=1 BENCH_RUNS=10 BENCH_SCALE="1 100" BENCH_LEVER_MB=64 ./bench/run.sh
#                                          a quicker run
#
# Paths compared:  (a) ssh direct to sshd        (b) ssh -J jump1,jump2 (stand-ins for root and
# leaf proxies)    (c) tsh ssh to a node of the same cluster    (d) tsh ssh --cluster=leaf to a
# leaf node through the reverse tunnel. Needs root (sshd) and installs openssh-server if missing.
set -Eeuo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="$REPO/target/release"
MB="${BENCH_MB:-1024}"
RUNS="${BENCH_RUNS:-30}"
XFERS="${BENCH_XFERS:-3}"
SCALE="${BENCH_SCALE:-1 100 1000}"
W="$(mktemp -d /tmp/tp-bench.XXXXXX)"
PIDS=()
log() { printf '==> %s\n' "$*" >&2; }
cleanup() {
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
    sleep 0.5
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true; done
    [ -n "${BENCH_KEEP:-}" ] || rm -rf "$W"
}
trap cleanup EXIT
trap 'echo "bench/run.sh: failed at line $LINENO: $BASH_COMMAND (work dir $W; BENCH_KEEP=1 keeps it)" >&2' ERR

if [ "$(id -u)" != 0 ]; then echo "run as root (sshd needs it)" >&2; exit 1; fi
missing=()
for c in sshd:openssh-server ssh:openssh-client jq:jq curl:curl; do
    command -v "${c%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${c%%:*}" ] || missing+=("${c##*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

log "building release binaries"
cargo build --release --bins --manifest-path "$REPO/Cargo.toml" >"$W/build.log" 2>&1 || { tail "$W/build.log"; exit 1; }
export PATH="$BIN:$PATH"

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }
wait_until() { # timeout-seconds command...
    local t="$1"; shift
    local end; end=$(awk -v n="$(now)" -v t="$t" 'BEGIN { printf "%.3f", n + t }')
    while ! "$@" >/dev/null 2>&1; do
        if awk -v n="$(now)" -v e="$end" 'BEGIN { exit !(n > e) }'; then return 1; fi
        sleep 0.1
    done
}
stats() { # prints "median p90" in ms of the numbers (seconds) on stdin
    sort -n | awk '{ v[NR] = $1 } END { m = v[int((NR + 1) / 2)]; p = v[int(NR * 0.9 + 0.999)]; printf "%.1f %.1f", m * 1000, p * 1000 }'
}
rss_kib() { awk '/VmRSS/ { print $2 }' "/proc/$1/status"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

# ----------------------------------------------------------------- OpenSSH
log "starting OpenSSH sshd x3"
mkdir -p /run/sshd
ssh-keygen -q -t ed25519 -N '' -f "$W/hostkey"
ssh-keygen -q -t ed25519 -N '' -f "$W/userkey"
cp "$W/userkey.pub" "$W/authorized_keys"
for i in 0 1 2; do
    cat >"$W/sshd$i.conf" <<CONF
Port 222$i
ListenAddress 127.0.0.2$i
HostKey $W/hostkey
AuthorizedKeysFile $W/authorized_keys
PidFile $W/sshd$i.pid
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
AllowTcpForwarding yes
LogLevel ERROR
CONF
    /usr/sbin/sshd -f "$W/sshd$i.conf" -D -e 2>>"$W/sshd$i.log" &
    PIDS+=($!)
done
cat >"$W/ssh_config" <<CONF
Host *
  User root
  IdentityFile $W/userkey
  IdentitiesOnly yes
  StrictHostKeyChecking no
  UserKnownHostsFile /dev/null
  LogLevel ERROR
  BatchMode yes
Host direct
  HostName 127.0.0.20
  Port 2220
Host jump1
  HostName 127.0.0.21
  Port 2221
Host jump2
  HostName 127.0.0.22
  Port 2222
Host viajumps
  HostName 127.0.0.20
  Port 2220
  ProxyJump jump1,jump2
CONF
SSH=(ssh -F "$W/ssh_config")
wait_until 10 "${SSH[@]}" direct true
wait_until 10 "${SSH[@]}" viajumps true
CIPHER="$("${SSH[@]}" -v direct true 2>&1 | sed -n 's/.*kex: server->client cipher: \([^ ]*\).*/\1/p' | head -1)"

# ----------------------------------------------------------------- Teleport
start_cluster() { # dir name ip keep_alive [env...]
    local d="$1" name="$2" ip="$3" ka="$4"; shift 4
    mkdir -p "$d"
    cat >"$d/teleport.yaml" <<YAML
version: v3
teleport:
  nodename: ${name%%.*}-node
  data_dir: $d/data
auth_service:
  cluster_name: $name
  keep_alive_interval: $ka
  keep_alive_count_max: 3
  # Users sign in with a password on standard input here; a new cluster's default is second_factor: otp.
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
log "starting the root and leaf clusters"
R="$W/root"; L="$W/leaf"
start_cluster "$R" bench-root 127.0.0.30 1s
start_cluster "$L" bench-leaf 127.0.0.31 1s SSL_CERT_FILE="$R/data/web/webca.pem"
RT=(tctl -c "$R/teleport.yaml"); LT=(tctl -c "$L/teleport.yaml")
set_password "$R" 127.0.0.30 "$("${RT[@]}" users add bench --roles=access --logins=root)"
printf 'kind: role\nversion: v5\nmetadata: {name: bench}\nspec:\n  allow:\n    logins: [root]\n    node_labels: {"*": "*"}\n' >"$W/bench-role.yaml"
"${LT[@]}" create "$W/bench-role.yaml" >/dev/null
TOKEN="$("${RT[@]}" tokens add --type=trusted_cluster --ttl=30m --format=text)"
printf 'kind: trusted_cluster\nversion: v2\nmetadata: {name: bench-root}\nspec:\n  enabled: true\n  token: %s\n  web_proxy_addr: 127.0.0.30:3080\n  tunnel_addr: 127.0.0.30:3080\n  role_map: [{remote: access, local: [bench]}]\n' "$TOKEN" >"$W/tc.yaml"
"${LT[@]}" create "$W/tc.yaml" >/dev/null
leaf_online() { wait_until 30 sh -c "${RT[*]} get rc/bench-leaf --format=json | grep -q '\"online\"'"; }
leaf_online
export TELEPORT_HOME="$W/tsh" SSL_CERT_FILE="$R/data/web/webca.pem"
echo bench-password-1 | tsh login --proxy=127.0.0.30:3080 --user=bench >/dev/null
TSH_C=(tsh ssh root@bench-root-node)
TSH_D=(tsh ssh --cluster=bench-leaf root@bench-leaf-node)
"${TSH_C[@]}" true && "${TSH_D[@]}" true

# ----------------------------------------------------------------- throughput and latency
throughput() { # command... : the median MiB/s of $XFERS transfers of ${XFER_MB:-$MB} MiB
    local i t0 secs mb="${XFER_MB:-$MB}"
    for i in $(seq 1 "$XFERS"); do
        t0=$(now)
        head -c "$((mb * 1024 * 1024))" /dev/zero | "$@" 'cat > /dev/null'
        secs=$(elapsed "$t0")
        awk -v mb="$mb" -v s="$secs" 'BEGIN { printf "%.1f\n", mb / s }'
    done | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}
latency() { # command...
    local i t0
    for i in $(seq 1 "$RUNS"); do
        t0=$(now); "$@" true; elapsed "$t0"; echo
    done | stats
}
log "throughput: median of $XFERS x $MB MiB through cat > /dev/null"
TA=$(throughput "${SSH[@]}" direct); log "  (a) $TA MiB/s"
TB=$(throughput "${SSH[@]}" viajumps); log "  (b) $TB MiB/s"
TC=$(throughput "${TSH_C[@]}"); log "  (c) $TC MiB/s"
TD=$(throughput "${TSH_D[@]}"); log "  (d) $TD MiB/s"
log "connect latency: $RUNS runs of '... true'"
read -r LA LA9 <<<"$(latency "${SSH[@]}" direct)"
read -r LB LB9 <<<"$(latency "${SSH[@]}" viajumps)"
read -r LC LC9 <<<"$(latency "${TSH_C[@]}")"
read -r LD LD9 <<<"$(latency "${TSH_D[@]}")"

# ----------------------------------------------------------------- levers
# Each transport choice switched off in turn (shared::tuning's unstable overrides, set for the
# root, the leaf, its node and tsh alike), against a default run measured the same way.
LEVER_MB="${BENCH_LEVER_MB:-256}"
restart_pair() { # env...
    local d p
    for d in "$R" "$L"; do
        p=$(cat "$d/pid"); kill "$p" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    done
    start_cluster "$R" bench-root 127.0.0.30 1s "$@"
    start_cluster "$L" bench-leaf 127.0.0.31 1s SSL_CERT_FILE="$R/data/web/webca.pem" "$@"
    leaf_online
    wait_until 30 env "$@" "${TSH_D[@]}" true
    for _ in 1 2 3; do env "$@" "${TSH_D[@]}" true; done # warm up before measuring
}
LEVER_ROWS=""
lever() { # label env...
    local label="$1" t l l9
    shift
    log "lever: $label"
    restart_pair "$@"
    t=$(export "$@"; XFER_MB="$LEVER_MB" throughput "${TSH_D[@]}")
    read -r l l9 <<<"$(export "$@"; latency "${TSH_D[@]}")"
    log "  $t MiB/s, connect median $l ms"
    if [ -z "$LEVER_ROWS" ]; then LT0="$t" LL0="$l"; fi
    LEVER_ROWS+="| $label | $t | $(ratio "$t" "$LT0") | $l | $l9 | $(ratio "$l" "$LL0") |"$'\n'
}
# Every row names a variable: a bare `export` in lever() would print the whole environment.
lever "defaults (AES-GCM first, 2 MiB windows, TCP_NODELAY)" TELEPORT_UNSTABLE_TCP_NODELAY=true
lever "ChaCha20 first (OpenSSH's order)" TELEPORT_UNSTABLE_SSH_CIPHER_ORDER=chacha20
lever "64 KiB channel windows" TELEPORT_UNSTABLE_SSH_WINDOW=65536
lever "TCP_NODELAY off" TELEPORT_UNSTABLE_TCP_NODELAY=false
restart_pair

# ----------------------------------------------------------------- offline detection
log "offline detection (keep_alive_interval 1s x 3)"
kill -9 "$(cat "$L/pid")"
T0=$(now)
wait_until 30 sh -c "${RT[*]} get rc/bench-leaf --format=json | grep -q '\"offline\"'"
OFFLINE=$(elapsed "$T0")
log "  offline after ${OFFLINE}s"

# ----------------------------------------------------------------- scale
SCALE_ROWS=""
n=0
for N in $SCALE; do
    n=$((n + 1))
    S="$W/scale$N"
    IP="127.0.0.$((40 + n))"
    log "scale: root with $N simulated leaves on $IP"
    start_cluster "$S" "scale$N-root" "$IP" 30s
    ST=(tctl -c "$S/teleport.yaml")
    sleep 2
    PID=$(cat "$S/pid")
    BASE=$(rss_kib "$PID")
    TOK="$("${ST[@]}" tokens add --type=trusted_cluster --ttl=30m --format=text)"
    T0=$(now)
    tp-leafsim --root="$IP:3080" --root-ca="$S/data/web/webca.pem" --token="$TOK" --count="$N" --prefix="s$N" --keep-alive=30s >"$S/sim.log" 2>&1 &
    SIM=$!
    PIDS+=($SIM)
    online() { "${ST[@]}" get rc --format=json | jq '[.[] | select(.status.connection == "online")] | length'; }
    wait_until 600 sh -c "[ \"\$(${ST[*]} get rc --format=json | jq '[.[] | select(.status.connection == \"online\")] | length')\" -ge $N ]"
    CONNECT=$(elapsed "$T0")
    sleep 3
    RSS=$(rss_kib "$PID")
    PER=$(awk -v r="$RSS" -v b="$BASE" -v n="$N" 'BEGIN { printf "%.1f", (r - b) / n }')
    set_password "$S" "$IP" "$("${ST[@]}" users add u --roles=access --logins=root)"
    export TELEPORT_HOME="$S/tsh" SSL_CERT_FILE="$S/data/web/webca.pem"
    echo bench-password-1 | tsh login --proxy="$IP:3080" --user=u >/dev/null
    CL=$(for i in 1 2 3 4 5; do t0=$(now); tsh clusters >/dev/null; elapsed "$t0"; echo; done | stats | cut -d' ' -f1)
    GR=$(for i in 1 2 3 4 5; do t0=$(now); "${ST[@]}" get rc >/dev/null; elapsed "$t0"; echo; done | stats | cut -d' ' -f1)
    # Restart the root; time until every leaf is online again.
    kill "$PID"; while kill -0 "$PID" 2>/dev/null; do sleep 0.1; done
    T0=$(now)
    teleport start -c "$S/teleport.yaml" >>"$S/teleport.log" 2>&1 &
    PID=$!; PIDS+=($PID); echo "$PID" >"$S/pid"
    wait_until 30 curl -sf --cacert "$S/data/web/webca.pem" "https://$IP:3080/webapi/ping"
    sleep 1
    wait_until 600 sh -c "[ \"\$(${ST[*]} get rc --format=json | jq '[.[] | select(.status.connection == \"online\")] | length')\" -ge $N ]"
    BACK=$(elapsed "$T0")
    log "  N=$N: connect ${CONNECT}s, ${PER} KiB/tunnel, tsh clusters ${CL}ms, tctl get rc ${GR}ms, all online ${BACK}s after restart"
    SCALE_ROWS+="| $N | $CONNECT | $PER | $CL | $GR | $BACK |"$'\n'
    kill "$SIM" "$PID" 2>/dev/null || true
    sleep 1
done

# ----------------------------------------------------------------- report
CPU="$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)"
AES="$(grep -qw aes /proc/cpuinfo && echo yes || echo no)"
OSSH="$(ssh -V 2>&1)"
TABLE="| path | MiB/s | × OpenSSH | connect median ms | p90 ms | × OpenSSH (median) |
|---|---|---|---|---|---|
| (a) OpenSSH direct | $TA | 1.00 | $LA | $LA9 | 1.00 |
| (b) OpenSSH -J jump1,jump2 | $TB | 1.00 | $LB | $LB9 | 1.00 |
| (c) tsh ssh, same cluster | $TC | $(ratio "$TC" "$TA") vs (a) | $LC | $LC9 | $(ratio "$LC" "$LA") vs (a) |
| (d) tsh ssh --cluster=leaf | $TD | $(ratio "$TD" "$TB") vs (b) | $LD | $LD9 | $(ratio "$LD" "$LB") vs (b) |"
LEVER_TABLE="| setting (every hop of path (d)) | MiB/s | × defaults | connect median ms | p90 ms | × defaults (median) |
|---|---|---|---|---|---|
$LEVER_ROWS"
SCALE_TABLE="| leaves N | connect all (s) | root RSS per tunnel (KiB) | tsh clusters (ms, median of 5) | tctl get rc (ms, median of 5) | all online after root restart (s) |
|---|---|---|---|---|---|
$SCALE_ROWS"
echo
echo "$TABLE"
echo
echo "$LEVER_TABLE"
echo "$SCALE_TABLE"
echo "offline detected after ${OFFLINE}s (keep_alive_interval 1s × keep_alive_count_max 3)"

{
    cat <<MD
# Benchmarks

Generated by \`./bench/run.sh\` on $(date -u +%Y-%m-%d) — median of $XFERS transfers of $MB MiB, $RUNS connects per path,
scale N = $SCALE. Everything on loopback on one machine.

- Machine: $(nproc) cores, $CPU (AES-NI: $AES), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM
- $(teleport version)
- $OSSH; OpenSSH negotiated cipher: ${CIPHER:-unknown}; tsh prefers aes256-gcm@openssh.com

## Throughput and connect latency

$TABLE

(a) and (b) are the OpenSSH baselines: (c) is compared with (a), (d) with (b) (two hops, like the
root and leaf proxies). Latency is process start to exit of \`... true\`, including key loading
and every handshake.

## What each transport choice buys

Path (d) again, with one choice at a time switched off on every hop (root, leaf, leaf node and
tsh) through \`shared::tuning\`'s unstable overrides; the root and leaf are restarted for each row,
the defaults row included, and warmed up with three connections. Median of $XFERS transfers of
$LEVER_MB MiB, $RUNS connects.

$LEVER_TABLE
## Scale: one root, N leaf clusters

Leaves are simulated by \`tp-leafsim\`: each has its own name and CA, does the real handshake and
keeps a real tunnel with heartbeats (30s).

$SCALE_TABLE

## Offline detection

A leaf killed with \`kill -9\` was shown offline on the root after **${OFFLINE}s**
(keep_alive_interval 1s × keep_alive_count_max 3).

MD
    # The storage comparison and the tunnels of a root of two processes come from
    # ./bench/ha.sh and ./bench/ha-tunnels.sh (their own runs, kept between runs).
    for f in ha.md ha-tunnels.md; do
        if [ -f "$REPO/bench/$f" ]; then cat "$REPO/bench/$f"; echo; fi
    done
    cat "$REPO/bench/history.md"
} >"$REPO/BENCHMARKS.md"
log "wrote BENCHMARKS.md"
