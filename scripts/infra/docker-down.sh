#!/usr/bin/env bash
# docker-down.sh - undo docker-up.sh: services, swarm, containers, registry, dockerd (by recorded pid only), leftover
# shims and mounts under the state dir, our bridges and their iptables rules, the DOCKER* chains that did not exist
# before, and (when no other engine of this state runs) the sysctls and FORWARD policy recorded before the first up.
# Keeps the caches and the logs. Idempotent.   --daemon-only: stop dockerd and nothing else (a test's "engine died")
set -uo pipefail
. "$(dirname "$0")/lib.sh"
owns_guard() {
  owns_host && return 0
  log "the engines on this host belong to $(cat "$ENGINE_OWNER"), not $MLOPS_INFRA_STATE: nothing of theirs is touched"
  exit 0
}
need_root "dockerd runs as root"
owns_guard
S=$MLOPS_INFRA_STATE/docker
export DOCKER_HOST=unix://$S/docker.sock DOCKER_CONFIG=$S/client
D=$DOCKER_CLI
if [ "${1:-}" = --daemon-only ]; then
  stop_pid dockerd "$S/dockerd.pid" "$S" 40
  exit 0
fi
[ -d "$S" ] || { log "nothing to do: no $S"; exit 0; }
if pid_alive "$S/dockerd.pid" "$S" && timeout 10 $D version >/dev/null 2>&1; then
  svcs=$($D service ls -q 2>/dev/null); [ -n "$svcs" ] && $D service rm $svcs >/dev/null 2>&1
  $D swarm leave --force >/dev/null 2>&1
  ids=$($D ps -aq); [ -n "$ids" ] && $D rm -f $ids >/dev/null 2>&1
  $D network prune -f >/dev/null 2>&1
  $D network rm docker_gwbridge >/dev/null 2>&1
fi
stop_pid registry "$S/registry/registry.pid" "$S/registry/config.yml" 10
stop_pid dockerd "$S/dockerd.pid" "$S" 40
# shims and containerd of this engine (their command lines name our exec-root); normally gone with dockerd
for f in /proc/[0-9]*/cmdline; do
  { tr '\0' ' ' <"$f"; } 2>/dev/null | grep -E "^/usr/bin/containerd.* $S/exec" >/dev/null || continue
  pid=${f#/proc/}; pid=${pid%/cmdline}; log "leftover $(tr '\0' ' ' <"$f" | cut -c1-60) ($pid): SIGKILL"; kill -KILL "$pid"
done
left=$(umount_below "$S")
log "unmounted ($left left)"
for l in mlops-docker0 mlops-gwbr0; do ip link show "$l" >/dev/null 2>&1 && ip link del "$l"; done
for v in $(ip -o link show type veth 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
  ip -d link show "$v" 2>/dev/null | grep -qE 'master (mlops-docker0|mlops-gwbr0)' && ip link del "$v"
done
remove_rules_matching 'mlops-docker0|mlops-gwbr0|172\.30\.25[45]\.|172\.31\.|172\.28\.'
if [ -e "$MLOPS_INFRA_STATE/host-before/iptables" ]; then
  remove_new_chains "$MLOPS_INFRA_STATE/host-before/iptables" '^DOCKER'
  remove_new_chains "$MLOPS_INFRA_STATE/host-before/ip6tables" '^DOCKER' ip6tables
fi
log "bridges and rules removed"
rm_new_cgroups docker
rmtree_new /var/lib/docker /etc/docker/key.json   # libnetwork writes Swarm load-balancer files to /var/lib/docker
rmdir_new /run/docker/plugins /run/docker /run/containerd/s /run/containerd
state_alive "$MLOPS_INFRA_STATE" || { host_restore; release_host; log "host settings restored"; }
if [ "$left" -eq 0 ]; then
  rm -rf --one-file-system "$S" || die "could not remove $S"
  log "docker engine down; $S removed"
else
  die "$left mounts left under $S; state kept"
fi
