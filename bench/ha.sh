#!/usr/bin/env bash
# SQLite and PostgreSQL side by side, in one run: what the cluster state costs on each.
# Writes bench/ha.md (BENCHMARKS.md includes it).
#
#   ./bench/ha.sh                  full run (60 tctl create, 30 tsh login, 1000 simulated leaves)
#   HA_CREATES=20 HA_LOGINS=10 HA_LEAVES=200 ./bench/ha.sh     a quicker run
#
# Rows: median and p99 of `tctl create` (a new role each time) and of `tsh login` (process start
# to exit); then a root with N simulated leaves heartbeating every 5 s (tp-leafsim): the root's
# and the database's CPU over 30 s (SQLite's is the root's own: it runs inside it), and with
# the leaves idle (30 s heartbeats) the database's CPU over 30 s. Needs root (PostgreSQL runs as
# the postgres user) and Debian's postgresql (./scripts/deps.sh).
set -Eeuo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${BENCH_BIN:-$REPO/target/release}"
CREATES="${HA_CREATES:-60}"
LOGINS="${HA_LOGINS:-30}"
LEAVES="${HA_LEAVES:-1000}"
W="$(mktemp -d /tmp/tp-bench-ha.XXXXXX)"
chmod 755 "$W"
PIDS=()
PGBIN="$(pg_config --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)"
log() { printf '==> %s\n' "$*" >&2; }
cleanup() {
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
    sleep 0.5
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true; done
    [ -d "$W/pg/data" ] && runuser -u postgres -- "$PGBIN/pg_ctl" -D "$W/pg/data" -m immediate -w stop >/dev/null 2>&1 || true
    [ -n "${BENCH_KEEP:-}" ] || rm -rf "$W"
}
trap cleanup EXIT
trap 'echo "bench/ha.sh: failed at line $LINENO: $BASH_COMMAND (work dir $W; BENCH_KEEP=1 keeps it)" >&2' ERR
if [ "$(id -u)" != 0 ]; then echo "run as root" >&2; exit 1; fi
"$REPO/scripts/deps.sh"

if [ -z "${BENCH_BIN:-}" ]; then
    log "building release binaries"
    cargo build --release --bins --manifest-path "$REPO/Cargo.toml" >"$W/build.log" 2>&1 || { tail "$W/build.log"; exit 1; }
fi
export PATH="$BIN:$PATH"
# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"

ticks() { # CPU ticks (user + system) of the given pids
    local t=0 p
    for p in "$@"; do
        [ -r "/proc/$p/stat" ] || continue
        t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat")))
    done
    echo "$t"
}
pg_pids() { local pm; pm=$(head -1 "$W/pg/data/postmaster.pid"); echo "$pm" $(ps --ppid "$pm" -o pid= 2>/dev/null); }
cpu_pct() { # seconds, pid-list-command...: % of one core the processes used over the window
    local secs="$1"; shift
    local hz; hz=$(getconf CLK_TCK)
    local a; a=$(ticks $("$@"))
    sleep "$secs"
    local b; b=$(ticks $("$@"))
    awk -v a="$a" -v b="$b" -v hz="$hz" -v s="$secs" 'BEGIN { printf "%.1f", (b - a) * 100 / hz / s }'
}

log "starting PostgreSQL (wal_level=logical, fsync on)"
mkdir -p "$W/pg"; chown postgres "$W/pg"
runuser -u postgres -- "$PGBIN/initdb" -D "$W/pg/data" -A trust -U postgres -E UTF8 --locale=C.UTF-8 >"$W/pg/initdb.log"
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$W/pg/data" -l "$W/pg/server.log" -w -o \
    "-c listen_addresses=127.0.0.60 -p 5432 -k $W/pg -c wal_level=logical -c max_replication_slots=10" start >/dev/null

start_root() { # dir ip keep-alive storage-yaml
    mkdir -p "$1"
    cat >"$1/teleport.yaml" <<YAML
version: v3
teleport:
  nodename: ha-bench
  data_dir: $1/data
$4
auth_service:
  cluster_name: ha-bench.example.com
  keep_alive_interval: $3
  keep_alive_count_max: 3
  # Users sign in with a password on standard input here; a new cluster's default is second_factor: otp.
  authentication:
    type: local
    second_factor: off
ssh_service:
  enabled: no
proxy_service:
  web_listen_addr: $2:3080
  public_addr: $2:3080
YAML
    teleport start -c "$1/teleport.yaml" >"$1/teleport.log" 2>&1 &
    PIDS+=($!)
    echo $! >"$1/pid"
    wait_until 60 curl -sf --cacert "$1/data/web/webca.pem" "https://$2:3080/webapi/ping"
}
stop_root() { local p; p=$(cat "$1/pid"); kill "$p"; while kill -0 "$p" 2>/dev/null; do sleep 0.1; done; }

