#!/usr/bin/env bash
# Benchmarks, side by side with OpenSSH, on loopback, in one run. Writes BENCHMARKS.md.
#
#   ./bench/run.sh                         full run: the SSH paths 3 times (each: median of 3
#                                          transfers of 1 GiB, 30 connects, 5 keystroke rounds),
#                                          file copy, Kubernetes, apps, databases, levers, then
#                                          bench/scale.sh, bench/ha-tunnels.sh and bench/ha.sh;
#                                          writes BENCHMARKS.md (~60 minutes on 2 cores)
#   BENCH_MB=256 BENCH_XFERS=1 BENCH_RUNS=10 BENCH_SSH_RUNS=1 BENCH_LEVER_MB=64 BENCH_KEY_ROUNDS=1 \
#     BENCH_SCALE=0 BENCH_HA=0 ./bench/run.sh
#                                          a quicker run (the scale and HA reports kept)
#   BENCH_QUICK=1 ./bench/run.sh           paths, CPU and profile only (no levers, offline
#                                          detection, scale or HA; BENCHMARKS.md is not written):
#                                          for measuring one change before and after
#   BENCH_COPY=0 ./bench/run.sh            without the file copy and forwarding rows
#   BENCH_ONLY=copy ./bench/run.sh         only the file copy and forwarding rows (printed, not
#                                          written): for measuring a change to those paths
#   BENCH_ONLY=kube ./bench/run.sh         only the Kubernetes rows (printed, not written)
#   BENCH_KUBE=0 ./bench/run.sh            without the Kubernetes rows
#   BENCH_ONLY=apps ./bench/run.sh         only the application rows (printed, not written)
#   BENCH_APPS=0 ./bench/run.sh            without the application rows
#   BENCH_ONLY=db ./bench/run.sh           only the database rows (printed, not written)
#   BENCH_DB=0 ./bench/run.sh              without the database rows
#   BENCH_BIN=/tmp/build-a ./bench/run.sh  binaries (teleport, tsh, tctl, tp-leafsim) from that
#                                          directory, not built: two builds side by side
#
# Paths compared:  (a) ssh direct to sshd        (b) ssh -J jump1,jump2 (stand-ins for root and
# leaf proxies)    (c) tsh ssh to a node of the same cluster    (d) tsh ssh --cluster=leaf to a
# leaf node through the reverse tunnel. Needs root (sshd) and installs openssh-server if missing.
set -Eeuo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${BENCH_BIN:-$REPO/target/release}"
MB="${BENCH_MB:-1024}"
RUNS="${BENCH_RUNS:-30}"
XFERS="${BENCH_XFERS:-3}"
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
for c in sshd:openssh-server ssh:openssh-client jq:jq curl:curl python3:python3 haproxy:haproxy; do
    command -v "${c%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${c%%:*}" ] || missing+=("${c##*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Every tunnel, session and connection is a descriptor at the root: 10,000 leaves need more
# than the usual soft limit of 1024 (teleport raises its own soft limit to the hard one at
# start; tp-leafsim and the shell's tools do not).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
FDLIM="$(ulimit -n)"
log "file descriptor limit: $FDLIM"

if [ -n "${BENCH_BIN:-}" ]; then
    log "binaries from $BIN (not built)"
else
    log "building release binaries"
    cargo build --release --bins --manifest-path "$REPO/Cargo.toml" >"$W/build.log" 2>&1 || { tail "$W/build.log"; exit 1; }
fi
export PATH="$BIN:$PATH"

# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"
stats() { # prints "median p90" in ms of the numbers (seconds) on stdin (lib.sh's gives p99)
    sort -n | awk '{ v[NR] = $1 } END { m = v[int((NR + 1) / 2)]; p = v[int(NR * 0.9 + 0.999)]; printf "%.1f %.1f", m * 1000, p * 1000 }'
}

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
PidFile $W/sshd$i.daemon.pid
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
AllowTcpForwarding yes
Subsystem sftp internal-sftp
LogLevel ERROR
CONF
    /usr/sbin/sshd -f "$W/sshd$i.conf" -D -e 2>>"$W/sshd$i.log" &
    PIDS+=($!)
    echo $! >"$W/sshd$i.pid"
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
Host viajump
  HostName 127.0.0.20
  Port 2220
  ProxyJump jump1
Host viajumps
  HostName 127.0.0.20
  Port 2220
  ProxyJump jump1,jump2
CONF
SSH=(ssh -F "$W/ssh_config")
wait_until 10 "${SSH[@]}" direct true
wait_until 10 "${SSH[@]}" viajumps true
# The ciphers every hop negotiated, as `ssh -v` reports them.
negotiated() { "$@" -v true 2>&1 | sed -n 's/.*kex: server->client cipher: \([^ ]*\).*/\1/p' | sort -u | paste -sd, -; }
CIPHER="$(negotiated "${SSH[@]}" direct)"
# OpenSSH at its best: the fastest of its AEAD ciphers on this machine, set for every hop with
# `Ciphers`. Probed direct, 512 MiB per transfer (so the ~0.3 s connect is a small part), three
# rounds with the ciphers interleaved so that a noisy minute hits each alike; the median decides.
PROBE_MB="${BENCH_PROBE_MB:-512}"
CIPHERS=(); PROBE_TEXT=""
for c in aes128-gcm@openssh.com aes256-gcm@openssh.com chacha20-poly1305@openssh.com; do
    ssh -Q cipher | grep -qx "$c" && CIPHERS+=("$c")
done
for round in 1 2 3; do
    for c in "${CIPHERS[@]}"; do
        t0=$(now)
        head -c $((PROBE_MB * 1024 * 1024)) /dev/zero | "${SSH[@]}" -o Ciphers="$c" direct 'cat > /dev/null'
        awk -v c="$c" -v mb="$PROBE_MB" -v s="$(elapsed "$t0")" 'BEGIN { printf "%s %.1f\n", c, mb / s }' >>"$W/probe"
    done
done
FAST=""; FAST_MIBS=0
for c in "${CIPHERS[@]}"; do
    runs=$(awk -v c="$c" '$1 == c { print $2 }' "$W/probe")
    m=$(median <<<"$runs")
    log "  cipher probe: $c $m MiB/s (median of 3: $(paste -sd' ' - <<<"$runs"))"
    PROBE_TEXT+="${PROBE_TEXT:+, }$c $m MiB/s"
    if awk -v a="$m" -v b="$FAST_MIBS" 'BEGIN { exit !(a > b) }'; then FAST="$c"; FAST_MIBS="$m"; fi
done
{ printf 'Host *\n  Ciphers %s\n' "$FAST"; cat "$W/ssh_config"; } >"$W/ssh_config_fast"
SSHF=(ssh -F "$W/ssh_config_fast")
log "fastest OpenSSH cipher here: $FAST"

# ----------------------------------------------------------------- Teleport
# The Kubernetes API server the leaf's kubernetes_service reaches: the stand-in the tests use
# (tests/src/bin/kube-standin.rs; no real API server installs on these machines).
KUBE=""
LEAF_KUBE=""
if [ "${BENCH_KUBE:-1}" != 0 ] && [ "${BENCH_ONLY:-}" != copy ] && [ "${BENCH_ONLY:-}" != db ] && command -v kubectl >/dev/null && [ -x "$BIN/kube-standin" ]; then
    "$BIN/kube-standin" --listen 127.0.0.52:6443 --dir "$W/kube" --name bench-kube >"$W/kube.log" 2>&1 &
    PIDS+=($!)
    wait_until 10 test -f "$W/kube/admin.kubeconfig"
    KUBE=1
    LEAF_KUBE="kubernetes_service:
  enabled: yes
  kubeconfig_file: $W/kube/kubeconfig
  kube_cluster_name: bench-kube"
fi
# The application the leaf's app_service serves: Apache with a static page (no auth module: the
# rows measure the path, not the app).
APPS=""
if [ "${BENCH_APPS:-1}" != 0 ] && [ "${BENCH_ONLY:-}" != copy ] && [ "${BENCH_ONLY:-}" != kube ] && [ "${BENCH_ONLY:-}" != db ] && command -v wrk >/dev/null && [ -x /usr/sbin/apache2 ]; then
    mkdir -p "$W/www/htdocs"
    head -c 1024 /dev/zero | tr '\0' 'x' >"$W/www/htdocs/index.html"
    m=/usr/lib/apache2/modules
    cat >"$W/www/httpd.conf" <<CONF
ServerRoot $W/www
ServerName bench-app
Listen 127.0.0.53:8080
PidFile $W/www/httpd.pid
DefaultRuntimeDir $W/www
Mutex file:$W/www
ErrorLog $W/www/error.log
User nobody
Group nogroup
LoadModule mpm_event_module $m/mod_mpm_event.so
LoadModule authz_core_module $m/mod_authz_core.so
LoadModule mime_module $m/mod_mime.so
LoadModule dir_module $m/mod_dir.so
TypesConfig /etc/mime.types
DocumentRoot $W/www/htdocs
KeepAliveTimeout 30
MaxKeepAliveRequests 0
<Directory />
  AllowOverride None
</Directory>
CONF
    # Apache serves as nobody: the work directory must let it through.
    chmod a+x "$W"
    chmod -R a+rX "$W/www"
    /usr/sbin/apache2 -f "$W/www/httpd.conf" -DFOREGROUND >"$W/www/apache.log" 2>&1 &
    PIDS+=($!)
    wait_until 10 curl -sf http://127.0.0.53:8080/
    APPS=1
    LEAF_KUBE="${LEAF_KUBE:+$LEAF_KUBE
}app_service:
  enabled: yes
  apps:
  - name: web
    uri: http://127.0.0.53:8080"
