#!/usr/bin/env bash
# Tunnels of a root of two processes (one PostgreSQL database, HAProxy in front), in one run.
# Writes bench/ha-tunnels.md.
#
#   ./bench/ha-tunnels.sh                      10,000 simulated leaves (20,000 tunnels)
#   HA_LEAVES=200 HA_RUNS=10 HA_MB=64 ./bench/ha-tunnels.sh     a quicker run
#   BENCH_BIN=/work/main/target/release ./bench/ha-tunnels.sh   binaries from there, not built
#
# Rows: RSS per tunnel of each root process; time until every leaf holds a tunnel to both
# processes (tp-leafsim's first dial, then discovery); the idle CPU of each process and of
# PostgreSQL; `tsh ssh` through HAProxy in a loop while each process in turn stops and starts
# (failed probes); time until all are back after both processes restart, with the connections
# per second they took (the herd, or not); and,
# for one real leaf that reaches only root-b, `tsh ssh` connect latency and throughput through
# root-b (direct) and through root-a (forwarded to root-b by peer forwarding), side by side.
# Needs root (PostgreSQL runs as the postgres user) and Debian's postgresql and haproxy
# (./scripts/deps.sh installs them).
set -Eeuo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${BENCH_BIN:-$REPO/target/release}"
LEAVES="${HA_LEAVES:-10000}"
RUNS="${HA_RUNS:-30}"
MB="${HA_MB:-256}"
XFERS="${HA_XFERS:-3}"
W="$(mktemp -d /tmp/tp-bench-hat.XXXXXX)"
chmod 755 "$W"
PIDS=()
PGBIN="$(pg_config --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)"
PG_IP=127.0.0.80 A_IP=127.0.0.81 B_IP=127.0.0.82 LB_IP=127.0.0.83 LEAF_IP=127.0.0.84 LEAF2_IP=127.0.0.85
IDLE_SECS="${HA_IDLE_SECS:-30}"
log() { printf '==> %s\n' "$*" >&2; }
cleanup() {
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
    sleep 0.5
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true; done
    [ -d "$W/pg/data" ] && runuser -u postgres -- "$PGBIN/pg_ctl" -D "$W/pg/data" -m immediate -w stop >/dev/null 2>&1 || true
    [ -n "${BENCH_KEEP:-}" ] || rm -rf "$W"
}
trap cleanup EXIT
trap 'echo "bench/ha-tunnels.sh: failed at line $LINENO: $BASH_COMMAND (work dir $W; BENCH_KEEP=1 keeps it)" >&2' ERR
if [ "$(id -u)" != 0 ]; then echo "run as root" >&2; exit 1; fi
"$REPO/scripts/deps.sh"
# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"

if [ -z "${BENCH_BIN:-}" ]; then
    log "building release binaries"
    cargo build --release --bins --manifest-path "$REPO/Cargo.toml" >"$W/build.log" 2>&1 || { tail "$W/build.log"; exit 1; }
fi
export PATH="$BIN:$PATH"
HZ=$(getconf CLK_TCK)
ulimit -Hn 1048576 2>/dev/null || true
ulimit -n "$(ulimit -Hn)"
FDLIM=$(ulimit -n)
# Each simulated leaf holds two tunnels, each a descriptor in tp-leafsim: one tp-leafsim per this
# many leaves. Through HAProxy, each first dial is two descriptors there as well; where the limit
# cannot hold that (it cannot be raised without CAP_SYS_RESOURCE), the first dials go to the
# processes themselves, half to each, and the report says so.
PER_SIM=$(( (FDLIM - 1000) / 2 ))
SEED_DIRECT=""
if [ $((2 * LEAVES + 1000)) -gt "$FDLIM" ]; then SEED_DIRECT=1; fi
log "descriptor limit $FDLIM: at most $PER_SIM leaves per tp-leafsim${SEED_DIRECT:+; first dials straight to the processes}"

