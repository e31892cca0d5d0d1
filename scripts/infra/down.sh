#!/usr/bin/env bash
# down.sh - stop every engine of $MLOPS_INFRA_STATE (k8s-down.sh, docker-down.sh) and put the host back as it was
# before the first up: sysctls, FORWARD policy, iptables chains of ours, addresses, bridges, mounts. Idempotent.
# Keeps the caches and $MLOPS_INFRA_STATE/logs.   bash scripts/infra/down.sh
set -uo pipefail
. "$(dirname "$0")/lib.sh"
owns_guard() {
  owns_host && return 0
  log "the engines on this host belong to $(cat "$ENGINE_OWNER"), not $MLOPS_INFRA_STATE: nothing of theirs is touched"
  exit 0
}
need_root "the engines run as root"
owns_guard
[ -d "$MLOPS_INFRA_STATE" ] || { log "nothing to do: no $MLOPS_INFRA_STATE"; exit 0; }
t=$(date +%s.%N)
rc=0
bash "$INFRA_DIR/k8s-down.sh" || rc=1
bash "$INFRA_DIR/docker-down.sh" || rc=1
if ! state_alive "$MLOPS_INFRA_STATE"; then
  host_restore
  release_host
  [ $rc = 0 ] && rm -rf "$MLOPS_INFRA_STATE/host-before" "$MLOPS_INFRA_STATE/env.sh"
fi
timing engines-down "$(elapsed "$t")" -
exit $rc