fi
# The PostgreSQL the leaf's db_service serves (Debian's; its certificate from the leaf's db CA
# once the leaf runs). pg_hba trusts TLS connections from loopback: the direct row's client has
# no certificate to present, and the rows measure the path, not PostgreSQL's authentication.
DB=""
PGBIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
if [ "${BENCH_DB:-1}" != 0 ] && { [ -z "${BENCH_ONLY:-}" ] || [ "${BENCH_ONLY:-}" = db ]; } && [ -x "$PGBIN/initdb" ] && command -v pgbench >/dev/null; then
    chmod a+x "$W"
    mkdir -p "$W/pg" && chown postgres "$W/pg"
    setpriv --reuid=postgres --regid=postgres --init-groups "$PGBIN/initdb" -D "$W/pg/data" -A trust -U postgres --no-sync >"$W/pg/initdb.log" 2>&1
    printf 'local all all trust\nhostssl all all 127.0.0.0/8 trust\n' >"$W/pg/data/pg_hba.conf"
    DB=1
    LEAF_KUBE="${LEAF_KUBE:+$LEAF_KUBE
}db_service:
  enabled: yes
  databases:
  - name: bench-pg
    protocol: postgres
    uri: 127.0.0.54:5432"
fi
log "starting the root and leaf clusters"
R="$W/root"; L="$W/leaf"
start_cluster "$R" bench-root 127.0.0.30 1s
CLUSTER_EXTRA="$LEAF_KUBE" start_cluster "$L" bench-leaf 127.0.0.31 1s SSL_CERT_FILE="$R/data/web/webca.pem"
RT=(tctl -c "$R/teleport.yaml"); LT=(tctl -c "$L/teleport.yaml")
set_password "$R" 127.0.0.30 "$("${RT[@]}" users add bench --roles=access --logins=root)"
printf 'kind: role\nversion: v5\nmetadata: {name: bench}\nspec:\n  allow:\n    logins: [root]\n    node_labels: {"*": "*"}\n    kubernetes_labels: {"*": "*"}\n    kubernetes_groups: [system:masters]\n    app_labels: {"*": "*"}\n    db_labels: {"*": "*"}\n    db_users: [bench]\n    db_names: ["*"]\n' >"$W/bench-role.yaml"
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
    done | median
}
latency() { # command...
    local i t0
    for i in $(seq 1 "$RUNS"); do
        t0=$(now); "$@" true; elapsed "$t0"; echo
    done | stats
}
HZ=$(getconf CLK_TCK)
ticks() { awk '{ print $14 + $15 + $16 + $17 }' "/proc/$1/stat"; } # own + reaped children's CPU
# This shell's reaped children (no command substitution: that would be another process).
mine_into() { local -a st; read -r -a st <"/proc/$BASHPID/stat"; printf -v "$1" '%s' $((st[15] + st[16])); }
per_gib() { awk -v d="$1" -v hz="$HZ" -v g="$2" 'BEGIN { printf "%.2f", d / hz / g }'; }
# measured "pid ..." command... : "MiB/s client pid..." with CPU seconds per GiB moved: the client
# side (the client and `head`, from this shell's reaped children) and each server process with
# the children it reaped (sshd's session processes; the node's `cat`).
measured() {
    local pids="$1"; shift
    local mb="${XFER_MB:-$MB}" before=() c0 c1 mibs gib out j=0 p
    for p in $pids; do before+=("$(ticks "$p")"); done
    mine_into c0
    mibs=$(throughput "$@")
    sleep 0.5 # sshd reaps its session processes
    gib=$(awk -v mb="$mb" -v x="$XFERS" 'BEGIN { print mb * x / 1024 }')
    mine_into c1
    out="$mibs $(per_gib $((c1 - c0)) "$gib")"
    for p in $pids; do out+=" $(per_gib $(($(ticks "$p") - ${before[$j]})) "$gib")"; j=$((j + 1)); done
    echo "$out"
}
sum() { awk 'BEGIN { s = 0; for (i = 1; i < ARGC; i++) s += ARGV[i]; printf "%.2f", s }' "$@"; }
SSHD0=$(cat "$W/sshd0.pid"); SSHD1=$(cat "$W/sshd1.pid"); SSHD2=$(cat "$W/sshd2.pid")
RPID=$(cat "$R/pid"); LPID=$(cat "$L/pid")
# The SSH paths are measured $SSH_RUNS times (each run: throughput and CPU, connect latency,
# keystrokes, every path in each); the tables give each number's median over the runs, and
# the runs table each run's ratios, since one run on a shared virtual machine varies by ±20 %.
SSH_RUNS="${BENCH_SSH_RUNS:-3}"
SSH_VARS="TA0 CA0c CA0s TA CAc CAs TB1 CB1c CB1j CB1s TB CBc CBj1 CBj2 CBs TC CCc CCr TD CDc CDr CDl
LA LA9 LB1 LB19 LB LB9 LC LC9 LD LD9 KA KA9 KB1 KB19 KB KB9 KC KC9 KD KD9"
SSH_RUN_ROWS=""
ssh_paths() {
log "throughput: median of $XFERS x $MB MiB through cat > /dev/null, CPU per GiB per process"
read -r TA0 CA0c CA0s <<<"$(measured "$SSHD0" "${SSH[@]}" direct)"; log "  (a0) OpenSSH direct, default cipher: $TA0 MiB/s"
read -r TA CAc CAs <<<"$(measured "$SSHD0" "${SSHF[@]}" direct)"; log "  (a) OpenSSH direct, $FAST: $TA MiB/s"
read -r TB1 CB1c CB1j CB1s <<<"$(measured "$SSHD1 $SSHD0" "${SSHF[@]}" viajump)"; log "  (b1) one jump: $TB1 MiB/s"
read -r TB CBc CBj1 CBj2 CBs <<<"$(measured "$SSHD1 $SSHD2 $SSHD0" "${SSHF[@]}" viajumps)"; log "  (b) two jumps: $TB MiB/s"
read -r TC CCc CCr <<<"$(measured "$RPID" "${TSH_C[@]}")"; log "  (c) $TC MiB/s"
read -r TD CDc CDr CDl <<<"$(measured "$RPID $LPID" "${TSH_D[@]}")"; log "  (d) $TD MiB/s"
NA0="$(negotiated "${SSH[@]}" direct)"; NA="$(negotiated "${SSHF[@]}" direct)"
NB1="$(negotiated "${SSHF[@]}" viajump)"; NB="$(negotiated "${SSHF[@]}" viajumps)"
log "connect latency: $RUNS runs of '... true'"
read -r LA LA9 <<<"$(latency "${SSHF[@]}" direct)"
read -r LB1 LB19 <<<"$(latency "${SSHF[@]}" viajump)"
read -r LB LB9 <<<"$(latency "${SSHF[@]}" viajumps)"
read -r LC LC9 <<<"$(latency "${TSH_C[@]}")"
read -r LD LD9 <<<"$(latency "${TSH_D[@]}")"
KEYS="${BENCH_KEYS:-200}"
KEY_ROUNDS="${BENCH_KEY_ROUNDS:-5}"
log "interactive latency: $KEY_ROUNDS rounds of $KEYS keystrokes echoed by a remote PTY, paths interleaved"
KS="$REPO/bench/keystroke.py"
# Rounds take every path in turn, so a slow spell of the machine falls on all of them alike
# (one path after another let a p50 of ~0.5 ms drift by 0.05 between runs); each path's p50
# and p99 are the medians over its rounds.
for k in a b1 b c d; do : >"$W/keys.$k"; done
for _ in $(seq 1 "$KEY_ROUNDS"); do
    "$KS" "$KEYS" "${SSHF[@]}" -tt direct >>"$W/keys.a"
    "$KS" "$KEYS" "${SSHF[@]}" -tt viajump >>"$W/keys.b1"
    "$KS" "$KEYS" "${SSHF[@]}" -tt viajumps >>"$W/keys.b"
    "$KS" "$KEYS" tsh ssh -t root@bench-root-node >>"$W/keys.c"
    "$KS" "$KEYS" tsh ssh -t --cluster=bench-leaf root@bench-leaf-node >>"$W/keys.d"
done
key_medians() { echo "$(awk '{ print $1 }' "$1" | median) $(awk '{ print $2 }' "$1" | median)"; } # of "p50 p99" lines
read -r KA KA9 <<<"$(key_medians "$W/keys.a")"
read -r KB1 KB19 <<<"$(key_medians "$W/keys.b1")"
read -r KB KB9 <<<"$(key_medians "$W/keys.b")"
read -r KC KC9 <<<"$(key_medians "$W/keys.c")"
read -r KD KD9 <<<"$(key_medians "$W/keys.d")"
log "  (a) $KA/$KA9 (b1) $KB1/$KB19 (b) $KB/$KB9 (c) $KC/$KC9 (d) $KD/$KD9 ms p50/p99"
}
if [ -z "${BENCH_ONLY:-}" ]; then
    for run in $(seq 1 "$SSH_RUNS"); do
        log "SSH paths, run $run of $SSH_RUNS"
        ssh_paths
        for v in $SSH_VARS; do printf '%s\n' "${!v}" >>"$W/runs.$v"; done
        CPU_A=$(sum "$CAc" "$CAs"); CPU_C=$(sum "$CCc" "$CCr"); CPU_D=$(sum "$CDc" "$CDr" "$CDl")
        SSH_RUN_ROWS+="| $run | $(ratio "$TC" "$TA") | $(ratio "$TD" "$TA") | $(ratio "$CPU_C" "$CPU_A") | $(ratio "$CPU_D" "$CPU_A") | $KC / $KB1 | $KC9 / $KB19 | $KD / $KB | $KD9 / $KB9 |"$'\n'
    done
    for v in $SSH_VARS; do printf -v "$v" '%s' "$(median <"$W/runs.$v")"; done
    CPU_A=$(sum "$CAc" "$CAs"); CPU_C=$(sum "$CCc" "$CCr"); CPU_D=$(sum "$CDc" "$CDr" "$CDl")
    SSH_RUN_ROWS+="| median | $(ratio "$TC" "$TA") | $(ratio "$TD" "$TA") | $(ratio "$CPU_C" "$CPU_A") | $(ratio "$CPU_D" "$CPU_A") | $KC / $KB1 | $KC9 / $KB19 | $KD / $KB | $KD9 / $KB9 |"
