#!/usr/bin/env bash
# k8s-down.sh - undo k8s-up.sh: kube-proxy, kubelet, every pod (via ctr), containerd, the control plane (by recorded
# pids only); mounts under the state dir; the bridge, the node address, the KUBE-*/CNI-*/MLOPS-GUARD* chains added
# since the first up; kubepods cgroups; the kubelet's entries under /var/log and /var/lib/kubelet; and (when no other
# engine of this state runs) the sysctls recorded before. Keeps the caches and the logs. Idempotent.
#   --apiserver-only   stop kube-apiserver and nothing else (a test's "API server went away"; k8s-up.sh restarts it)
set -uo pipefail
. "$(dirname "$0")/lib.sh"
owns_guard() {
  owns_host && return 0
  log "the engines on this host belong to $(cat "$ENGINE_OWNER"), not $MLOPS_INFRA_STATE: nothing of theirs is touched"
  exit 0
}
need_root "the node runs as root"
owns_guard
S=$MLOPS_INFRA_STATE/k8s
NW=$S/node
if [ "${1:-}" = --apiserver-only ]; then
  stop_pid kube-apiserver "$S/apiserver.pid" "$S/pki/apiserver.crt" 20
  exit 0
fi
[ -d "$S" ] || { log "nothing to do: no $S"; exit 0; }
C=$NW/containerd; SOCK=$C/containerd.sock
CTR="ctr --address $SOCK --namespace k8s.io"
orig() { grep -qx "EXISTED $1" "$NW/host-orig.paths" 2>/dev/null; }
[ -s "$NW/node.env" ] && . "$NW/node.env"
NODE_IP=${NODE_IP:-10.255.0.1} BRIDGE=${BRIDGE:-mlops-kbr0}

# 1. node agents first (nothing restarts the pods then), every pod task, containerd, then the control plane
stop_pid kube-proxy "$NW/kube-proxy.pid" "$NW/kube-proxy.yaml"
stop_pid kubelet "$NW/kubelet.pid" "$NW/kubelet.yaml"
SHIMS=$(for f in /proc/[0-9]*/cmdline; do { tr '\0' ' ' <"$f"; } 2>/dev/null | grep "^/usr/bin/containerd-shim.* -address $SOCK" >/dev/null && basename "${f%/cmdline}"; done)
if [ -S "$SOCK" ] && timeout 10 $CTR version >/dev/null 2>&1; then
  for t in $($CTR tasks ls -q); do $CTR tasks kill -a -s SIGKILL "$t" >/dev/null 2>&1; done
  sleep 0.5
  for t in $($CTR tasks ls -q); do $CTR tasks rm -f "$t" >/dev/null 2>&1; done
  for c in $($CTR containers ls -q); do $CTR containers rm "$c" >/dev/null 2>&1; done
fi
stop_pid containerd "$NW/containerd.pid" "$C/config.toml"
for pid in $SHIMS; do  # shims outlive containerd by design; normally they exited with their last task
  { tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -- "-address $SOCK" >/dev/null && { log "shim $pid left: SIGKILL"; kill -KILL "$pid"; }
done
[ -s "$S/kubeconfig" ] && timeout 10 "$K8S_CACHE/bin/kubectl" --kubeconfig "$S/kubeconfig" delete node --all --wait=false >/dev/null 2>&1
stop_pid kube-scheduler "$S/scheduler.pid" "$S/kubeconfig"
stop_pid kube-controller-manager "$S/controller-manager.pid" "$S/kubeconfig"
stop_pid kube-apiserver "$S/apiserver.pid" "$S/pki/apiserver.crt"
stop_pid etcd "$S/etcd.pid" "$S/etcd"

# 2. mounts under the state dir (kubelet root-dir binds and volumes, rootfs overlays, netns, shm), deepest first
left=$(umount_below "$S")

# 3. network: veths on the bridge, the bridge, the node address, the chains that did not exist before
for v in $(ip -o link show master "$BRIDGE" 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do ip link del "$v" 2>/dev/null; done
ip link show "$BRIDGE" >/dev/null 2>&1 && ip link del "$BRIDGE"
orig addr || ip addr del "$NODE_IP/32" dev lo 2>/dev/null
if [ -e "$MLOPS_INFRA_STATE/host-before/iptables" ]; then
  remove_new_chains "$MLOPS_INFRA_STATE/host-before/iptables" '^(KUBE-|CNI-|MLOPS-GUARD)'
  remove_new_chains "$MLOPS_INFRA_STATE/host-before/ip6tables" '^(KUBE-|CNI-|MLOPS-GUARD)' ip6tables
fi

# 4. kubepods cgroups (cgroupfs driver, every v1 hierarchy), deepest first
for d in /sys/fs/cgroup/*/kubepods; do
  [ -d "$d" ] && ! orig "$d" && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
done

# 5. kubelet 1.20 hard-codes /var/log/pods, /var/log/containers, /var/lib/kubelet/device-plugins: our entries only
for d in /var/log/pods /var/log/containers; do
  for e in $(ls -A "$d" 2>/dev/null); do grep -qxF "$e" "$NW/host-orig.podlogs" 2>/dev/null || rm -rf "${d:?}/$e"; done
  orig "$d" || rmdir "$d" 2>/dev/null
done
orig /var/lib/kubelet/device-plugins || rm -rf /var/lib/kubelet/device-plugins
orig /var/lib/kubelet || rmdir /var/lib/kubelet 2>/dev/null
rmdir_new /run/containerd/s /run/containerd

# 6. sysctls and FORWARD policy back, when nothing else of this state runs
state_alive "$MLOPS_INFRA_STATE" || { host_restore; release_host; }
if [ "$left" -eq 0 ]; then
  rm -rf --one-file-system "$S" || die "could not remove $S"
  log "kubernetes down; $S removed"
else
  die "$left mounts left under $S; state kept"
fi
