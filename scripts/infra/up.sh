#!/usr/bin/env bash
# up.sh - start every engine the tests use, once, and write $MLOPS_INFRA_STATE/env.sh for the test session:
# the Docker engine + registry + Swarm + base image (docker-up.sh), then Kubernetes with a real node (k8s-up.sh).
# Installs missing Debian packages (install.sh) and builds the Kubernetes binaries when not cached (k8s-build.sh).
# Prometheus needs no daemon here: the tests start one per test from the installed package.
#   bash scripts/infra/up.sh [--no-kubernetes]      then: source "$MLOPS_INFRA_STATE/env.sh"; bash scripts/test.sh
# Stop with scripts/infra/down.sh (same MLOPS_INFRA_STATE). Root only.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need_root "the engines need root"
K8S=1; [ "${1:-}" = --no-kubernetes ] && K8S=0
bash "$INFRA_DIR/install.sh"
if [ $K8S = 1 ]; then bash "$INFRA_DIR/k8s-build.sh"; fi
t=$(date +%s.%N)
bash "$INFRA_DIR/docker-up.sh"
if [ $K8S = 1 ]; then bash "$INFRA_DIR/k8s-up.sh"; fi
{ echo "# written by scripts/infra/up.sh $(date -u +%FT%TZ); stop with: MLOPS_INFRA_STATE=$MLOPS_INFRA_STATE bash $INFRA_DIR/down.sh"
  echo "export MLOPS_TEST_ENGINES_STATE=$MLOPS_INFRA_STATE"
  cat "$MLOPS_INFRA_STATE/docker/env.sh"
  if [ $K8S = 1 ]; then cat "$MLOPS_INFRA_STATE/k8s/env.sh"; fi
} >"$MLOPS_INFRA_STATE/env.sh"
timing engines-up "$(elapsed "$t")" -
echo "$MLOPS_INFRA_STATE/env.sh"