fi

# ----------------------------------------------------------------- Kubernetes
# The real kubectl, straight to the API server (its admin kubeconfig) and through the root and
# the leaf (the kubeconfig tsh kube login writes: every kubectl run also runs tsh kube
# credentials, which answers from its cache). `kubectl get pods`: $KUBE_RUNS calls per path,
# the paths taken in turn; p50 and p99 of each. `kubectl exec` printing $KUBE_MB MiB: median
# MiB/s of $XFERS runs per path.
KUBE_TABLE="(not measured: no kubectl, or no kube-standin among the binaries)"
KUBE_RUNS="${BENCH_KUBE_RUNS:-200}"
KUBE_MB="${BENCH_KUBE_MB:-256}"
if [ -n "$KUBE" ]; then
    log "Kubernetes: kubectl get pods x $KUBE_RUNS per path, kubectl exec of $KUBE_MB MiB"
    KD_CFG="$W/kube/admin.kubeconfig"
    KT_CFG="$W/kube/tsh.kubeconfig"
    KUBECONFIG="$KT_CFG" tsh kube login --cluster=bench-leaf bench-kube >/dev/null
    kget() { KUBECONFIG="$1" KUBECACHEDIR="$W/kube/cache-$2" kubectl get pods >/dev/null; }
    kget "$KD_CFG" d && kget "$KT_CFG" t
    : >"$W/kube.d"; : >"$W/kube.t"
    for i in $(seq 1 "$KUBE_RUNS"); do
        t0=$(now); kget "$KD_CFG" d; elapsed "$t0" >>"$W/kube.d"; echo >>"$W/kube.d"
        t0=$(now); kget "$KT_CFG" t; elapsed "$t0" >>"$W/kube.t"; echo >>"$W/kube.t"
    done
    pct() { sort -n "$1" | awk -v q="$2" 'NF { v[++n] = $1 } END { i = int(n * q + 0.999); if (i < 1) i = 1; printf "%.1f", v[i] * 1000 }'; }
    KG_D=$(pct "$W/kube.d" 0.5); KG_D9=$(pct "$W/kube.d" 0.99); KG_T=$(pct "$W/kube.t" 0.5); KG_T9=$(pct "$W/kube.t" 0.99)
    log "  kubectl get pods: direct $KG_D/$KG_D9 ms, through root and leaf $KG_T/$KG_T9 ms (p50/p99)"
    kexec() { # kubeconfig tag : MiB/s of one exec printing $KUBE_MB MiB
        local t0 bytes
        t0=$(now)
        bytes=$(KUBECONFIG="$1" KUBECACHEDIR="$W/kube/cache-$2" kubectl exec web -- head -c "$((KUBE_MB * 1024 * 1024))" /dev/zero | wc -c)
        [ "$bytes" = "$((KUBE_MB * 1024 * 1024))" ] || { log "  exec moved $bytes bytes"; echo 0; return; }
        awk -v mb="$KUBE_MB" -v s="$(elapsed "$t0")" 'BEGIN { printf "%.1f\n", mb / s }'
    }
    KX_D=$(for i in $(seq 1 "$XFERS"); do kexec "$KD_CFG" d; done | median)
    KX_T=$(for i in $(seq 1 "$XFERS"); do kexec "$KT_CFG" t; done | median)
    log "  kubectl exec: direct $KX_D MiB/s, through root and leaf $KX_T MiB/s"
    KUBE_TABLE="| what | direct to the API server | through the root and the leaf | × direct | target |
|---|---|---|---|---|
| kubectl get pods p50 (ms) | $KG_D | $KG_T | $(ratio "$KG_T" "$KG_D") | ≤ 1.5× + 1 ms |
| kubectl get pods p99 (ms) | $KG_D9 | $KG_T9 | $(ratio "$KG_T9" "$KG_D9") | |
| kubectl exec, $KUBE_MB MiB of output (MiB/s) | $KX_D | $KX_T | $(ratio "$KX_T" "$KX_D") | ≥ 0.5× |"
fi
if [ "${BENCH_ONLY:-}" = kube ]; then
    printf '%s\n' "$KUBE_TABLE"
    exit 0
