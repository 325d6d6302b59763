#!/usr/bin/env bash
# One root process, N leaf clusters: connecting, idling, the user's path, a restart. Writes
# bench/scale.md (bench/run.sh runs it and puts it in BENCHMARKS.md).
#
#   ./bench/scale.sh                                  N = 1 1000 10000 50000
#   BENCH_SCALE="1 1000" ./bench/scale.sh             a quicker run
#   BENCH_BIN=/work/main/target/release ./bench/scale.sh    binaries from there, not built
#
# Each row is a fresh root with default settings (keep_alive_interval 30s, connection limits
# from the descriptor limit) and one real leaf (its own process and node, trusted with a role
# map) that the user's rows go to; the other N-1 leaves are simulated by tp-leafsim (the real
# trust handshake and a real tunnel with heartbeats; nothing served through it). Needs root: the
# descriptor limit is raised to 1,048,576 (a root holds one per tunnel; tp-leafsim one per leaf).
set -Eeuo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${BENCH_BIN:-$REPO/target/release}"
SCALE="${BENCH_SCALE:-1 1000 10000 50000}"
IDLE_SECS="${BENCH_IDLE_SECS:-30}"
W="$(mktemp -d /tmp/tp-bench-scale.XXXXXX)"
PIDS=()
log() { printf '==> %s\n' "$*" >&2; }
cleanup() {
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
    sleep 1
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true; done
    [ -n "${BENCH_KEEP:-}" ] || rm -rf "$W"
}
trap cleanup EXIT
trap 'echo "bench/scale.sh: failed at line $LINENO: $BASH_COMMAND (work dir $W; BENCH_KEEP=1 keeps it)" >&2' ERR
if [ "$(id -u)" != 0 ]; then echo "run as root (the descriptor limit is raised)" >&2; exit 1; fi
# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"
HZ=$(getconf CLK_TCK)
CORES=$(nproc)

# The descriptor limit is the one setting changed: teleport raises its soft limit to the hard
# one at start, and sizes max_connections from it.
ulimit -Hn 1048576 2>/dev/null || true
ulimit -n "$(ulimit -Hn)"
FDLIM=$(ulimit -n)
log "file descriptor limit: $FDLIM"
# A root holds a descriptor per tunnel; keep 1,000 for its listeners, storage and the user's rows.
# Where the hard limit cannot be raised (no CAP_SYS_RESOURCE, as in some containers), the rows
# above it are measured at the most it allows, and the report says so.
MAXN=$((FDLIM - 1000)) CAPPED=""
ROWS=""
for N in $SCALE; do
    if [ "$N" -gt "$MAXN" ]; then CAPPED+="$N asked, $MAXN measured; "; N=$MAXN; fi
    ROWS+="$N "
done
SCALE="$ROWS"
[ -z "$CAPPED" ] || log "the descriptor limit $FDLIM (hard) caps the rows: $CAPPED"
if [ -z "${BENCH_BIN:-}" ]; then
    log "building release binaries"
    cargo build --release --bins --manifest-path "$REPO/Cargo.toml" >"$W/build.log" 2>&1 || { tail "$W/build.log"; exit 1; }
fi
export PATH="$BIN:$PATH"

ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
cpu_ms() { awk -v t="$1" -v hz="$HZ" -v n="$2" 'BEGIN { printf "%.2f", t / hz * 1000 / n }'; } # ticks, per n
timed() { # runs command... $TIMED_RUNS times: the median in ms
    local i t0
    for i in $(seq 1 "$TIMED_RUNS"); do t0=$(now); "$@" >/dev/null; elapsed "$t0"; echo; done | median | awk '{ printf "%.1f", $1 * 1000 }'
}
TIMED_RUNS="${BENCH_TIMED_RUNS:-11}"
# Connections the limits refused or cut: "max_startups other" (a refused handshake is retried
# after the agent's backoff; any other reason would be a fault).
refused() {
    curl -sf "http://$1:3000/metrics" | awk '/^teleport_connections_refused_total.reason="max_startups"/ { m += $2; next }
        /^teleport_connections_refused_total/ { o += $2 } END { print m + 0, o + 0 }'
}

