#!/usr/bin/env bash
# host-state.sh - what the engines may change on a host, recorded and compared (.ci/run checks it around the suite).
#   bash scripts/infra/host-state.sh snapshot DIR       iptables, ip6tables, sysctls, mounts, addresses, links,
#                                                       routes, top-level cgroups, hard-coded engine paths
#   bash scripts/infra/host-state.sh compare BEFORE AFTER   prints each difference; exit 1 if there is one
#   bash scripts/infra/host-state.sh reap-stale          tear down the engines of a dead owner (a killed session)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
case "${1:-}" in
  snapshot) host_snapshot "${2:?DIR}" ;;
  compare) host_compare "${2:?BEFORE}" "${3:?AFTER}" ;;
  reap-stale) reap_stale ;;
  *) die "usage: host-state.sh snapshot DIR | compare BEFORE AFTER | reap-stale" ;;
esac