fi

# ----------------------------------------------------------------- the floor of three hops
# Three HAProxy processes relaying TCP one to the next, one thread each, no TLS, no parsing: as
# many processes as tsh, the root and the leaf put on the apps' and databases' paths, each doing
# the least a relay can. What any path through three more processes reaches on this machine, in
# the same run: the floor the through rows are read against. Sets RELAY_FRONT (host:port).
relay_chain() { # target-host:port first-port
    local next="$1" i
    for i in 3 2 1; do
        printf 'global\n  nbthread 1\n  maxconn 2000\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 1m\n  timeout server 1m\nlisten relay\n  bind 127.0.0.6%s:%s\n  server next %s\n' \
            "$i" "$(($2 + i))" "$next" >"$W/relay-$2-$i.cfg"
        haproxy -db -f "$W/relay-$2-$i.cfg" >"$W/relay-$2-$i.log" 2>&1 &
        PIDS+=($!)
        next="127.0.0.6$i:$(($2 + i))"
    done
    RELAY_FRONT="$next"
    wait_until 10 bash -c "exec 3<>/dev/tcp/${next%:*}/${next#*:}"
}

# ----------------------------------------------------------------- applications
# wrk against Apache's static 1 KiB page: directly, and through tsh proxy app (a local listener
# adding the app certificate) → the root proxy → the leaf's tunnel → the leaf's app service,
# which signs a JWT into every request. ${APP_SECS}s per row, at 1 and 32 connections.
APP_SECS="${BENCH_APP_SECS:-10}"
APP_TABLE="(not measured: no wrk or apache2)"
APP_F32="-"
APP_CPU="(not measured)"
wrk_row() { # connections url : "requests/s p50-ms p99-ms"
    wrk -t "$(($1 > 1 ? 2 : 1))" -c "$1" -d "${APP_SECS}s" --latency "$2" 2>&1 | awk '
        function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
        $1 == "50%" { p50 = ms($2) } $1 == "99%" { p99 = ms($2) } $1 == "Requests/sec:" { rps = $2 }
        END { printf "%.0f %.3f %.3f\n", rps, p50, p99 }'
}
if [ -n "$APPS" ]; then
    log "applications: wrk ${APP_SECS}s at 1 and 32 connections, direct and through the root and leaf"
    tsh apps login --cluster=bench-leaf web >/dev/null
    tsh proxy app --cluster=bench-leaf web -p 18080 >"$W/proxy-app.log" 2>&1 &
    PROXY_APP_PID=$!
    PIDS+=($!)
    wait_until 10 curl -sf http://127.0.0.1:18080/
    relay_chain 127.0.0.53:8080 5100
    APP_TABLE="| what | direct | through the root and the leaf | × direct | target | the floor: three TCP relays | × direct |
|---|---|---|---|---|---|---|"
    # CPU per request of each process on the path (and Apache's, direct and through), over the
    # 32-connection rows (ticks are 10 ms; Apache's are its worker processes').
    apache_ticks() { local t=0 p; for p in $(pgrep -f "apache2 -f $W/www/httpd.conf"); do t=$((t + $(ticks "$p"))); done; echo "$t"; }
    for c in 1 32; do
        A_TK0="$(apache_ticks)"
        read -r D_RPS D_P50 D_P99 <<<"$(wrk_row "$c" http://127.0.0.53:8080/)"
        A_TK1="$(apache_ticks)"
        T_TK0="$(ticks "$PROXY_APP_PID") $(ticks "$(cat "$R/pid")") $(ticks "$(cat "$L/pid")") $(apache_ticks)"
        read -r T_RPS T_P50 T_P99 <<<"$(wrk_row "$c" http://127.0.0.1:18080/)"
        T_TK1="$(ticks "$PROXY_APP_PID") $(ticks "$(cat "$R/pid")") $(ticks "$(cat "$L/pid")") $(apache_ticks)"
        if [ "$c" = 32 ]; then
            APP_CPU="$(awk -v a="$T_TK0 $A_TK0" -v b="$T_TK1 $A_TK1" -v n="$((${T_RPS:-0} * APP_SECS))" -v d="$((${D_RPS:-0} * APP_SECS))" 'BEGIN {
                if (n < 1) n = 1; if (d < 1) d = 1; split(a, x); split(b, y)
                printf "tsh %.1f, root %.1f, leaf %.1f, Apache %.1f µs (Apache direct: %.1f µs)", (y[1] - x[1]) * 1e4 / n, (y[2] - x[2]) * 1e4 / n, (y[3] - x[3]) * 1e4 / n, (y[4] - x[4]) * 1e4 / n, (y[5] - x[5]) * 1e4 / d }')"
            log "  CPU per request at 32 connections: $APP_CPU"
        fi
        read -r F_RPS F_P50 F_P99 <<<"$(wrk_row "$c" "http://$RELAY_FRONT/")"
        log "  $c connections: direct $D_RPS req/s p50 $D_P50 ms p99 $D_P99 ms; through $T_RPS req/s p50 $T_P50 ms p99 $T_P99 ms; three relays $F_RPS req/s p50 $F_P50 ms"
        target_rps=""; [ "$c" = 32 ] && target_rps="≥ 0.5×" && APP_F32="$(ratio "$F_RPS" "$D_RPS")"
        APP_TABLE+="
| $c connection(s): requests/s | $D_RPS | $T_RPS | $(ratio "$T_RPS" "$D_RPS") | $target_rps | $F_RPS | $(ratio "$F_RPS" "$D_RPS") |
| $c connection(s): p50 (ms) | $D_P50 | $T_P50 | $(plus "$T_P50" "$D_P50") | ≤ direct + 1 ms | $F_P50 | $(plus "$F_P50" "$D_P50") |
| $c connection(s): p99 (ms) | $D_P99 | $T_P99 | $(ratio "$T_P99" "$D_P99") | | $F_P99 | $(ratio "$F_P99" "$D_P99") |"
    done
fi
if [ "${BENCH_ONLY:-}" = apps ]; then
    printf '%s\n\nCPU per request at 32 connections: %s\n' "$APP_TABLE" "$APP_CPU"
    exit 0
fi