ROWS=""
measure() { # label ip storage-yaml
    local label="$1" ip="$2" storage="$3" d="$W/$1"
    log "$label: tctl create x $CREATES, tsh login x $LOGINS"
    start_root "$d" "$ip" 5s "$storage"
    local T=(tctl -c "$d/teleport.yaml")
    local i t0
    local create; create=$(for i in $(seq 1 "$CREATES"); do
        printf 'kind: role\nversion: v5\nmetadata: {name: r%s}\nspec: {allow: {logins: [x]}}\n' "$i" >"$d/r.yaml"
        t0=$(now); "${T[@]}" create "$d/r.yaml" >/dev/null; elapsed "$t0"; echo
    done | stats)
    local invite url tok
    invite="$("${T[@]}" users add bench --roles=access --logins=root)"
    url="$(printf '%s\n' "$invite" | grep -m1 '^https://')"; tok="${url##*/}"
    curl -sf --cacert "$d/data/web/webca.pem" -X PUT "https://$ip:3080/webapi/users/password/token" -d "{\"token\":\"$tok\",\"password\":\"bench-password-1\"}" >/dev/null
    local login; login=$(for i in $(seq 1 "$LOGINS"); do
        t0=$(now); echo bench-password-1 | TELEPORT_HOME="$d/tsh$i" SSL_CERT_FILE="$d/data/web/webca.pem" tsh login --proxy="$ip:3080" --user=bench >/dev/null; elapsed "$t0"; echo
    done | stats)
    log "  $LEAVES simulated leaves heartbeating every 5s"
    local token; token="$("${T[@]}" tokens add --type=trusted_cluster --ttl=30m --format=text)"
    tp-leafsim --root="$ip:3080" --root-ca="$d/data/web/webca.pem" --token="$token" --count="$LEAVES" --prefix="$label" --keep-alive=5s >"$d/sim.log" 2>&1 &
    local sim=$!; PIDS+=($sim)
    wait_until 600 sh -c "[ \"\$(${T[*]} get rc --format=json | jq '[.[] | select(.status.connection == \"online\")] | length')\" -ge $LEAVES ]"
    sleep 5
    local root_pid; root_pid=$(cat "$d/pid")
    local root_cpu db_cpu
    if [ "$label" = sqlite ]; then
        root_cpu=$(cpu_pct 30 echo "$root_pid"); db_cpu="(in the root)"
    else
        local pg_a pg_b root_a root_b
        root_a=$(ticks "$root_pid"); pg_a=$(ticks $(pg_pids)); sleep 30; root_b=$(ticks "$root_pid"); pg_b=$(ticks $(pg_pids))
        local hz; hz=$(getconf CLK_TCK)
        root_cpu=$(awk -v a="$root_a" -v b="$root_b" -v hz="$hz" 'BEGIN { printf "%.1f", (b - a) * 100 / hz / 30 }')
        db_cpu=$(awk -v a="$pg_a" -v b="$pg_b" -v hz="$hz" 'BEGIN { printf "%.1f", (b - a) * 100 / hz / 30 }')
    fi
    kill "$sim"; wait "$sim" 2>/dev/null || true
    # Idle: the product's default 30 s heartbeats, on both sides (a root expecting 5 s ones
    # would cut 30 s tunnels and measure reconnects instead).
    log "  idle: $LEAVES leaves, 30s heartbeats"
    stop_root "$d"
    start_root "$d" "$ip" 30s "$storage"
    root_pid=$(cat "$d/pid")
    tp-leafsim --root="$ip:3080" --root-ca="$d/data/web/webca.pem" --token="$token" --count="$LEAVES" --prefix="${label}i" --keep-alive=30s >"$d/sim-idle.log" 2>&1 &
    sim=$!; PIDS+=($sim)
    # Count only the new leaves: the first ones stay online until their heartbeats time out.
    wait_until 600 sh -c "[ \"\$(${T[*]} get rc --format=json | jq '[.[] | select(.status.connection == \"online\" and (.metadata.name | startswith(\"${label}i\")))] | length')\" -ge $LEAVES ]"
    sleep 10
    local idle
    if [ "$label" = sqlite ]; then idle="$(cpu_pct 30 echo "$root_pid") (root, SQLite inside)"; else idle="$(cpu_pct 30 pg_pids)"; fi
    kill "$sim"; wait "$sim" 2>/dev/null || true
    stop_root "$d"
    read -r cm cp <<<"$create"; read -r lm lp <<<"$login"
    log "  create $cm/$cp ms, login $lm/$lp ms, root CPU $root_cpu%, db CPU $db_cpu%, idle db CPU $idle%"
    ROWS+="| $label | $cm | $cp | $lm | $lp | $root_cpu | $db_cpu | $idle |"$'\n'
}
measure sqlite 127.0.0.61 ""
measure postgresql 127.0.0.62 "  storage:
    type: postgresql
    conn_string: postgresql://postgres@127.0.0.60:5432/ha_bench?sslmode=disable"

PGV="$("$PGBIN/postgres" --version)"
cat >"$REPO/bench/ha.md" <<MD
## Cluster state: SQLite and PostgreSQL side by side

Generated by \`./bench/ha.sh\` on $(date -u +%Y-%m-%d), one root process each, on this machine ($(nproc) cores);
$PGV on loopback with \`fsync\` on (the default), the root's state in one database.
\`tctl create\` and \`tsh login\` are whole processes (start to exit, median and p99 of $CREATES and
$LOGINS runs). CPU is the percentage of one core over 30 s with $LEAVES simulated leaves
(\`tp-leafsim\`) connected: heartbeating every 5 s (the presence writes of $LEAVES leaves,
flushed every 500 ms in one transaction), then idle (30 s heartbeats).

| storage | tctl create median ms | p99 ms | tsh login median ms | p99 ms | root CPU %, $LEAVES leaves at 5 s | database CPU %, same | database CPU % idle, $LEAVES leaves |
|---|---|---|---|---|---|---|---|
$ROWS
MD
log "wrote bench/ha.md"
cat "$REPO/bench/ha.md"
