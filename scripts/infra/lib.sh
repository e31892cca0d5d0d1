# lib.sh - helpers shared by the scripts in scripts/infra/ (sourced, never run).
# Paths (all overridable from the environment):
#   MLOPS_INFRA_CACHE   what is expensive to make and safe to keep: Kubernetes binaries, the base-image tarball
#                       (default /var/cache/mlops-desktop as root, else ~/.cache/mlops-desktop)
#   MLOPS_INFRA_STATE   what the running engines write: data roots, sockets, PKI, logs, pid files, env.sh
#                       (default /var/tmp/mlops-desktop-engines); removed by the down scripts (logs kept in .../logs)
# shellcheck shell=bash
if [ "$(id -u)" = 0 ]; then
  MLOPS_INFRA_CACHE=${MLOPS_INFRA_CACHE:-/var/cache/mlops-desktop}
else
  MLOPS_INFRA_CACHE=${MLOPS_INFRA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mlops-desktop}
fi
MLOPS_INFRA_STATE=${MLOPS_INFRA_STATE:-/var/tmp/mlops-desktop-engines}
MLOPS_INFRA_CACHE=$(realpath -m "$MLOPS_INFRA_CACHE")
MLOPS_INFRA_STATE=$(realpath -m "$MLOPS_INFRA_STATE")
export MLOPS_INFRA_CACHE MLOPS_INFRA_STATE
INFRA_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
K8S_VERSION=1.20.2
K8S_CACHE=$MLOPS_INFRA_CACHE/k8s-v$K8S_VERSION          # bin/ + .complete stamp
DOCKER_CLI=/usr/bin/docker                               # Debian's CLI, the same release as the engine
export DEBIAN_FRONTEND=noninteractive LC_ALL=C   # C collation: snapshots are sorted and compared with comm

_T0=$(date +%s.%N)
log() { printf '[%s %6.1fs] %s\n' "$(basename "$0" .sh)" "$(echo "$(date +%s.%N) - $_T0" | bc)" "$*" >&2; }
die() { printf '%s: %s\n' "$(basename "$0")" "$*" >&2; exit 1; }
need_root() { [ "$(id -u)" = 0 ] || die "must run as root ($1)"; }
elapsed() { echo "$(date +%s.%N) - $1" | bc | xargs printf '%.1f'; }

# timing lines collected by .ci/run: "TIMING <stage> <seconds> <cold|warm>"
timing() { echo "TIMING $1 $2 $3" >>"${MLOPS_INFRA_TIMINGS:-/dev/null}"; log "$1: $2 s ($3)"; }

wait_for() { # wait_for SECONDS CMD...: retry CMD every 0.3 s; 1 on timeout
  local end=$(( $(date +%s) + $1 )); shift
  until "$@" >/dev/null 2>&1; do [ "$(date +%s)" -ge "$end" ] && return 1; sleep 0.3; done
}

free_port() { # free_port [udp]: a port below 49152 (Swarm's data-path port must be) that nobody uses now
  python3 - "${1:-tcp}" <<'PY'
import random, socket, sys
kind = socket.SOCK_DGRAM if sys.argv[1] == "udp" else socket.SOCK_STREAM
for port in random.sample(range(20000, 49152), 200):
    with socket.socket(socket.AF_INET, kind) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        print(port)
        break
PY
}