# ----------------------------------------------------------------- databases
# pgbench against PostgreSQL with TLS directly, and through tsh proxy db (a local listener adding
# the database certificate) → the root proxy → the leaf's tunnel → the leaf's db_service, which
# connects with TLS and its own client certificate and audits every query. Select-only at 8
# clients for ${DB_SECS}s per path; the time to connect from pgbench -C (a connection per
# transaction, $DB_CONNECTS transactions).
DB_SECS="${BENCH_DB_SECS:-30}"
DB_CONNECTS="${BENCH_DB_CONNECTS:-200}"
DB_TABLE="(not measured: no PostgreSQL or pgbench)"
DB_CPU="(not measured)"
if [ -n "$DB" ]; then
    log "databases: pgbench -S, 8 clients, ${DB_SECS}s per path; pgbench -C x $DB_CONNECTS"
    "${LT[@]}" auth sign --format=db --host=127.0.0.54 --out="$W/pg/server" >/dev/null
    chown postgres "$W/pg/server".*
    setpriv --reuid=postgres --regid=postgres --init-groups "$PGBIN/postgres" -D "$W/pg/data" -c listen_addresses=127.0.0.54 -p 5432 \
        -k "$W/pg" -c ssl=on -c ssl_cert_file="$W/pg/server.crt" -c ssl_key_file="$W/pg/server.key" -c ssl_ca_file="$W/pg/server.cas" \
        -c max_connections=100 -c fsync=off >"$W/pg/server.log" 2>&1 &
    PIDS+=($!)
    wait_until 30 psql -X -h "$W/pg" -U postgres -d postgres -c 'select 1'
    psql -X -q -h "$W/pg" -U postgres -d postgres -c 'CREATE ROLE bench LOGIN' -c 'CREATE DATABASE bench OWNER bench'
    pgbench -i -q -s 10 -h "$W/pg" -U bench bench >"$W/pg/init.log" 2>&1
    tsh db login --cluster=bench-leaf --db-user=bench --db-name=bench bench-pg >/dev/null
    tsh proxy db --cluster=bench-leaf --tunnel -p 15432 bench-pg >"$W/proxy-db.log" 2>&1 &
    PIDS+=($!)
    PROXY_DB_PID=$!
    wait_until 10 psql -X "postgres://bench@127.0.0.1:15432/bench" -c 'select 1'
    tps() { pgbench -S -n -c 8 -j 2 -T "$DB_SECS" "$1" 2>&1 | awk '/^tps = / { printf "%.0f", $3 }'; }
    conn_ms() { pgbench -S -n -C -c 1 -t "$DB_CONNECTS" "$1" 2>&1 | awk '/average connection time/ { printf "%.2f", $5 }'; }
    DIRECT_URL="postgres://bench@127.0.0.54:5432/bench?sslmode=require"
    VIA_URL="postgres://bench@127.0.0.1:15432/bench?sslmode=disable"
    # The same path without tsh's local hop: pgbench's own TLS to the root's web port with the
    # certificate tsh db login wrote (what tsh db connect gives psql).
    ROOT_URL="$(tsh db config --cluster=bench-leaf --format=uri bench-pg)"
    # The floor: pgbench's own TLS to PostgreSQL through three TCP relays.
    relay_chain 127.0.0.54:5432 5200
    FLOOR_URL="postgres://bench@$RELAY_FRONT/bench?sslmode=require"
    DB_D=$(tps "$DIRECT_URL")
    # CPU per transaction of each process on the path, over the through run (ticks are 10 ms).
    DB_TK0="$(ticks "$PROXY_DB_PID") $(ticks "$(cat "$R/pid")") $(ticks "$(cat "$L/pid")")"
    DB_T=$(tps "$VIA_URL")
    DB_TK1="$(ticks "$PROXY_DB_PID") $(ticks "$(cat "$R/pid")") $(ticks "$(cat "$L/pid")")"
    DB_CPU="$(awk -v a="$DB_TK0" -v b="$DB_TK1" -v n="$((${DB_T:-0} * DB_SECS))" 'BEGIN { if (n < 1) n = 1
        split(a, x); split(b, y); printf "tsh %.1f, root %.1f, leaf %.1f µs", (y[1] - x[1]) * 1e4 / n, (y[2] - x[2]) * 1e4 / n, (y[3] - x[3]) * 1e4 / n }')"
    log "  CPU per transaction through: $DB_CPU"
    DB_R=$(tps "$ROOT_URL"); DB_F=$(tps "$FLOOR_URL")
    DC_D=$(conn_ms "$DIRECT_URL"); DC_T=$(conn_ms "$VIA_URL"); DC_R=$(conn_ms "$ROOT_URL"); DC_F=$(conn_ms "$FLOOR_URL")
    log "  pgbench -S: direct $DB_D tps, through tsh proxy db $DB_T tps, straight to the root $DB_R tps, three relays $DB_F tps"
    log "  connect: direct $DC_D ms, through tsh proxy db $DC_T ms, straight to the root $DC_R ms, three relays $DC_F ms"
    DB_TABLE="| what | direct (TLS) | through tsh proxy db, the root and the leaf | × direct | target | without tsh's hop (the client's own TLS to the root) | × direct | the floor: three TCP relays | × direct |
|---|---|---|---|---|---|---|---|---|
| pgbench -S, 8 clients (transactions/s) | $DB_D | $DB_T | $(ratio "$DB_T" "$DB_D") | ≥ 0.6× | $DB_R | $(ratio "$DB_R" "$DB_D") | $DB_F | $(ratio "$DB_F" "$DB_D") |
| time to connect, pgbench -C (ms) | $DC_D | $DC_T | $(plus "$DC_T" "$DC_D" 2) | ≤ direct + 20 ms | $DC_R | $(plus "$DC_R" "$DC_D" 2) | $DC_F | $(plus "$DC_F" "$DC_D" 2) |"
fi
if [ "${BENCH_ONLY:-}" = db ]; then
    printf '%s\n' "$DB_TABLE"
    exit 0
fi

# ----------------------------------------------------------------- file copy and forwarding
# ${BENCH_COPY_MB:-$MB} MiB to the leaf's node: tsh scp, and stock scp (SFTP mode) and sftp through
# `tsh config`, against OpenSSH's scp and sftp direct and through two jumps (its fastest cipher
# on every hop; the stock clients through tsh config use it too). A -L forward moving the same
# through the leaf against ssh -L direct. Median of $XFERS each. The node's peak memory while
# copying: the leaf process's and each SFTP child's (sampled every 0.1 s).
COPY_MB="${BENCH_COPY_MB:-$MB}"
COPY_TABLE="(not measured: this tsh has no scp)"; COPY_MEM="not measured"
if [ "${BENCH_COPY:-1}" = 0 ]; then
    log "file copy and forwarding: skipped (BENCH_COPY=0)"
