#!/usr/bin/env bash
# A root and a leaf cluster on loopback, trusted exactly as the guide does it, and a session to a
# node inside the leaf reached through the leaf's reverse tunnel.
#
#   ./demo/trusted-clusters.sh          build, (re)start everything, run the guide's steps
#   ./demo/trusted-clusters.sh stop     stop everything
#
# Works as root (sessions log in as `visitor`, created with useradd) and as an ordinary user
# (sessions log in as that user). State lives in one directory ($TP_DEMO_DIR, default
# /tmp/teleport-demo-<user>); running again stops the old demo and starts a fresh one.
# TP_DEMO_NO_BUILD=1 uses release binaries that are already built (e.g. by another user).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${TP_DEMO_DIR:-${TMPDIR:-/tmp}/teleport-demo-$(id -un)}"
BIN="$REPO/target/release"
ROOT_IP="${TP_DEMO_ROOT_IP:-127.0.0.2}"
LEAF_IP="${TP_DEMO_LEAF_IP:-127.0.0.3}"
ROOT=rootcluster.example.com
LEAF=leafcluster.example.com
NODE=leaf-node-1
PASSWORD="demo-password-$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')"

STEP=0
STEPS=10
CURRENT="starting"
LOG=""
step() { STEP=$((STEP + 1)); CURRENT="$1"; LOG="${2:-}"; printf '==> [%d/%d] %s\n' "$STEP" "$STEPS" "$1"; }
fail() {
    printf '\nFAILED at step %d/%d: %s\n' "$STEP" "$STEPS" "$CURRENT" >&2
    if [ -n "$LOG" ]; then printf 'Read the log: %s\n' "$LOG" >&2; tail -n 15 "$LOG" >&2 || true; fi
    exit 1
}
trap fail ERR

stop() {
    for p in node leaf root; do
        f="$STATE/$p.pid"
        if [ -f "$f" ]; then
            pid="$(cat "$f")"
            if kill -0 "$pid" 2>/dev/null; then
                kill "$pid" 2>/dev/null || true
                for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
                kill -9 "$pid" 2>/dev/null || true
            fi
            rm -f "$f"
        fi
    done
}

if [ "${1:-}" = "stop" ]; then
    stop
    echo "Demo stopped. State is in $STATE (remove it with: rm -rf $STATE)."
    exit 0
fi

wait_for() { # description, command...
    local what="$1"; shift
    for _ in $(seq 1 300); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.2
    done
    echo "timed out waiting for $what" >&2
    return 1
}

if [ "$(id -u)" = "0" ]; then LOGIN=visitor; else LOGIN="$(id -un)"; fi

step "Building release binaries (the first build takes a few minutes)" "$STATE/build.log"
mkdir -p "$STATE"
if [ -z "${TP_DEMO_NO_BUILD:-}" ]; then
    cargo build --release --bins --manifest-path "$REPO/Cargo.toml" >"$STATE/build.log" 2>&1
fi
export PATH="$BIN:$PATH"

step "Stopping any previous demo and starting fresh in $STATE"
stop
rm -rf "$STATE/root" "$STATE/leaf" "$STATE/node" "$STATE/tsh"
mkdir -p "$STATE/root" "$STATE/leaf" "$STATE/node" "$STATE/tsh"
if [ "$LOGIN" = visitor ] && ! id visitor >/dev/null 2>&1; then
    useradd --create-home --shell /bin/bash visitor
fi

write_config() { # dir name ip
    cat >"$1/teleport.yaml" <<YAML
version: v3
teleport:
  nodename: $2
  data_dir: $1/data
auth_service:
  enabled: yes
  cluster_name: $2
  keep_alive_interval: 5s
  keep_alive_count_max: 3
  # Users sign in with a password on standard input here; a new cluster's default is second_factor: otp.
  authentication:
    type: local
    second_factor: off
ssh_service:
  enabled: no
proxy_service:
  enabled: yes
  web_listen_addr: $3:3080
  public_addr: $3:3080
YAML
}
write_config "$STATE/root" "$ROOT" "$ROOT_IP"
write_config "$STATE/leaf" "$LEAF" "$LEAF_IP"

step "Starting the root cluster $ROOT on $ROOT_IP:3080" "$STATE/root/teleport.log"
teleport start -c "$STATE/root/teleport.yaml" >"$STATE/root/teleport.log" 2>&1 &
echo $! >"$STATE/root.pid"
wait_for "the root cluster" test -f "$STATE/root/data/web/webca.pem"
ROOT_CA="$STATE/root/data/web/webca.pem"
wait_for "the root cluster" curl -sf --cacert "$ROOT_CA" "https://$ROOT_IP:3080/webapi/ping"