log "starting PostgreSQL and HAProxy"
mkdir -p "$W/pg"; chown postgres "$W/pg"
runuser -u postgres -- "$PGBIN/initdb" -D "$W/pg/data" -A trust -U postgres -E UTF8 --locale=C.UTF-8 >"$W/pg/initdb.log"
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$W/pg/data" -l "$W/pg/server.log" -w -o \
    "-c listen_addresses=$PG_IP -p 5432 -k $W/pg -c wal_level=logical -c max_replication_slots=10 -c max_connections=200" start >/dev/null
# The configuration docs/high-availability.md shows and the tests generate.
cat >"$W/haproxy.cfg" <<CFG
global
    maxconn 8000
    stats socket $W/haproxy.sock mode 600 level admin

defaults
    mode tcp
    timeout connect 2s
    timeout client 1h
    timeout server 1h
    retries 2
    option redispatch

frontend teleport
    bind $LB_IP:443
    default_backend teleport_proxies

backend teleport_proxies
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter 500ms fall 2 rise 2
    server root-a $A_IP:3080 check addr $A_IP port 3000
    server root-b $B_IP:3080 check addr $B_IP port 3000
CFG
haproxy -db -f "$W/haproxy.cfg" >"$W/haproxy.log" 2>&1 &
PIDS+=($!)

start_proc() { # name ip
    local d="$W/$1"
    mkdir -p "$d"
    cat >"$d/teleport.yaml" <<YAML
version: v3
teleport:
  nodename: $1
  data_dir: $d/data
  diag_addr: $2:3000
  storage:
    type: postgresql
    conn_string: postgresql://postgres@$PG_IP:5432/hat_bench?sslmode=disable
auth_service:
  cluster_name: hat-bench.example.com
  # Users sign in with a password on standard input here; a new cluster's default is second_factor: otp.
  authentication:
    type: local
    second_factor: off
ssh_service:
  enabled: no
proxy_service:
  web_listen_addr: $2:3080
  public_addr: $LB_IP:443
YAML
    teleport start -c "$d/teleport.yaml" >>"$d/teleport.log" 2>&1 &
    PIDS+=($!)
    echo $! >"$d/pid"
}
wait_ready() { wait_until 60 curl -sf "http://$1:3000/readyz"; }
stop_proc() { local p; p=$(cat "$W/$1/pid"); kill "$p"; while kill -0 "$p" 2>/dev/null; do sleep 0.05; done; }
metric() { curl -sf "http://$1:3000/metrics" | awk -v m="$2" '$1 == m { print $2 }'; }
T=(tctl -c "$W/root-a/teleport.yaml")
tunnels() { echo $(( $(metric "$A_IP" 'teleport_reverse_tunnels{kind="cluster"}' || echo 0) + $(metric "$B_IP" 'teleport_reverse_tunnels{kind="cluster"}' || echo 0) )); }

start_proc root-a "$A_IP"; wait_ready "$A_IP"
start_proc root-b "$B_IP"; wait_ready "$B_IP"
sleep 3
RSS_A0=$(rss_kib "$(cat "$W/root-a/pid")"); RSS_B0=$(rss_kib "$(cat "$W/root-b/pid")")
CA="$W/root-a/data/web/webca.pem"

log "$LEAVES simulated leaves, first dials $(if [ -n "$SEED_DIRECT" ]; then echo "straight to the processes"; else echo "through HAProxy"; fi)"
TOKEN="$("${T[@]}" tokens add --type=trusted_cluster --ttl=60m --format=text)"
# The handshakes go to root-a itself: through the balancer they would all come from its address,
# and the per-address rate limit of the handshake would serialise them.
T0=$(now)
SIMS=() k=0 off=0
while [ "$off" -lt "$LEAVES" ]; do
    cnt=$(( LEAVES - off < PER_SIM ? LEAVES - off : PER_SIM ))
    seed="$LB_IP:443"
    if [ -n "$SEED_DIRECT" ]; then seed="$A_IP:3080"; [ $((k % 2)) = 1 ] && seed="$B_IP:3080"; fi
    tp-leafsim --root="$A_IP:3080" --tunnel-addr="$seed" --root-ca="$CA" --token="$TOKEN" --count="$cnt" --offset="$off" --prefix=hat >"$W/sim$k.log" 2>&1 &
    SIMS+=($!); PIDS+=($!)
    k=$((k + 1)); off=$((off + cnt))