# the apt mirror this machine uses (deb822 file first, then the classic sources.list); never written into the repo
apt_mirror() {
  local m
  m=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  [ -n "$m" ] || m=$(awk '$1=="deb" && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  [ -n "$m" ] || die "no Debian mirror found in /etc/apt/sources.list(.d)"
  echo "$m"
}

# running PID: the process exists and is no zombie (PID 1 of these VMs may reap late; a zombie has exited)
running() { [ -r "/proc/$1/stat" ] && ! awk '{exit !($3 == "Z" || $3 == "X")}' "/proc/$1/stat" 2>/dev/null; }

# pid_alive FILE PATTERN: the pid in FILE runs and its command line contains PATTERN (a recycled pid is not ours)
pid_alive() {
  [ -s "$1" ] || return 1
  local pid; pid=$(cat "$1")
  running "$pid" && { tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -F -- "$2" >/dev/null
}

# stop_pid NAME FILE PATTERN [SECONDS]: SIGTERM, wait, then SIGKILL; only our own process (see pid_alive)
stop_pid() {
  local name=$1 f=$2 pat=$3 secs=${4:-20} pid i
  if pid_alive "$f" "$pat"; then
    pid=$(cat "$f"); kill -TERM "$pid" 2>/dev/null
    for i in $(seq 1 $((secs * 5))); do running "$pid" || break; sleep 0.2; done
    if running "$pid"; then log "$name ($pid) ignored SIGTERM for ${secs}s: SIGKILL"; kill -KILL "$pid"; sleep 0.3; fi
    log "$name ($pid) stopped"
  fi
  rm -f "$f"
}

# start_daemon NAME PIDFILE LOG CMD...: start CMD in its own session, detached from our stdio
start_daemon() {
  local name=$1 pidf=$2 logf=$3; shift 3
  mkdir -p "$(dirname "$logf")"
  setsid "$@" >>"$logf" 2>&1 </dev/null &
  echo $! >"$pidf"
  log "$name started (pid $!)"
}

# unmount everything mounted at or below DIR, deepest first; prints how many mounts are left
umount_below() {
  local d m x i
  d=$(realpath -m "$1")
  for i in 1 2 3; do
    m=$(awk -v p="$d" '$5 == p || index($5, p "/") == 1 {print $5}' /proc/self/mountinfo | sort -r)
    [ -z "$m" ] && break
    for x in $m; do umount "$x" 2>/dev/null || umount -l "$x" 2>/dev/null || true; done
  done
  awk -v p="$d" '$5 == p || index($5, p "/") == 1' /proc/self/mountinfo | wc -l
}

# iptables chains matching REGEX created since the snapshot file SNAP (iptables-save output): jumps to them
# deleted, then flushed and removed. Chains that existed in SNAP are left alone. One iptables-restore per table.
remove_new_chains() { # remove_new_chains SNAP REGEX [FAMILY]
  local snap=$1 re=$2 fam=${3:-iptables} t was ours alt
  command -v "$fam-restore" >/dev/null || return 0
  for t in filter nat mangle raw; do
    was=$(awk -v t="*$t" '/^\*/{in_t=($0==t)} in_t && /^:/{print substr($1,2)}' "$snap" 2>/dev/null)
    ours=$($fam-save -t "$t" 2>/dev/null | awk '/^:/{print substr($1,2)}' | grep -E "$re" | grep -vxF "${was:-@none@}" || true)
    [ -n "$ours" ] || continue
    alt=$(echo $ours | tr ' ' '|')
    { echo "*$t"
      $fam -t "$t" -S | grep -E -- "-j ($alt)( |$)" | grep -vE "^-A ($alt) " | sed 's/^-A/-D/'
      for c in $ours; do echo "-F $c"; done
      for c in $ours; do echo "-X $c"; done
      echo COMMIT; } | $fam-restore --noflush 2>/dev/null && continue
    log "$fam-restore refused the batch for table $t: removing one rule at a time"
    $fam -t "$t" -S | grep -E -- "-j ($alt)( |$)" | grep -vE "^-A ($alt) " | sed 's/^-A/-D/' |
      while read -r r; do eval "$fam -t $t $r" || true; done
    for c in $ours; do $fam -t "$t" -F "$c" 2>/dev/null || true; done
    for c in $ours; do $fam -t "$t" -X "$c" 2>/dev/null || true; done
  done
}

# delete every rule (in every table) whose text matches REGEX, e.g. a bridge name or a subnet of ours
remove_rules_matching() { # remove_rules_matching REGEX [FAMILY]
  local re=$1 fam=${2:-iptables} t rules
  command -v "$fam-restore" >/dev/null || return 0
  for t in filter nat mangle raw; do
    rules=$($fam -t "$t" -S 2>/dev/null | grep '^-A ' | grep -E -- "$re" | sed 's/^-A/-D/' || true)
    [ -n "$rules" ] || continue
    printf '*%s\n%s\nCOMMIT\n' "$t" "$rules" | $fam-restore --noflush 2>/dev/null && continue
    echo "$rules" | while read -r r; do eval "$fam -t $t $r" 2>/dev/null || true; done
  done
}

# the one-set-of-engines-per-host lock: engines bind fixed host resources (kubelet paths, the node IP, bridges)
ENGINE_LOCK=${MLOPS_INFRA_LOCK:-/run/lock/mlops-desktop-engines.lock}
ENGINE_OWNER=$ENGINE_LOCK.owner   # holds the MLOPS_INFRA_STATE of the engines that run now

state_alive() { # state_alive STATE: one of the daemons recorded under STATE still runs
  local f
  for f in "$1"/*/*.pid "$1"/*/node/*.pid; do
    [ -s "$f" ] && pid_alive "$f" "$1" && return 0
  done
  return 1
}

# claim_host: make this MLOPS_INFRA_STATE the owner of the host's engines. Another live owner -> refuse (exit 3);
# a dead one (a killed session) is torn down first with its own state, so its host changes are undone.
claim_host() {
  mkdir -p "$(dirname "$ENGINE_LOCK")"
  exec 9>"$ENGINE_LOCK"
  flock -w 120 9 || die "could not lock $ENGINE_LOCK"
  local owner; owner=$(cat "$ENGINE_OWNER" 2>/dev/null || true)
  if [ -n "$owner" ] && [ "$owner" != "$MLOPS_INFRA_STATE" ]; then
    if state_alive "$owner"; then
      echo "engines of $owner already run on this host; use them (source $owner/env.sh) or stop them" \
           "(MLOPS_INFRA_STATE=$owner bash $INFRA_DIR/down.sh)" >&2
      exec 9>&-; exit 3
    fi
    log "stale engines of $owner (nothing runs): tearing them down first"
    MLOPS_INFRA_STATE=$owner bash "$INFRA_DIR/down.sh" >&2 || true
  fi
  echo "$MLOPS_INFRA_STATE" >"$ENGINE_OWNER"
  exec 9>&-
}

# reap_stale: the engines of a dead owner (a killed session), torn down with their own state so their host changes
# are undone; a live owner is left alone. .ci/run calls it before recording the host, so that the teardown inside
# claim_host does not show up as a change the suite made.
reap_stale() {
  local owner; owner=$(cat "$ENGINE_OWNER" 2>/dev/null || true)
  [ -n "$owner" ] && [ "$owner" != "$MLOPS_INFRA_STATE" ] || return 0
  state_alive "$owner" && return 0
  log "stale engines of $owner (nothing runs): tearing them down before the host is recorded"
  MLOPS_INFRA_STATE=$owner bash "$INFRA_DIR/down.sh" >&2 || true
}

# owns_host: no engines run here, or they are this state's (down scripts touch the host only then)
owns_host() {
  local owner; owner=$(cat "$ENGINE_OWNER" 2>/dev/null || true)
  [ -z "$owner" ] || [ "$owner" = "$MLOPS_INFRA_STATE" ] || ! state_alive "$owner"
}

release_host() { # release_host: drop the ownership if it is ours
  [ "$(cat "$ENGINE_OWNER" 2>/dev/null)" = "$MLOPS_INFRA_STATE" ] && rm -f "$ENGINE_OWNER"
  return 0
}

# ---- host state: what the engines change, recorded before the first start and restored by the down scripts ----
# sysctl keys that move by themselves (counters, entropy, pids): never compared, never restored
VOLATILE_SYSCTL='^(fs\.(dentry-state|inode-nr|inode-state|file-nr|quota\.)|kernel\.(random\.|ns_last_pid|pty\.nr|tainted|sched_domain)|net\.netfilter\.nf_conntrack_count|net\.ipv4\.(tcp_mem|udp_mem)|vm\.(stat_interval|nr_)|dev\.cdrom|fs\.binfmt_misc)'

# paths the engines create whatever their configuration says (kubelet 1.20, containerd 1.6 shims, dockerd plugins)
HARDCODED_PATHS="/var/log/pods /var/log/containers /var/lib/kubelet /var/lib/kubelet/device-plugins /run/containerd
 /run/containerd/s /run/docker /run/docker/plugins /etc/docker /etc/docker/key.json /var/lib/docker /var/lib/containerd"

# rm_new_cgroups NAME: the cgroup NAME in every v1 hierarchy (and v2), deepest first, where it did not exist before
rm_new_cgroups() {
  local d
  for d in /sys/fs/cgroup/*/"$1" /sys/fs/cgroup/"$1"; do
    [ -d "$d" ] || continue
    grep -qxF "$d" "$MLOPS_INFRA_STATE/host-before/cgroups" 2>/dev/null && continue
    find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
  done
  return 0
}

# rmdir_new PATH...: remove each (empty) directory that did not exist before the first up
rmdir_new() {
  local p
  for p in "$@"; do
    grep -qxF "$p" "$MLOPS_INFRA_STATE/host-before/paths" 2>/dev/null && continue
    [ -d "$p" ] && rmdir "$p" 2>/dev/null
  done
  return 0
}

# iptables-save lists a table once anything touched it (nf_tables backend), even when it holds nothing: a table
# with only its built-in chains, every policy ACCEPT and no rule filters nothing and is left out, so "never used"
# and "used and cleaned up" compare equal. Any rule, chain or non-ACCEPT policy keeps the table in.
drop_idle_tables() {
  awk '/^\*/ {buf=$0 "\n"; idle=1; next}
       /^COMMIT/ {buf=buf $0 "\n"; if (!idle) printf "%s", buf; buf=""; next}
       /^:/ {buf=buf $0 "\n"; if ($2 != "ACCEPT" || $1 !~ /^:(INPUT|FORWARD|OUTPUT|PREROUTING|POSTROUTING)$/) idle=0; next}
       {buf=buf $0 "\n"; idle=0}'
}

# rmtree_new PATH...: remove each path (a whole tree) that did not exist before the first up
rmtree_new() {
  local p
  for p in "$@"; do
    grep -qxF "$p" "$MLOPS_INFRA_STATE/host-before/paths" 2>/dev/null && continue
    [ -e "$p" ] && rm -rf --one-file-system "$p"
  done
  return 0
}

# host_snapshot DIR: iptables/ip6tables (rules, chains, policies; no counters), sysctls, mounts, addresses, links,
# routes, top-level cgroups, the kubelet's hard-coded host paths
host_snapshot() {
  local d=$1 f
  rm -rf "$d.part"; mkdir -p "$d.part"
  (
    set +e +o pipefail   # a missing path or an empty grep is a fact to record, not an error
    cd "$d.part"
    for f in iptables ip6tables; do
      if command -v "$f-save" >/dev/null; then
        "$f-save" 2>/dev/null | sed -e '/^#/d' -e 's/ \[[0-9]*:[0-9]*\]$//' -e 's/\[[0-9]*:[0-9]*\] //' | drop_idle_tables >"$f"
      else : >"$f"; fi
    done
    sysctl -a 2>/dev/null | grep -vE "$VOLATILE_SYSCTL" | sort >sysctl
    awk '{print $5, $4, $9, $10}' /proc/self/mountinfo | sort >mounts
    ip -o addr show | awk '{$1=""; print}' | sed 's/valid_lft.*//' | sort >addresses
    ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | sort >links
    { ip route show table all; ip rule show; } 2>/dev/null | sort >routes
    ls -d /sys/fs/cgroup/*/* 2>/dev/null | grep -vE '/cgroup\.|/(tasks|notify_on_release|release_agent)$|/(cpu|cpuacct|cpuset|memory|blkio|pids|devices|freezer|net_cls|net_prio|perf_event|hugetlb|rdma|misc|io)\.' | sort >cgroups
    ls -d $HARDCODED_PATHS 2>/dev/null | sort >paths
    cat /proc/sys/net/ipv4/ip_forward >ip_forward
  )
  [ -s "$d.part/sysctl" ] || die "could not record the host state (sysctl -a gave nothing)"
  rm -rf "$d"; mv "$d.part" "$d"
}

# host_compare BEFORE AFTER: prints every difference; 1 if any
host_compare() {
  local a=$1 b=$2 rc=0 f
  for f in iptables ip6tables sysctl mounts addresses links routes cgroups paths; do
    if ! diff -u "$a/$f" "$b/$f" >"$b/$f.diff" 2>&1; then
      echo "host changed: $f" >&2; sed -n '3,60p' "$b/$f.diff" >&2; rc=1
    else rm -f "$b/$f.diff"; fi
  done
  return $rc
}

# host_record: the snapshot the down scripts restore towards, taken once per MLOPS_INFRA_STATE (before anything runs)
host_record() { [ -s "$MLOPS_INFRA_STATE/host-before/sysctl" ] || host_snapshot "$MLOPS_INFRA_STATE/host-before"; }

# host_restore: sysctls that differ from the recorded ones are set back; the FORWARD policies too
host_restore() {
  local before=$MLOPS_INFRA_STATE/host-before k v p c fam
  [ -s "$before/sysctl" ] || return 0
  # only the keys whose value differs now (one `sysctl -a`, not one call per key)
  sysctl -a 2>/dev/null | grep -vE "$VOLATILE_SYSCTL" | sort | comm -23 "$before/sysctl" - |
    while IFS= read -r line; do
      k=${line%% = *}; v=${line#* = }
      [ -e "/proc/sys/${k//.//}" ] || continue   # an interface's key, gone with the interface
      sysctl -qw "$k=$v" 2>/dev/null || log "could not restore $k=$v"
    done
  for fam in iptables ip6tables; do
    command -v "$fam" >/dev/null || continue
    for c in INPUT FORWARD OUTPUT; do
      p=$(awk -v c=":$c" '/^\*filter/{f=1} /^\*/ && !/^\*filter/{f=0} f && $1==c {print $2}' "$before/$fam")
      [ -n "$p" ] || p=ACCEPT   # a table left out of the snapshot was idle: every policy ACCEPT
      if $fam -S "$c" 2>/dev/null | grep -qx -- "-P $c $p"; then continue; fi
      $fam -P "$c" "$p" 2>/dev/null || true
    done
  done
}
