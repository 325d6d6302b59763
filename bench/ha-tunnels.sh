#!/usr/bin/env bash
# Tunnels of a root of two processes (one PostgreSQL database, HAProxy in front), in one run.
# Writes bench/ha-tunnels.md.
#
#   ./bench/ha-tunnels.sh                      1,000 simulated leaves (2,000 tunnels)
#   HA_LEAVES=200 HA_RUNS=10 HA_MB=64 ./bench/ha-tunnels.sh     a quicker run
#
# Rows: RSS per tunnel of each root process; time until every leaf holds a tunnel to both
# processes (tp-leafsim through HAProxy; discovery does the rest); time until all are back after
# both processes restart, with the connections per second they took (the herd, or not); and,
# for one real leaf that reaches only root-b, `tsh ssh` connect latency and throughput through
# root-b (direct) and through root-a (forwarded to root-b by peer forwarding), side by side.
# Needs root (PostgreSQL runs as the postgres user) and Debian's postgresql and haproxy
# (./scripts/deps.sh installs them).
set -Eeuo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="$REPO/target/release"
LEAVES="${HA_LEAVES:-1000}"
RUNS="${HA_RUNS:-30}"
MB="${HA_MB:-256}"
XFERS="${HA_XFERS:-3}"
W="$(mktemp -d /tmp/tp-bench-hat.XXXXXX)"
chmod 755 "$W"
PIDS=()
PGBIN="$(pg_config --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)"
PG_IP=127.0.0.80 A_IP=127.0.0.81 B_IP=127.0.0.82 LB_IP=127.0.0.83 LEAF_IP=127.0.0.84
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

log "building release binaries"
cargo build --release --bins --manifest-path "$REPO/Cargo.toml" >"$W/build.log" 2>&1 || { tail "$W/build.log"; exit 1; }
export PATH="$BIN:$PATH"

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
  keep_alive_interval: 10s
  keep_alive_count_max: 3
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
tunnels() { "${T[@]}" get tunnel_connections --format=json | jq length; }

start_proc root-a "$A_IP"; wait_ready "$A_IP"
start_proc root-b "$B_IP"; wait_ready "$B_IP"
sleep 3
RSS_A0=$(rss_kib "$(cat "$W/root-a/pid")"); RSS_B0=$(rss_kib "$(cat "$W/root-b/pid")")
CA="$W/root-a/data/web/webca.pem"

log "$LEAVES simulated leaves through HAProxy"
TOKEN="$("${T[@]}" tokens add --type=trusted_cluster --ttl=60m --format=text)"
# The handshakes go to root-a itself: through the balancer they would all come from its address,
# and the per-address rate limit of the handshake would serialise them.
tp-leafsim --root="$A_IP:3080" --tunnel-addr="$LB_IP:443" --root-ca="$CA" --token="$TOKEN" --count="$LEAVES" --prefix=hat --keep-alive=10s >"$W/sim.log" 2>&1 &
SIM=$!; PIDS+=($SIM)
wait_until 600 sh -c "grep -q 'tunnels started' '$W/sim.log' || ! kill -0 $SIM"
grep -q 'tunnels started' "$W/sim.log" || { log "tp-leafsim failed:"; grep -v '^ ' "$W/sim.log" | head -5 >&2; exit 1; }
T0=$(now)
wait_until 600 sh -c "[ \"\$(${T[*]} get tunnel_connections --format=json | jq length)\" -ge $((2 * LEAVES)) ]"
CONVERGE=$(elapsed "$T0")
log "  every leaf held both tunnels ${CONVERGE}s after the tunnels started"
sleep 5
RSS_A1=$(rss_kib "$(cat "$W/root-a/pid")"); RSS_B1=$(rss_kib "$(cat "$W/root-b/pid")")
PER_A=$(awk -v a="$RSS_A0" -v b="$RSS_A1" -v n="$LEAVES" 'BEGIN { printf "%.1f", (b - a) / n }')
PER_B=$(awk -v a="$RSS_B0" -v b="$RSS_B1" -v n="$LEAVES" 'BEGIN { printf "%.1f", (b - a) / n }')
log "  RSS per tunnel: root-a $PER_A KiB, root-b $PER_B KiB"

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
kill "$SIM"; wait "$SIM" 2>/dev/null || true

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

cat >"$REPO/bench/ha-tunnels.md" <<MD
## Tunnels to every root process

Generated by \`./bench/ha-tunnels.sh\` on $(date -u +%Y-%m-%d), on this machine ($(nproc) cores): a root of two
processes on one PostgreSQL database behind HAProxy (TCP, \`/readyz\` checks every 500 ms), and
$LEAVES simulated leaves (\`tp-leafsim\`) told only the load balancer's address: discovery brings each
to both processes ($((2 * LEAVES)) tunnels, 10 s heartbeats).

| measure | value |
|---|---|
| RSS per tunnel, root-a / root-b | $PER_A / $PER_B KiB |
| every leaf holds both tunnels, after the tunnels started | $CONVERGE s |
| both processes restarted: every tunnel back | $BACK s |
| connections both processes took meanwhile (tunnel registrations) | $TOTAL ($REG) |
| most connections in one second (the herd, if any) | $PEAK |

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