done
for k in "${!SIMS[@]}"; do
    wait_until 900 sh -c "grep -q 'tunnels started' '$W/sim$k.log' || ! kill -0 ${SIMS[$k]}"
    grep -q 'tunnels started' "$W/sim$k.log" || { log "tp-leafsim failed:"; grep -v '^ ' "$W/sim$k.log" | head -5 >&2; exit 1; }
done
wait_until 900 sh -c "[ \"\$(curl -sf http://$A_IP:3000/metrics | awk '/^teleport_reverse_tunnels.kind=.cluster/ { print \$2 }')\" -ge $LEAVES ] && [ \"\$(curl -sf http://$B_IP:3000/metrics | awk '/^teleport_reverse_tunnels.kind=.cluster/ { print \$2 }')\" -ge $LEAVES ]"
CONVERGE=$(elapsed "$T0")
[ "$(tunnels)" -ge $((2 * LEAVES)) ]
log "  every leaf held both tunnels ${CONVERGE}s after tp-leafsim started (${#SIMS[@]} of them)"
sleep 5
RSS_A1=$(rss_kib "$(cat "$W/root-a/pid")"); RSS_B1=$(rss_kib "$(cat "$W/root-b/pid")")
PER_A=$(awk -v a="$RSS_A0" -v b="$RSS_A1" -v n="$LEAVES" 'BEGIN { printf "%.1f", (b - a) / n }')
PER_B=$(awk -v a="$RSS_B0" -v b="$RSS_B1" -v n="$LEAVES" 'BEGIN { printf "%.1f", (b - a) / n }')
log "  RSS per tunnel: root-a $PER_A KiB, root-b $PER_B KiB"

# Idle: every tunnel up, heartbeats only (30 s, the default), from one heartbeat interval after
# they converged. PostgreSQL's CPU is that of all its processes, with what the postmaster reaped
# from the ones that ended meanwhile.
ticks() { awk '{ print $14 + $15 + $16 + $17 }' "/proc/$1/stat"; }
pg_ticks() { local t=0 p; for p in $(pgrep -u postgres); do t=$((t + $(ticks "$p" 2>/dev/null || echo 0))); done; echo "$t"; }
pct() { awk -v t="$1" -v hz="$HZ" -v s="$IDLE_SECS" 'BEGIN { printf "%.1f", t / hz / s * 100 }'; }
sleep 35
PA=$(cat "$W/root-a/pid"); PB=$(cat "$W/root-b/pid")
a0=$(ticks "$PA"); b0=$(ticks "$PB"); g0=$(pg_ticks)
sleep "$IDLE_SECS"
IDLE_A=$(pct $(($(ticks "$PA") - a0))); IDLE_B=$(pct $(($(ticks "$PB") - b0))); IDLE_PG=$(pct $(($(pg_ticks) - g0)))
log "  idle over ${IDLE_SECS}s: root-a ${IDLE_A}%, root-b ${IDLE_B}%, PostgreSQL ${IDLE_PG}% of a core"

log "failover: tsh ssh through HAProxy in a loop while each process stops and starts"
L2="$W/leaf2"; mkdir -p "$L2"
cat >"$L2/teleport.yaml" <<YAML
version: v3
teleport:
  nodename: hat-leaf2-node
  data_dir: $L2/data
auth_service:
  cluster_name: hat-leaf2.example.com
ssh_service:
  enabled: yes
  listen_addr: $LEAF2_IP:3022
proxy_service:
  web_listen_addr: $LEAF2_IP:3080
  public_addr: $LEAF2_IP:3080