elif tsh scp --help >/dev/null 2>&1; then
log "file copy and forwarding: median of $XFERS x $COPY_MB MiB"
head -c "$((COPY_MB * 1024 * 1024))" /dev/zero >"$W/copy.bin"
tsh config >"$W/tsh_ssh_config"
{ printf 'Host *\n  Ciphers %s\n  BatchMode yes\n' "$FAST"; cat "$W/tsh_ssh_config"; } >"$W/tsh_ssh_config_fast"
LEAF_NODE=root@bench-leaf-node.bench-leaf
copy_rate() { # command... : the median MiB/s of $XFERS runs, each moving $COPY_MB MiB
    local i t0
    for i in $(seq 1 "$XFERS"); do
        rm -f /tmp/tp-bench-copy.bin "$W/copy.back"
        t0=$(now)
        if ! "$@" >"$W/copy.out" 2>&1; then log "  failed: $* ($(tail -1 "$W/copy.out"))"; echo 0; continue; fi
        awk -v mb="$COPY_MB" -v s="$(elapsed "$t0")" 'BEGIN { printf "%.1f\n", mb / s }'
    done | median
}
printf 'put %s /tmp/tp-bench-copy.bin\n' "$W/copy.bin" >"$W/put.batch"
: >"$W/sampling"
sample_children() {
    local max=0 p r
    while [ -f "$W/sampling" ]; do
        for p in $(pgrep -f 'teleport sftp$' || true); do
            r=$(rss_kib "$p" 2>/dev/null || echo 0)
            [ "${r:-0}" -gt "$max" ] && max=$r
        done
        sleep 0.1
    done
    echo "$max" >"$W/child.peak"
}
sample_children &
SAMPLER=$!
HWM0=$(awk '/VmHWM/ { print $2 }' "/proc/$LPID/status")
CS_A=$(copy_rate scp -F "$W/ssh_config_fast" -q "$W/copy.bin" direct:/tmp/tp-bench-copy.bin); log "  OpenSSH scp direct: $CS_A MiB/s"
CS_B=$(copy_rate scp -F "$W/ssh_config_fast" -q "$W/copy.bin" viajumps:/tmp/tp-bench-copy.bin); log "  OpenSSH scp, two jumps: $CS_B MiB/s"
CF_A=$(copy_rate sftp -q -F "$W/ssh_config_fast" -b "$W/put.batch" direct); log "  OpenSSH sftp direct: $CF_A MiB/s"
CF_B=$(copy_rate sftp -q -F "$W/ssh_config_fast" -b "$W/put.batch" viajumps); log "  OpenSSH sftp, two jumps: $CF_B MiB/s"
CT_U=$(copy_rate tsh scp -q --cluster=bench-leaf "$W/copy.bin" root@bench-leaf-node:/tmp/tp-bench-copy.bin); log "  tsh scp to the leaf's node: $CT_U MiB/s"
cp "$W/copy.bin" /tmp/tp-bench-source.bin # the node's file to download (on this machine: the leaf's node)
CT_D=$(copy_rate tsh scp -q --cluster=bench-leaf root@bench-leaf-node:/tmp/tp-bench-source.bin "$W/copy.back"); log "  tsh scp from the leaf's node: $CT_D MiB/s"
CO_S=$(copy_rate scp -F "$W/tsh_ssh_config_fast" -q "$W/copy.bin" "$LEAF_NODE:/tmp/tp-bench-copy.bin"); log "  stock scp through tsh config: $CO_S MiB/s"
CO_F=$(copy_rate sftp -q -F "$W/tsh_ssh_config_fast" -b "$W/put.batch" "$LEAF_NODE"); log "  stock sftp through tsh config: $CO_F MiB/s"
rm -f "$W/sampling"; wait "$SAMPLER" 2>/dev/null || true
HWM1=$(awk '/VmHWM/ { print $2 }' "/proc/$LPID/status")
CHILD_PEAK=$(cat "$W/child.peak" 2>/dev/null || echo 0)
log "  leaf process peak RSS $((HWM0 / 1024)) -> $((HWM1 / 1024)) MiB; SFTP child peak $((CHILD_PEAK / 1024)) MiB"
rm -f /tmp/tp-bench-copy.bin /tmp/tp-bench-source.bin "$W/copy.back"
"$REPO/bench/tcpcopy.py" sink 127.0.0.51 6000 & PIDS+=($!)
wait_until 10 python3 -c 'import socket; socket.create_connection(("127.0.0.51", 6000)).close()'
forward_rate() { # listen-port command... : the median MiB/s through a forward started by the command
    local port="$1" i t0 fpid; shift
    "$@" >"$W/fwd.log" 2>&1 & fpid=$!
    wait_until 30 python3 -c "import socket; socket.create_connection(('127.0.0.50', $port)).close()" || { log "  forward did not come up: $(tail -2 "$W/fwd.log")"; echo 0; kill "$fpid"; return; }
    for i in $(seq 1 "$XFERS"); do
        t0=$(now)
        "$REPO/bench/tcpcopy.py" send 127.0.0.50 "$port" "$COPY_MB" || { echo 0; continue; }
        awk -v mb="$COPY_MB" -v s="$(elapsed "$t0")" 'BEGIN { printf "%.1f\n", mb / s }'
    done | median
    kill "$fpid" 2>/dev/null || true; wait "$fpid" 2>/dev/null || true
}
FL_A=$(forward_rate 6001 "${SSHF[@]}" -N -L 127.0.0.50:6001:127.0.0.51:6000 direct); log "  ssh -L direct: $FL_A MiB/s"
FL_T=$(forward_rate 6002 tsh ssh --cluster=bench-leaf -N -L 127.0.0.50:6002:127.0.0.51:6000 root@bench-leaf-node); log "  tsh ssh -L through the leaf: $FL_T MiB/s"
COPY_TABLE="| what | MiB/s | × OpenSSH direct | × OpenSSH two jumps |
|---|---|---|---|
| OpenSSH scp direct | $CS_A | 1.00 | |
| OpenSSH scp, two jumps | $CS_B | $(ratio "$CS_B" "$CS_A") | 1.00 |
| OpenSSH sftp direct (put) | $CF_A | 1.00 | |
| OpenSSH sftp, two jumps (put) | $CF_B | $(ratio "$CF_B" "$CF_A") | 1.00 |
| tsh scp to the leaf's node | $CT_U | $(ratio "$CT_U" "$CS_A") vs scp | $(ratio "$CT_U" "$CS_B") vs scp |
| tsh scp from the leaf's node | $CT_D | $(ratio "$CT_D" "$CS_A") vs scp | $(ratio "$CT_D" "$CS_B") vs scp |
| stock scp through tsh config to the leaf's node | $CO_S | $(ratio "$CO_S" "$CS_A") | $(ratio "$CO_S" "$CS_B") |
| stock sftp through tsh config (put) | $CO_F | $(ratio "$CO_F" "$CF_A") | $(ratio "$CO_F" "$CF_B") |
| ssh -L direct | $FL_A | 1.00 | |
| tsh ssh -L through the leaf's node | $FL_T | $(ratio "$FL_T" "$FL_A") | |"
COPY_MEM="leaf process (proxy and node) peak RSS $((HWM0 / 1024)) MiB before the copies, $((HWM1 / 1024)) MiB after; each SFTP child (the login's process) at most $((CHILD_PEAK / 1024)) MiB"
else
    log "file copy and forwarding: skipped (this tsh has no scp)"
fi
if [ "${BENCH_ONLY:-}" = copy ]; then
    printf '%s\n' "$COPY_TABLE"
    exit 0
fi

# ----------------------------------------------------------------- profile
# Where each process on path (d) spends its CPU: perf samples (999 Hz, no call graphs) of tsh,
# the root and the leaf during one transfer, top symbols by own time.
PROF_MB="${BENCH_PROFILE_MB:-512}"
PROFILE_ROWS=""
if command -v perf >/dev/null 2>&1 || { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends linux-perf >/dev/null 2>&1 && command -v perf >/dev/null 2>&1; }; then
    log "profile: perf record of path (d), $PROF_MB MiB"
    perf record -q -F 999 -o "$W/root.perf" -p "$RPID" 2>>"$W/perf.log" & PR=$!
    perf record -q -F 999 -o "$W/leaf.perf" -p "$LPID" 2>>"$W/perf.log" & PL=$!
    sleep 1
    head -c "$((PROF_MB * 1024 * 1024))" /dev/zero | perf record -q -F 999 -o "$W/tsh.perf" -- "${TSH_D[@]}" 'cat > /dev/null' 2>>"$W/perf.log"
    kill -INT "$PR" "$PL"; wait "$PR" "$PL" 2>/dev/null || true
    # "pct% symbol" for the top symbols of one recording ([k] kernel, [.] user space).
    top_symbols() {
        perf report -i "$1" --no-children --sort sym --stdio 2>/dev/null |
            awk '/^ +[0-9.]+%/ && n < 12 { pct = $1; $1 = ""; sub(/^ +/, ""); print pct " " $0; n++ }'
    }
    for who in tsh root leaf; do
        top_symbols "$W/$who.perf" >"$W/$who.top"
        log "  $who: $(head -3 "$W/$who.top" | paste -sd';' -)"
    done
    PROFILE_ROWS="$(paste -d'|' "$W/tsh.top" "$W/root.top" "$W/leaf.top" | awk -F'|' '{ printf "| %s | %s | %s |\n", $1, $2, $3 }')"
else
    log "profile: perf is not installed (apt-get install linux-perf); skipped"
fi

if [ -n "${BENCH_QUICK:-}" ]; then
    log "quick run: (a) $TA (b1) $TB1 (b) $TB (c) $TC (d) $TD MiB/s"
    log "  CPU s/GiB: (b) $(sum "$CBc" "$CBj1" "$CBj2" "$CBs") [ssh $CBc] (c) tsh $CCc root $CCr (d) tsh $CDc root $CDr leaf $CDl = $(sum "$CDc" "$CDr" "$CDl")"
    log "  keystroke p50/p99 ms: (b1) $KB1/$KB19 (b) $KB/$KB9 (c) $KC/$KC9 (d) $KD/$KD9"
    if [ -n "${CT_U:-}" ]; then
        log "  copy MiB/s: tsh scp up $CT_U down $CT_D, stock scp $CO_S, sftp $CO_F via tsh config; OpenSSH scp direct $CS_A, two jumps $CS_B; sftp $CF_A / $CF_B"
        log "  -L MiB/s: tsh through the leaf $FL_T, ssh direct $FL_A; $COPY_MEM"
    fi
    exit 0
fi