step "Starting the leaf cluster $LEAF on $LEAF_IP:3080 (trusting the root's web CA)" "$STATE/leaf/teleport.log"
SSL_CERT_FILE="$ROOT_CA" teleport start -c "$STATE/leaf/teleport.yaml" >"$STATE/leaf/teleport.log" 2>&1 &
echo $! >"$STATE/leaf.pid"
wait_for "the leaf cluster" test -f "$STATE/leaf/data/web/webca.pem"
LEAF_CA="$STATE/leaf/data/web/webca.pem"
wait_for "the leaf cluster" curl -sf --cacert "$LEAF_CA" "https://$LEAF_IP:3080/webapi/ping"
RTCTL=(tctl -c "$STATE/root/teleport.yaml")
LTCTL=(tctl -c "$STATE/leaf/teleport.yaml")

step "Joining node $NODE to the leaf over its own reverse tunnel (no listening port)" "$STATE/node/node.log"
NODE_TOKEN="$("${LTCTL[@]}" tokens add --type=node --ttl=10m --format=text)"
SSL_CERT_FILE="$LEAF_CA" teleport start --roles=node --tunnel --token="$NODE_TOKEN" --auth-server="$LEAF_IP:3080" \
    --nodename="$NODE" --labels=env=demo --data-dir="$STATE/node/data" >"$STATE/node/node.log" 2>&1 &
echo $! >"$STATE/node.pid"
wait_for "the node to register" sh -c "${LTCTL[*]} get nodes --format=json | grep -q '\"$NODE\"'"

set_password() { # cluster-ca ip invite-output
    local url token
    url="$(printf '%s\n' "$3" | grep -m1 '^https://')"
    token="${url##*/}"
    curl -sf --cacert "$1" -X PUT "https://$2:3080/webapi/users/password/token" \
        -d "{\"token\":\"$token\",\"password\":\"$PASSWORD\"}" >/dev/null
}

step "Preparing the leaf (guide step 1): role visitor, admin user" "$STATE/leaf/teleport.log"
cat >"$STATE/visitor.yaml" <<YAML
kind: role
version: v5
metadata:
  name: visitor
spec:
  allow:
    logins:
      - $LOGIN
    node_labels:
      '*': '*'
YAML
"${LTCTL[@]}" create "$STATE/visitor.yaml" >/dev/null
set_password "$LEAF_CA" "$LEAF_IP" "$("${LTCTL[@]}" users add leafadmin --roles=editor,access --logins="$LOGIN")"

step "Preparing the root (guide step 2): user myuser with login $LOGIN" "$STATE/root/teleport.log"
set_password "$ROOT_CA" "$ROOT_IP" "$("${RTCTL[@]}" users add myuser --roles=access,editor --logins="$LOGIN")"

step "Establishing trust (guide steps 3-4): token on the root, trusted_cluster on the leaf" "$STATE/leaf/teleport.log"
TOKEN="$("${RTCTL[@]}" tokens add --type=trusted_cluster --ttl=5m --format=text)"
cat >"$STATE/trusted_cluster.yaml" <<YAML
kind: trusted_cluster
version: v2
metadata:
  name: $ROOT
spec:
  enabled: true
  token: $TOKEN
  tunnel_addr: $ROOT_IP:3080
  web_proxy_addr: $ROOT_IP:3080
  role_map:
    - remote: "access"
      local: ["visitor"]
YAML
"${LTCTL[@]}" create "$STATE/trusted_cluster.yaml"
wait_for "the leaf to be online on the root" sh -c "${RTCTL[*]} get rc --format=json | grep -q '\"online\"'"

step "Signing in to the root as myuser (tsh login)"
export TELEPORT_HOME="$STATE/tsh" SSL_CERT_FILE="$ROOT_CA"
printf '%s\n' "$PASSWORD" | tsh login --proxy="$ROOT_IP:3080" --user=myuser >/dev/null
tsh clusters

step "Running a command on $NODE in the leaf, through the root (guide step 6)"
echo "\$ tsh ssh --cluster=$LEAF $LOGIN@$NODE 'pwd; uname -a'"
tsh ssh --cluster="$LEAF" "$LOGIN@$NODE" 'pwd; uname -a'

trap - ERR
cat <<TXT

The demo is running. Try next (password for myuser and leafadmin: $PASSWORD):

  Web UI:  https://$ROOT_IP:3080/web   (sign in as myuser; the certificate is the demo's own
           CA, $ROOT_CA: import it, or accept the browser's warning)
           Manage Clusters lists $LEAF; Servers -> $LEAF -> $LOGIN opens a terminal on $NODE.

  export TELEPORT_HOME=$STATE/tsh SSL_CERT_FILE=$ROOT_CA PATH=$BIN:\$PATH
  tsh status
  tsh clusters
  tsh ls --cluster=$LEAF
  tsh ssh --cluster=$LEAF $LOGIN@$NODE
  tsh login $LEAF && tsh ssh $LOGIN@$NODE
  tctl -c $STATE/root/teleport.yaml get rc
  tctl -c $STATE/leaf/teleport.yaml map-roles --roles=access --cluster=$ROOT

Logs: $STATE/root/teleport.log, $STATE/leaf/teleport.log, $STATE/node/node.log
Stop everything: $REPO/demo/trusted-clusters.sh stop
TXT
