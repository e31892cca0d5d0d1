#!/usr/bin/env bash
# install.sh - the Debian packages the real engines of the tests need (Docker engine, registry, Swarm, a Kubernetes
# node, Prometheus); only what is missing; as root. Services stay stopped: Debian's policy-rc.d (or ours, written
# only for the install and removed after it) keeps the packages' init scripts from starting system daemons.
#   bash scripts/infra/install.sh [docker|kubernetes|prometheus ...]    (default: all)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need_root "apt-get install"
t=$(date +%s.%N)
declare -A PKGS=(
  [docker]="docker.io containerd runc iptables tini docker-registry apache2-utils debootstrap ca-certificates curl bc"
  [kubernetes]="containerd runc containernetworking-plugins iptables conntrack gcc libc6-dev make openssl curl bc dpkg-dev"
  [prometheus]="prometheus curl"
)
want=()
for part in "${@:-docker kubernetes prometheus}"; do
  for p in $part; do [ -n "${PKGS[$p]:-}" ] || die "unknown part $p (docker, kubernetes, prometheus)"; want+=(${PKGS[$p]}); done
done
missing=()
for p in $(printf '%s\n' "${want[@]}" | sort -u); do
  dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  timing install "$(elapsed "$t")" warm
  exit 0
fi
ours_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then   # never let a postinst start dockerd/containerd/prometheus on the host
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; ours_policy=1
fi
trap '[ $ours_policy = 1 ] && rm -f /usr/sbin/policy-rc.d' EXIT
log "apt-get install ${missing[*]}"
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
timing install "$(elapsed "$t")" cold