# ----------------------------------------------------------------- levers
# Each transport choice switched off in turn (shared::tuning's unstable overrides, set for the
# root, the leaf, its node and tsh alike), against a default run measured the same way.
LEVER_MB="${BENCH_LEVER_MB:-256}"
restart_pair() { # env...
    local d p
    for d in "$R" "$L"; do
        p=$(cat "$d/pid"); kill "$p" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$p" 2>/dev/null; then
            log "  $d did not stop in 10s (see its teleport.log); killing it"
            kill -9 "$p" 2>/dev/null || true; sleep 0.5
        fi
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
lever "SSH read-ahead off (two reads per packet)" TELEPORT_UNSTABLE_SSH_READAHEAD=false
restart_pair

# ----------------------------------------------------------------- offline detection
log "offline detection (keep_alive_interval 1s x 3)"
kill -9 "$(cat "$L/pid")"
T0=$(now)
wait_until 30 sh -c "${RT[*]} get rc/bench-leaf --format=json | grep -q '\"offline\"'"
OFFLINE=$(elapsed "$T0")
log "  offline after ${OFFLINE}s"

# ----------------------------------------------------------------- scale and HA
# Their own scripts (each runnable alone), on this run's binaries, with this run's clusters and
# sshds stopped first: bench/scale.sh (one root, up to 50,000 leaves), bench/ha-tunnels.sh (a
# root of two processes on PostgreSQL, 10,000 leaves tunnelled to both) and bench/ha.sh (SQLite
# and PostgreSQL side by side). BENCH_SCALE=0 / BENCH_HA=0 skip them (their last reports stay).
for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
sleep 2
if [ "${BENCH_SCALE:-}" != 0 ]; then
    log "scale: bench/scale.sh"
    BENCH_BIN="$BIN" "$REPO/bench/scale.sh" || log "bench/scale.sh failed; BENCHMARKS.md keeps its last report"
fi
if [ "${BENCH_HA:-1}" != 0 ]; then
    log "HA: bench/ha-tunnels.sh and bench/ha.sh"
    BENCH_BIN="$BIN" "$REPO/bench/ha-tunnels.sh" || log "bench/ha-tunnels.sh failed; BENCHMARKS.md keeps its last report"
    BENCH_BIN="$BIN" "$REPO/bench/ha.sh" || log "bench/ha.sh failed; BENCHMARKS.md keeps its last report"
fi

# ----------------------------------------------------------------- report
CPU="$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)"
AES="$(grep -qw aes /proc/cpuinfo && echo yes || echo no)"
OSSH="$(ssh -V 2>&1)"
TABLE="| path | ciphers negotiated | MiB/s | × peer | connect median ms | p90 ms | × peer (median) |
|---|---|---|---|---|---|---|
| (a0) OpenSSH direct, its default | $NA0 | $TA0 | | | | |
| (a) OpenSSH direct, fastest cipher | $NA | $TA | 1.00 | $LA | $LA9 | 1.00 |
| (b1) OpenSSH -J jump1 (one hop) | $NB1 | $TB1 | 1.00 | $LB1 | $LB19 | 1.00 |
| (b) OpenSSH -J jump1,jump2 | $NB | $TB | 1.00 | $LB | $LB9 | 1.00 |
| (c) tsh ssh, same cluster (one proxy hop) | tsh's order (AES-GCM first) | $TC | $(ratio "$TC" "$TB1") vs (b1) | $LC | $LC9 | $(ratio "$LC" "$LB1") vs (b1) |
| (d) tsh ssh --cluster=leaf (two proxy hops) | tsh's order (AES-GCM first) | $TD | $(ratio "$TD" "$TB") vs (b), $(ratio "$TD" "$TA") vs (a) | $LD | $LD9 | $(ratio "$LD" "$LB") vs (b) |"
KEY_TABLE="| path | keystroke echo p50 ms | p99 ms | × peer (p50) |
|---|---|---|---|
| (a) OpenSSH direct | $KA | $KA9 | |
| (b1) OpenSSH one jump | $KB1 | $KB19 | 1.00 |
| (b) OpenSSH two jumps | $KB | $KB9 | 1.00 |
| (c) tsh ssh, same cluster | $KC | $KC9 | $(ratio "$KC" "$KB1") vs (b1) |
| (d) tsh ssh --cluster=leaf | $KD | $KD9 | $(ratio "$KD" "$KB") vs (b) |"
CPU_TABLE="| path | client | servers on the path | total CPU s/GiB |
|---|---|---|---|
| (a0) OpenSSH direct, default | ssh $CA0c | sshd $CA0s | $(sum "$CA0c" "$CA0s") |
| (a) OpenSSH direct, fastest | ssh $CAc | sshd $CAs | $(sum "$CAc" "$CAs") |
| (b1) one jump | ssh $CB1c | jump sshd $CB1j, sshd $CB1s | $(sum "$CB1c" "$CB1j" "$CB1s") |
| (b) two jumps | ssh $CBc | jump1 sshd $CBj1, jump2 sshd $CBj2, sshd $CBs | $(sum "$CBc" "$CBj1" "$CBj2" "$CBs") |
| (c) tsh, same cluster | tsh $CCc | root (proxy and node) $CCr | $(sum "$CCc" "$CCr") |
| (d) tsh --cluster=leaf | tsh $CDc | root proxy $CDr, leaf (proxy and node) $CDl | $(sum "$CDc" "$CDr" "$CDl") |"
PROFILE_TABLE="| tsh (client) | root (proxy) | leaf (proxy and node) |
|---|---|---|
$PROFILE_ROWS"
LEVER_TABLE="| setting (every hop of path (d)) | MiB/s | × defaults | connect median ms | p90 ms | × defaults (median) |
|---|---|---|---|---|---|
$LEVER_ROWS"
SSH_RUNS_TABLE="| run | (c) MiB/s × (a) | (d) MiB/s × (a) | (c) CPU/GiB × (a) | (d) CPU/GiB × (a) | keystroke p50 ms (c) / (b1) | p99 (c) / (b1) | p50 (d) / (b) | p99 (d) / (b) |
|---|---|---|---|---|---|---|---|---|
$SSH_RUN_ROWS"
echo
echo "$TABLE"
echo
echo "$CPU_TABLE"
echo
echo "$KEY_TABLE"
echo
echo "$COPY_TABLE"
echo
echo "$KUBE_TABLE"
echo "$APP_TABLE"
echo
echo "$DB_TABLE"
echo
echo "$LEVER_TABLE"
echo "$SSH_RUNS_TABLE"
echo "offline detected after ${OFFLINE}s (keep_alive_interval 1s × keep_alive_count_max 3)"

{
    cat <<MD
# Benchmarks

Generated by \`./bench/run.sh\` on $(date -u +%Y-%m-%d) — the SSH paths in $SSH_RUNS runs (each: median of $XFERS transfers of
$MB MiB, $RUNS connects and $KEY_ROUNDS keystroke rounds per path), every number below their median.
Everything on loopback on one machine.

- Machine: $(nproc) cores, $CPU (AES-NI: $AES), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM
- $(teleport version)
- File descriptors: soft limit $FDLIM (raised to the hard limit by the script, as teleport does
  for itself at start). A root holds one per leaf tunnel and one per connection or session,
  and lowers \`max_connections\` to what the limit allows, with a warning: the common default of
  1024 would allow about 1,000 leaves with nothing else open, so the systemd unit in
  \`examples/systemd\` sets \`LimitNOFILE=524288\` as Teleport's scaling guide advises.
- $OSSH; its default cipher here: ${CIPHER:-unknown}; its fastest here: $FAST (probed direct, median of 3 interleaved transfers of $PROBE_MB MiB: $PROBE_TEXT); tsh prefers AES-GCM

## Throughput and connect latency

$TABLE

OpenSSH rows use its fastest cipher on this machine for every hop (\`Ciphers\`), (a0) its
default. Each path is compared with the OpenSSH path of the same shape: (c), one proxy hop, with
(b1) one jump host; (d), two proxy hops (root and leaf), with (b) two jump hosts, and with (a)
direct. Latency is process start to exit of \`... true\`, including key loading and every
handshake.

The jump baselines move a lot between runs on a shared virtual machine: a report of one jump
slower than two (187 against 205 MiB/s, 2026-12-03) did not reproduce. Checked on 2026-12-07
(512 MiB per run, 3 rounds, \`aes128-gcm\` on every hop): \`-J\` through one sshd 295 / 300 / 240
MiB/s against \`ProxyCommand ssh -W\` 307 / 245 / 244 (OpenSSH implements \`ProxyJump\` as that
command, so the two are one path), two jumps 216 / 213 / 223, direct 492 / 398 / 535; the jump
sshd spent 0.82–0.88 s of CPU per GiB either way. One jump is faster than two in every round; a
single round's ±20 % is the machine, which is why every number here is the median of
$SSH_RUNS runs, each run's ratios below, and bench/history.md keeps earlier runs.

Each run's ratios against OpenSSH direct at its fastest cipher (a), and the keystroke echo of
(c) and (d) beside OpenSSH through one (b1) and two (b) jumps (targets: (c) ≥ 0.95×, (d) ≥ 0.8×
in MiB/s; CPU per GiB, all processes on the path, (c) ≤ 1.3×, (d) ≤ 1.5×; keystrokes no slower
than the jumps):

$SSH_RUNS_TABLE

What bounds these: MiB/s, the two cores. Every hop decrypts and encrypts each byte (AES-GCM, the
largest user-space symbols of every process in the profile below) and the kernel copies it
through a socket per hop; with three or four busy processes on two cores the scheduler's
switches (\`finish_task_switch\`, first in every column) are the rest. OpenSSH's jumps pay the
same per hop, in processes that each run one connection. Connect: process start, key loading
and one SSH handshake per hop (tsh: TLS to the proxy, then SSH inside it); its p90 is the
machine's scheduling.

## Interactive latency

One keystroke typed into \`cat\` on a remote PTY until its echo comes back, $KEYS keystrokes one at
a time (\`bench/keystroke.py\`; the local terminal is raw, so every echo is the remote one), in
$KEY_ROUNDS rounds that take the paths in turn; p50 and p99 are each path's medians over its rounds.

$KEY_TABLE

What bounds these: one wake-up of each process on the way, twice (a PTY write and its echo); a
hop adds a socket hand-off and a task wake-up each way, about 0.05 ms here, and p99 is when a
hop's process had to wait for a core.

## Where the CPU goes

CPU seconds per GiB moved, from \`/proc/<pid>/stat\` (user + system, with the children each
process reaped: sshd's session processes, the node's \`cat\`), over all $XFERS transfers. The
client column is this script's reaped children: the client and the \`head\` feeding it.

$CPU_TABLE

## Copying files and forwarding ports

$COPY_MB MiB of zeros uploaded (and, for tsh, downloaded) to the leaf's node, median of $XFERS
transfers; OpenSSH's clients use its fastest cipher on every hop, through \`tsh config\` too. The
forwarding rows move the same through \`-L\` to a TCP sink the node (or sshd) dials
(\`bench/tcpcopy.py\`). Memory: $COPY_MEM.

$COPY_TABLE

What bounds these: scp and SFTP upload are bounded like (d) above, plus, for stock clients
through \`tsh config\`, a \`tsh proxy ssh\` process relaying every byte between \`ssh\` and the
root; SFTP waits on its requests in flight (OpenSSH's 64 of 32 KiB). \`-L\` adds the sink's and
the client's socket copies to path (d).

## Kubernetes

The real \`kubectl\` against the stand-in API server of the tests (\`tests/src/bin/kube-standin.rs\`:
no real one installs on these machines), straight to it with its admin kubeconfig, and through
the root and the leaf with the kubeconfig \`tsh kube login --cluster=bench-leaf\` wrote (each
kubectl run also runs \`tsh kube credentials\`, answered from its cache). \`get pods\`: $KUBE_RUNS
calls per path, taken in turn, each a new kubectl process; \`exec\`: median of $XFERS runs of
\`kubectl exec web -- head -c $KUBE_MB MiB /dev/zero\`.

$KUBE_TABLE

What bounds these: \`get pods\` is mostly kubectl itself (its start and its exec of \`tsh kube
credentials\`, ~40 ms either way); the root and the leaf add two TLS hops on a reused
connection. \`exec\` moves its output in WebSocket frames through both hops, each re-framed and
re-encrypted like SSH in (d).

## Applications

\`wrk\` for ${APP_SECS} s per row against Apache's static 1 KiB page: directly, and through
\`tsh proxy app\` (the local listener that adds the app certificate), the root proxy, the leaf's
reverse tunnel and the leaf's app service, which checks the certificate once per connection and
signs a JWT into every request (cached per connection until a minute before it ends). 1 and
32 connections; requests/s, p50 and p99 latency.

$APP_TABLE

What bounds these: the hops, on two cores. With 32 connections the cores are saturated by five
processes per request (wrk, tsh, root, leaf, Apache) against two direct; each request crosses
four sockets more each way, and the profiles' first kernel symbols are those sends and the
wake-ups they cause. The last column is the floor: the same requests through three HAProxy
processes that only relay TCP (no TLS, no HTTP, no audit) reach ${APP_F32}× direct at 32
connections here, what any path through three more processes can hope for on this machine
(the 0.5× target is beyond it when that is under 0.5); ours is judged against that floor.
At one connection it is the latency of the hops. CPU per request in the 32-connection through
run: ${APP_CPU}. Apache spends more per request through any path than direct: its requests come
slower, so it wakes for more of them.

## Databases

\`pgbench\` against Debian's PostgreSQL (scale 10): directly with TLS, and through \`tsh proxy db\`
(the local listener that adds the database certificate), the root proxy, the leaf's reverse
tunnel and the leaf's database service, which checks the user and database of every
\`StartupMessage\`, connects with TLS and a client certificate from the leaf's \`db\` CA (kept per
user until shortly before it ends) and writes a \`db.session.query\` event for every query.
Select-only (\`-S\`) at 8 clients for ${DB_SECS} s per path; the time to connect is pgbench's
average with a new connection per transaction (\`-C\`, ${DB_CONNECTS} of them).

$DB_TABLE

What bounds these: as for applications, a select crosses five processes each way where direct
crosses two, on two cores. CPU per transaction in the through run: $DB_CPU
(the leaf decrypts SSH, reads the messages, audits the query and writes TLS to PostgreSQL;
most of each is the kernel's loopback sends and wake-ups). The floor column, three HAProxy
processes relaying pgbench's own TLS, reaches $(ratio "${DB_F:-0}" "${DB_D:-0}")× direct here:
the 0.6× target is beyond any path through three more processes on this machine while that
is under 0.6. Connect adds the certificate checks and a TLS handshake per hop.

## Where the time goes, by function

\`perf record\` (999 Hz) of tsh, the root and the leaf during one more transfer of $PROF_MB MiB on
path (d): the symbols with the most samples of their own (\`[k]\` kernel, \`[.]\` user space),
as a share of each process's samples. Read with the CPU table above: a share of a process that
costs little matters less than one of a process that costs much.

$PROFILE_TABLE

## What each transport choice buys

Path (d) again, with one choice at a time switched off on every hop (root, leaf, leaf node and
tsh) through \`shared::tuning\`'s unstable overrides; the root and leaf are restarted for each row,
the defaults row included, and warmed up with three connections. Median of $XFERS transfers of
$LEVER_MB MiB, $RUNS connects.

$LEVER_TABLE
## Offline detection

A leaf killed with \`kill -9\` was shown offline on the root after **${OFFLINE}s**
(keep_alive_interval 1s × keep_alive_count_max 3).

MD
    # Scale, the tunnels of a root of two processes and the storage comparison, from
    # ./bench/scale.sh, ./bench/ha-tunnels.sh and ./bench/ha.sh (run above, or kept from their
    # last run when skipped).
    for f in scale.md ha-tunnels.md ha.md; do
        if [ -f "$REPO/bench/$f" ]; then cat "$REPO/bench/$f"; echo; fi
    done
    cat "$REPO/bench/history.md"
} >"$REPO/BENCHMARKS.md"
log "wrote BENCHMARKS.md"