YAML
SSL_CERT_FILE="$CA" teleport start -c "$L2/teleport.yaml" >"$L2/teleport.log" 2>&1 &
PIDS+=($!)
wait_until 60 curl -sf --cacert "$L2/data/web/webca.pem" "https://$LEAF2_IP:3080/webapi/ping"
L2T=(tctl -c "$L2/teleport.yaml")
printf 'kind: role\nversion: v5\nmetadata: {name: bench}\nspec:\n  allow:\n    logins: [root]\n    node_labels: {"*": "*"}\n' >"$W/role2.yaml"
"${L2T[@]}" create "$W/role2.yaml" >/dev/null
printf 'kind: trusted_cluster\nversion: v2\nmetadata: {name: hat-bench.example.com}\nspec:\n  enabled: true\n  token: %s\n  web_proxy_addr: %s:443\n  tunnel_addr: %s:443\n  role_map: [{remote: access, local: [bench]}]\n' \
    "$("${T[@]}" tokens add --type=trusted_cluster --ttl=30m --format=text)" "$LB_IP" "$LB_IP" >"$W/tc2.yaml"
SSL_CERT_FILE="$CA" "${L2T[@]}" create "$W/tc2.yaml" >/dev/null
both_hold() { # every simulated leaf and leaf2 tunnelled to both processes
    [ "$(metric "$A_IP" 'teleport_reverse_tunnels{kind="cluster"}' || echo 0)" -ge $((LEAVES + 1)) ] &&
        [ "$(metric "$B_IP" 'teleport_reverse_tunnels{kind="cluster"}' || echo 0)" -ge $((LEAVES + 1)) ]
}
wait_until 120 both_hold
invite="$("${T[@]}" users add probe --roles=access --logins=root)"
url="$(printf '%s\n' "$invite" | grep -m1 '^https://')"
curl -sf --cacert "$CA" -X PUT "https://$A_IP:3080/webapi/users/password/token" -d "{\"token\":\"${url##*/}\",\"password\":\"bench-password-1\"}" >/dev/null
export SSL_CERT_FILE="$CA"
echo bench-password-1 | TELEPORT_HOME="$W/tsh-probe" tsh login --proxy="$LB_IP:443" --user=probe >/dev/null
probe() { TELEPORT_HOME="$W/tsh-probe" timeout 30 tsh ssh --cluster=hat-leaf2.example.com root@hat-leaf2-node true; }
probe
(
    while [ ! -f "$W/probe.stop" ]; do
        if probe >/dev/null 2>>"$W/probe.err"; then echo "ok $(date +%T.%N)"; else echo "fail $(date +%T.%N)"; fi
        sleep 0.2
    done
) >"$W/probe.log" &
PROBER=$!; PIDS+=($PROBER)
sleep 3
for who in root-a root-b; do
    ip=$A_IP; [ "$who" = root-b ] && ip=$B_IP
    log "  $who: SIGTERM at $(date +%T.%N)"; stop_proc "$who"; log "  $who: exited at $(date +%T.%N)"; sleep 5
    start_proc "$who" "$ip"; wait_ready "$ip"; log "  $who: started and ready at $(date +%T.%N)"
    wait_until 600 both_hold
    log "  $who: every leaf holds both tunnels again at $(date +%T.%N)"
    sleep 3
done
touch "$W/probe.stop"; wait "$PROBER" 2>/dev/null || true
PROBES_OK=$(grep -c '^ok' "$W/probe.log" || true); PROBES_FAIL=$(grep -c '^fail' "$W/probe.log" || true)
log "  probes: $PROBES_OK ok, $PROBES_FAIL failed"
[ "$PROBES_FAIL" = 0 ] || { log "  failed probes (ended at) and what they said:"; grep '^fail' "$W/probe.log" >&2; sort "$W/probe.err" | uniq -c | sort -rn | head -5 >&2; }

log "restarting both root processes"
stop_proc root-a; stop_proc root-b
T0=$(now)
start_proc root-a "$A_IP"; start_proc root-b "$B_IP"
wait_ready "$A_IP"; wait_ready "$B_IP"
# Connections admitted per second by both processes until every tunnel is back.
PEAK=0; TOTAL=0; prev=0; secs=0
while :; do
    a=$(metric "$A_IP" teleport_connections_admitted_total || echo 0); b=$(metric "$B_IP" teleport_connections_admitted_total || echo 0)
    cur=$(( ${a:-0} + ${b:-0} ))
    d=$(( cur - prev )); prev=$cur
    [ "$d" -gt "$PEAK" ] && PEAK=$d
    secs=$((secs + 1))
    n=$(tunnels 2>/dev/null || echo 0)
    if [ "${n:-0}" -ge $((2 * LEAVES)) ]; then break; fi
    if [ "$secs" -gt 300 ]; then log "  not all back after 300s ($n)"; break; fi
    sleep 1