CONNECT_ROWS="" USER_ROWS="" RESTART_ROWS=""
n=0
for N in $SCALE; do
    n=$((n + 1))
    S="$W/n$N" IP="127.0.0.$((40 + n))" LIP="127.0.0.$((50 + n))"
    log "N=$N: root on $IP, the real leaf on $LIP, $((N - 1)) simulated"
    start_cluster "$S/root" scale-root "$IP" ""
    start_cluster "$S/leaf" bench-leaf "$LIP" "" SSL_CERT_FILE="$S/root/data/web/webca.pem"
    RT=(tctl -c "$S/root/teleport.yaml") LT=(tctl -c "$S/leaf/teleport.yaml")
    PID=$(cat "$S/root/pid")
    set_password "$S/root" "$IP" "$("${RT[@]}" users add u --roles=access --logins=root)"
    printf 'kind: role\nversion: v5\nmetadata: {name: bench}\nspec:\n  allow:\n    logins: [root]\n    node_labels: {"*": "*"}\n' >"$S/role.yaml"
    "${LT[@]}" create "$S/role.yaml" >/dev/null
    printf 'kind: trusted_cluster\nversion: v2\nmetadata: {name: scale-root}\nspec:\n  enabled: true\n  token: %s\n  web_proxy_addr: %s:3080\n  tunnel_addr: %s:3080\n  role_map: [{remote: access, local: [bench]}]\n' \
        "$("${RT[@]}" tokens add --type=trusted_cluster --ttl=30m --format=text)" "$IP" "$IP" >"$S/tc.yaml"
    "${LT[@]}" create "$S/tc.yaml" >/dev/null
    # Every leaf online: the root's tunnel gauge first (cheap to poll), then once `tctl get rc`
    # (polling a listing of 50,000 leaves would itself be much of the CPU being measured).
    all_online() { # count
        wait_until 900 sh -c "curl -sf http://$IP:3000/metrics | awk '\$1 == \"teleport_reverse_tunnels{kind=\\\"cluster\\\"}\" { ok = (\$2 >= $1) } END { exit !ok }'"
        wait_until 120 sh -c "[ \"\$(${RT[*]} get rc --format=json | jq '[.[] | select(.status.connection == \"online\")] | length')\" -ge $1 ]"
    }
    all_online 1
    export TELEPORT_HOME="$S/tsh" SSL_CERT_FILE="$S/root/data/web/webca.pem"
    login() { echo bench-password-1 | tsh login --proxy="$IP:3080" --user=u; }
    login >/dev/null
    tsh ssh --cluster=bench-leaf root@bench-leaf-node true
    sleep 2
    BASE=$(rss_kib "$PID")

    CONNECT="-" PERCONN="-" PER="-"
    if [ "$N" -gt 1 ]; then
        TOK="$("${RT[@]}" tokens add --type=trusted_cluster --ttl=60m --format=text)"
        C0=$(ticks "$PID") T0=$(now)
        tp-leafsim --root="$IP:3080" --root-ca="$S/root/data/web/webca.pem" --token="$TOK" --count="$((N - 1))" --prefix="s" >"$S/sim.log" 2>&1 &
        PIDS+=($!)
        all_online "$N"
        CONNECT=$(elapsed "$T0")
        PERCONN=$(cpu_ms "$(($(ticks "$PID") - C0))" "$((N - 1))")
        sleep 3
        PER=$(awk -v r="$(rss_kib "$PID")" -v b="$BASE" -v n="$((N - 1))" 'BEGIN { printf "%.1f", (r - b) / n }')
    fi
    # Idle: every tunnel up, nobody using them; heartbeats only (each leaf one per 30 s). After
    # one heartbeat interval, so that the first round (each leaf's first presence row and the
    # CAs it is sent) is not counted as idleness.
    sleep 35
    I0=$(ticks "$PID"); sleep "$IDLE_SECS"
    IDLE=$(awk -v a="$I0" -v b="$(ticks "$PID")" -v hz="$HZ" -v s="$IDLE_SECS" 'BEGIN { printf "%.1f", (b - a) / hz / s * 100 }')
    RSS=$(awk -v r="$(rss_kib "$PID")" 'BEGIN { printf "%.0f", r / 1024 }')
    log "  connect ${CONNECT}s (${PERCONN} ms CPU each), ${PER} KiB per tunnel, RSS ${RSS} MiB, idle ${IDLE}% of a core"

    # The user's path: nothing on it may grow with the number of leaves; listings may, linearly.
    LOGIN=$(timed login)
    SSH=$(timed tsh ssh --cluster=bench-leaf root@bench-leaf-node true)
    CL=$(timed tsh clusters)
    GR=$(timed "${RT[@]}" get rc)
    log "  tsh login ${LOGIN} ms, tsh ssh --cluster ${SSH} ms, tsh clusters ${CL} ms, tctl get rc ${GR} ms"

    # Restart: every leaf redials (its own backoff and jitter); the root's CPU until all are back.
    read -r R0 R0X <<<"$(refused "$IP")"
    kill "$PID"; while kill -0 "$PID" 2>/dev/null; do sleep 0.1; done
    T0=$(now)
    teleport start -c "$S/root/teleport.yaml" >>"$S/root/teleport.log" 2>&1 &
    PID=$!; PIDS+=($PID)
    wait_until 60 curl -sf --cacert "$S/root/data/web/webca.pem" "https://$IP:3080/webapi/ping"
    all_online "$N"
    BACK=$(elapsed "$T0")
    RECPU=$(ticks "$PID")
    PERREC=$(cpu_ms "$RECPU" "$N")
    # The restart's floor: its CPU spread over every core. A collapse would show as a time far
    # above it (redials refused and retried after backoff, work thrown away).
    FLOOR=$(awk -v t="$RECPU" -v hz="$HZ" -v c="$CORES" 'BEGIN { printf "%.1f", t / hz / c }')
    read -r REF REFX <<<"$(refused "$IP")"
    log "  all online ${BACK}s after a restart; ${PERREC} ms CPU per reconnect (floor ${FLOOR}s on $CORES cores); refused at connect ${R0} (max_startups) + ${R0X}, at restart ${REF} + ${REFX}"

    if [ -z "$USER_ROWS" ]; then L0="$LOGIN" S0="$SSH" CL0="$CL" GR0="$GR" N0="$N" CLP="$CL" GRP="$GR"; fi
    per_row() { [ "$N" = "$N0" ] && echo "-" || awk -v a="$1" -v b="$2" -v n="$N" -v m="$N0" 'BEGIN { printf "%.1f", (a - b) * 1000 / (n - m) }'; }
    CONNECT_ROWS+="| $N | $CONNECT | $PERCONN | $PER | $RSS | $IDLE | $R0 / $R0X |"$'\n'
    USER_ROWS+="| $N | $LOGIN ($(ratio "$LOGIN" "$L0")×) | $SSH ($(ratio "$SSH" "$S0")×) | $CL ($(ratio "$CL" "$CLP")×) | $(per_row "$CL" "$CL0") | $GR ($(ratio "$GR" "$GRP")×) | $(per_row "$GR" "$GR0") |"$'\n'
    RESTART_ROWS+="| $N | $BACK | $(awk -v n="$N" -v b="$BACK" 'BEGIN { printf "%.0f", n / b }') | $PERREC | $FLOOR | $REF / $REFX |"$'\n'
    CLP="$CL" GRP="$GR"
    for p in $(jobs -p); do kill "$p" 2>/dev/null || true; done
    kill "$PID" "$(cat "$S/leaf/pid")" 2>/dev/null || true
    wait 2>/dev/null || true
