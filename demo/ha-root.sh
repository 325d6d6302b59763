#!/usr/bin/env bash
# A highly available root cluster on loopback: two `teleport` processes (root-a, root-b) that
# share one PostgreSQL database, so that either serves everything and either can die.
#
#   ./demo/ha-root.sh          build, (re)start PostgreSQL and both processes, show they are one
#   ./demo/ha-root.sh stop     stop everything
#
# Needs Debian's postgresql package (./scripts/deps.sh installs it). As root, PostgreSQL runs
# as the postgres user (initdb refuses root). State lives in $TP_DEMO_DIR (default
# /tmp/teleport-ha-demo-<user>); running again starts fresh.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${TP_DEMO_DIR:-${TMPDIR:-/tmp}/teleport-ha-demo-$(id -un)}"
BIN="$REPO/target/release"
A_IP="${TP_DEMO_A_IP:-127.0.0.4}"
B_IP="${TP_DEMO_B_IP:-127.0.0.5}"
PG_IP="${TP_DEMO_PG_IP:-127.0.0.6}"
PG_PORT=5432
CLUSTER=rootcluster.example.com
PGBIN="$(pg_config --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)"
PASSWORD="demo-password-$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')"

as_pg() { if [ "$(id -u)" = "0" ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

stop() {
    for p in root-b root-a; do
        f="$STATE/$p.pid"
        if [ -f "$f" ]; then
            pid="$(cat "$f")"
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -9 "$pid" 2>/dev/null || true
            rm -f "$f"
        fi
    done
    if [ -d "$STATE/pg/data" ]; then as_pg "$PGBIN/pg_ctl" -D "$STATE/pg/data" -m fast -w stop >/dev/null 2>&1 || true; fi
}

if [ "${1:-}" = "stop" ]; then
    stop
    echo "HA demo stopped. State is in $STATE (remove it with: rm -rf $STATE)."
    exit 0
fi

wait_for() { local what="$1"; shift; for _ in $(seq 1 300); do if "$@" >/dev/null 2>&1; then return 0; fi; sleep 0.2; done; echo "timed out waiting for $what" >&2; return 1; }

echo "==> Building release binaries (the first build takes a few minutes)"
mkdir -p "$STATE"
[ -n "${TP_DEMO_NO_BUILD:-}" ] || cargo build --release --bins --manifest-path "$REPO/Cargo.toml" >"$STATE/build.log" 2>&1
export PATH="$BIN:$PATH"

echo "==> Starting PostgreSQL on $PG_IP:$PG_PORT (wal_level=logical)"
stop
rm -rf "$STATE/pg" "$STATE/root-a" "$STATE/root-b" "$STATE/tsh"
mkdir -p "$STATE/pg" "$STATE/root-a" "$STATE/root-b" "$STATE/tsh"
[ "$(id -u)" != "0" ] || chown postgres "$STATE/pg"
as_pg "$PGBIN/initdb" -D "$STATE/pg/data" -A trust -U postgres -E UTF8 --locale=C.UTF-8 >"$STATE/pg/initdb.log"
as_pg "$PGBIN/pg_ctl" -D "$STATE/pg/data" -l "$STATE/pg/server.log" -w -o \
    "-c listen_addresses=$PG_IP -p $PG_PORT -k $STATE/pg -c wal_level=logical -c max_replication_slots=10" start >/dev/null
CONN="postgresql://postgres@$PG_IP:$PG_PORT/teleport_backend?sslmode=disable&pool_max_conns=10"
AUDIT="postgresql://postgres@$PG_IP:$PG_PORT/teleport_audit?sslmode=disable"

write_config() { # name ip
    cat >"$STATE/$1/teleport.yaml" <<YAML
version: v3
teleport:
  nodename: $1
  data_dir: $STATE/$1/data
  storage:
    type: postgresql
    conn_string: $CONN
    audit_events_uri: ["$AUDIT"]
auth_service:
  cluster_name: $CLUSTER
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
}
write_config root-a "$A_IP"
write_config root-b "$B_IP"

echo "==> Starting root-a ($A_IP:3080) and root-b ($B_IP:3080) at the same moment"
for p in root-a root-b; do
    teleport start -c "$STATE/$p/teleport.yaml" >"$STATE/$p/teleport.log" 2>&1 &
    echo $! >"$STATE/$p.pid"
done
CA="$STATE/root-a/data/web/webca.pem"
wait_for "root-a" curl -sf --cacert "$CA" "https://$A_IP:3080/webapi/ping"
wait_for "root-b" curl -sf --cacert "$CA" "https://$B_IP:3080/webapi/ping"
A=(tctl -c "$STATE/root-a/teleport.yaml")
B=(tctl -c "$STATE/root-b/teleport.yaml")

echo "==> One cluster: a user created through root-a, its password set and used through root-b"
INVITE="$("${A[@]}" users add myuser --roles=access,editor --logins=root)"
TOKEN="$(printf '%s\n' "$INVITE" | grep -m1 '^https://')"; TOKEN="${TOKEN##*/}"
curl -sf --cacert "$CA" -X PUT "https://$B_IP:3080/webapi/users/password/token" -d "{\"token\":\"$TOKEN\",\"password\":\"$PASSWORD\"}" >/dev/null
"${B[@]}" get users --format=text
export TELEPORT_HOME="$STATE/tsh" SSL_CERT_FILE="$CA"
printf '%s\n' "$PASSWORD" | tsh login --proxy="$B_IP:3080" --user=myuser >/dev/null
tsh status

cat <<TXT

Both processes serve one cluster from PostgreSQL. Try (password for myuser: $PASSWORD):

  export TELEPORT_HOME=$STATE/tsh SSL_CERT_FILE=$CA PATH=$BIN:\$PATH
  tctl -c $STATE/root-a/teleport.yaml create some-role.yaml && tctl -c $STATE/root-b/teleport.yaml get roles
  kill -9 \$(cat $STATE/root-a.pid); tsh login --proxy=$B_IP:3080 --user=myuser   # root-b serves on
  tctl -c $STATE/root-b/teleport.yaml get events --format=text                    # audit of both

Logs: $STATE/root-a/teleport.log, $STATE/root-b/teleport.log, $STATE/pg/server.log
Stop everything: $REPO/demo/ha-root.sh stop
TXT