done
BACK=$(elapsed "$T0"); TOTAL=$prev
REG=$(( $(metric "$A_IP" teleport_reverse_tunnel_registrations_total) + $(metric "$B_IP" teleport_reverse_tunnel_registrations_total) ))
log "  all $((2 * LEAVES)) tunnels back ${BACK}s after the restart: $TOTAL connections ($REG tunnel registrations), at most $PEAK in one second"
kill "${SIMS[@]}"; wait "${SIMS[@]}" 2>/dev/null || true

log "a real leaf reachable only through root-b: direct and peer-forwarded sessions"
L="$W/leaf"; mkdir -p "$L"
cat >"$L/teleport.yaml" <<YAML
version: v3
teleport:
  nodename: hat-leaf-node
  data_dir: $L/data
auth_service:
  cluster_name: hat-leaf.example.com
ssh_service:
  enabled: yes
  listen_addr: $LEAF_IP:3022
proxy_service:
  web_listen_addr: $LEAF_IP:3080
  public_addr: $LEAF_IP:3080
YAML
A_ID=$(cat "$W/root-a/data/host_uuid")
TELEPORT_UNSTABLE_AGENT_SKIP_PROXIES="$A_ID" SSL_CERT_FILE="$CA" teleport start -c "$L/teleport.yaml" >"$L/teleport.log" 2>&1 &
PIDS+=($!)
wait_until 60 curl -sf --cacert "$L/data/web/webca.pem" "https://$LEAF_IP:3080/webapi/ping"
LT=(tctl -c "$L/teleport.yaml")
printf 'kind: role\nversion: v5\nmetadata: {name: bench}\nspec:\n  allow:\n    logins: [root]\n    node_labels: {"*": "*"}\n' >"$W/role.yaml"
"${LT[@]}" create "$W/role.yaml" >/dev/null
TOKEN="$("${T[@]}" tokens add --type=trusted_cluster --ttl=30m --format=text)"
printf 'kind: trusted_cluster\nversion: v2\nmetadata: {name: hat-bench.example.com}\nspec:\n  enabled: true\n  token: %s\n  web_proxy_addr: %s:3080\n  tunnel_addr: %s:3080\n  role_map: [{remote: access, local: [bench]}]\n' "$TOKEN" "$B_IP" "$B_IP" >"$W/tc.yaml"
SSL_CERT_FILE="$CA" "${LT[@]}" create "$W/tc.yaml" >/dev/null
wait_until 60 sh -c "${T[*]} get rc/hat-leaf.example.com --format=json | grep -q '\"online\"'"
invite="$("${T[@]}" users add bench --roles=access --logins=root)"
url="$(printf '%s\n' "$invite" | grep -m1 '^https://')"
curl -sf --cacert "$CA" -X PUT "https://$A_IP:3080/webapi/users/password/token" -d "{\"token\":\"${url##*/}\",\"password\":\"bench-password-1\"}" >/dev/null
export SSL_CERT_FILE="$CA"
for who in a b; do
    ip=$A_IP; [ "$who" = b ] && ip=$B_IP
    echo bench-password-1 | TELEPORT_HOME="$W/tsh-$who" tsh login --proxy="$ip:3080" --user=bench >/dev/null
done
via() { local who="$1"; shift; TELEPORT_HOME="$W/tsh-$who" tsh ssh --cluster=hat-leaf.example.com root@hat-leaf-node "$@"; }
via a true; via b true
latency() { local i t0; for i in $(seq 1 "$RUNS"); do t0=$(now); via "$1" true; elapsed "$t0"; echo; done | stats; }
throughput() {
    local i t0 secs
    for i in $(seq 1 "$XFERS"); do
        t0=$(now)
        head -c "$((MB * 1024 * 1024))" /dev/zero | via "$1" 'cat > /dev/null'
        secs=$(elapsed "$t0")
        awk -v mb="$MB" -v s="$secs" 'BEGIN { printf "%.1f\n", mb / s }'
    done | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}