done

NOTE=""
if [ -n "$CAPPED" ]; then
    NOTE=" The descriptor limit here is $FDLIM and cannot be raised (the hard limit needs
CAP_SYS_RESOURCE, which this machine's root does not have), so: ${CAPPED%; }."
fi
{
    cat <<MD
## Scale: one root, N leaf clusters

Generated by \`./bench/scale.sh\` on $(date -u +%Y-%m-%d), $CORES cores. Each row is a fresh root with
default settings but the descriptor limit (1,048,576), one real leaf (its own process and node,
trusted with a role map: the user's rows go to it) and N-1 leaves simulated by \`tp-leafsim\`
(each its own name and CA, the real trust handshake, a real tunnel with heartbeats every 30 s,
from its own 127.x address).$NOTE

Connecting and idling: the time until \`tctl get rc\` shows all N online; the root's CPU (user +
system) over those connections, per connection (each a trust handshake and a tunnel); its
resident memory per tunnel (growth over the N-1, the handshake's leftovers included); its CPU
over ${IDLE_SECS} s with every tunnel up and no user, starting 35 s after the last connected; the handshakes the limits refused meanwhile
(\`teleport_connections_refused_total\`: beyond \`max_startups\`, 3,750 in their handshake at
once, which the agents retry after their backoff / for any other reason).

| leaves N | connect all (s) | root CPU per connect (ms) | root RSS per tunnel (KiB) | root RSS (MiB) | root CPU idle (% of a core) | refused: max_startups / other |
|---|---|---|---|---|---|---|
$CONNECT_ROWS
What bounds these: a connect is a trust handshake (the leaf's CA stored, the root's signed)
and an SSH handshake for the tunnel, a millisecond or two of CPU each at the root, on two cores
shared with tp-leafsim's side of the same work; beyond 3,750 handshakes in flight
\`max_startups\` refuses and the agent retries after its backoff. Memory per tunnel is its SSH
session (buffers, cipher state, the heartbeat channel) and three tasks. Idle CPU is, per leaf
every 30 s, a ping read and a pong written (on loopback the receiver's TCP work is charged to
the sender) and a presence row in SQLite (written every 500 ms in one transaction): in the
idle profile at 19,000 leaves, socket sends about a sixth, SQLite a quarter, the runtime's
parking and waking most of the rest.

The user's path, median of $TIMED_RUNS runs each, whole process: \`tsh login\` (password), \`tsh ssh
--cluster=bench-leaf\` running \`true\` (× the first row: nothing on these may grow with N);
\`tsh clusters\` and \`tctl get rc\` list every leaf (× the row above, and the cost of each row
beyond the first N).

| leaves N | tsh login (ms) | tsh ssh --cluster connect (ms) | tsh clusters (ms) | µs per leaf | tctl get rc (ms) | µs per leaf |
|---|---|---|---|---|---|---|
$USER_ROWS
What bounds these: \`tsh login\` reads the user, the roles and this cluster's CA (a leaf's CA
comes later, when a leaf is first used); \`tsh ssh --cluster\` reads one leaf's records and
its tunnel; neither lists leaves. The listings build and parse about 250 bytes of JSON per leaf
(the client's parse is most of it) and grow with N; their variation is the idle load above.

A restart (SIGTERM, then start): the time until all N are online again; the new process's CPU
over it, per reconnect; that CPU spread over $CORES cores (the floor of the restart time: a
collapse, redials refused and retried, would show as a time far above it); connections the
limits refused, as above.

| leaves N | all online after a restart (s) | reconnects per s | root CPU per reconnect (ms) | its CPU ÷ cores (s) | refused: max_startups / other |
|---|---|---|---|---|---|
$RESTART_ROWS
What bounds these: the handshakes, at the CPU per reconnect shown, on cores shared with the
leaves' side; the leaves redial within a second or two of the restart, so \`max_startups\`
refuses the excess and those retry after a jittered backoff, which is the time above the floor.
MD
} >"$REPO/bench/scale.md"
cat "$REPO/bench/scale.md"
log "wrote bench/scale.md"