read -r LB_MED LB_P <<<"$(latency b)"; read -r LA_MED LA_P <<<"$(latency a)"
TB=$(throughput b); TA=$(throughput a)
log "  direct (root-b): connect $LB_MED ms (p99 $LB_P), $TB MiB/s; forwarded (root-a -> root-b): connect $LA_MED ms (p99 $LA_P), $TA MiB/s"

if [ -n "$SEED_DIRECT" ]; then
    SEED_NOTE="Each leaf's first dial goes to one of the processes (half to each), not through HAProxy:
through it, $LEAVES first tunnels would take $((2 * LEAVES)) of HAProxy's descriptors, beyond this
machine's limit of $FDLIM (the hard limit needs CAP_SYS_RESOURCE to raise). The second tunnel comes
from discovery either way."
else
    SEED_NOTE="Each leaf is told only the load balancer's address; discovery does the rest."
fi
cat >"$REPO/bench/ha-tunnels.md" <<MD
## Tunnels to every root process

Generated by \`./bench/ha-tunnels.sh\` on $(date -u +%Y-%m-%d), on this machine ($(nproc) cores): a root of two
processes on one PostgreSQL database behind HAProxy (TCP, \`/readyz\` checks every 500 ms), default
settings (30 s heartbeats), and $LEAVES simulated leaves (\`tp-leafsim\`, ${#SIMS[@]} processes) that
discovery brings to both processes ($((2 * LEAVES)) tunnels). $SEED_NOTE

| measure | value |
|---|---|
| every leaf holds both tunnels, from tp-leafsim's start (trust handshakes included) | $CONVERGE s |
| RSS per tunnel, root-a / root-b | $PER_A / $PER_B KiB |
| CPU idle over ${IDLE_SECS} s, from 35 s after they converged (% of a core): root-a / root-b / PostgreSQL | $IDLE_A / $IDLE_B / $IDLE_PG |
| \`tsh ssh\` through HAProxy in a loop while root-a, then root-b, stops (SIGTERM) and starts again: probes ok / failed | $PROBES_OK / $PROBES_FAIL |
| both processes restarted: every tunnel back | $BACK s |
| connections both processes took meanwhile (tunnel registrations) | $TOTAL ($REG) |
| most connections in one second (the herd, if any) | $PEAK |

What bounds these: each leaf's two tunnels cost what one root's does (bench/scale.md), twice;
the processes write presence rows to PostgreSQL (one per leaf per heartbeat, in one transaction
per process every 500 ms), which is PostgreSQL's idle CPU. A process that stops answers
\`/readyz\` with 503 and tells its agents to move first, and keeps accepting until HAProxy has
taken it out (no connection for a second); after, HAProxy retries a refused connection on the
other, so a probe sees no failure. A process that starts again is joined by the agents of the
other within a spread of that one's tunnels ÷ 500 a second (20 s here), not all at once: at
once they filled its \`max_startups\` 4 s after it started, refusing probes sent to it. A restart
of both is bounded like the single root's, the handshakes on two cores, for each leaf's first
tunnel; its second comes within the spread, which is most of the time to every tunnel back.

One real leaf (with its node) reaches only root-b (\`TELEPORT_UNSTABLE_AGENT_SKIP_PROXIES\` stands in
for a firewall); \`tsh ssh --cluster=leaf\` through root-b is direct, through root-a it is forwarded by
root-b (mutual TLS between the proxies). Connect: median and p99 of $RUNS \`true\` runs, whole
process; throughput: median of $XFERS transfers of $MB MiB into \`cat > /dev/null\`.

| path | connect median ms | p99 ms | MiB/s |
|---|---|---|---|
| direct, through the process holding the tunnel | $LB_MED | $LB_P | $TB |
| forwarded, through a peer | $LA_MED | $LA_P | $TA |
| forwarded / direct | $(ratio "$LA_MED" "$LB_MED") | | $(ratio "$TA" "$TB") |
MD
log "wrote bench/ha-tunnels.md"
cat "$REPO/bench/ha-tunnels.md"
