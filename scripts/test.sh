#!/usr/bin/env bash
# Install everything the tests need and run the whole suite: ruff, mypy (the whole package), pytest.
#   bash scripts/test.sh [PYTEST ARGS...]
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test || exit 1
export QT_QPA_PLATFORM=offscreen
status=0
# MLOPS_TEST_ENGINES=up: start the real engines around the suite (root on Debian; scripts/infra/up.sh) and stop
# them after it. Otherwise the engine fixtures use the ones named by MLOPS_TEST_* or start their own (docs/TESTING.md).
if [ "${MLOPS_TEST_ENGINES:-}" = up ] && [ -z "${MLOPS_TEST_DOCKER_HOST:-}" ]; then
  export MLOPS_INFRA_STATE=${MLOPS_INFRA_STATE:-/var/tmp/mlops-desktop-engines}
  trap 'bash scripts/infra/down.sh' EXIT
  bash scripts/infra/up.sh >/dev/null || { echo "test: the engines did not start"; exit 1; }
  . "$MLOPS_INFRA_STATE/env.sh"
  export MLOPS_TEST_ENGINES_RESTARTABLE=1
fi
echo "== ruff"; .venv/bin/ruff check mlops_desktop tests benchmarks || status=1
echo "== mypy"; .venv/bin/mypy || status=1
echo "== pytest"
.venv/bin/python -m pytest "$@"
rc=$?
if [ $rc -eq 5 ]; then
  echo "pytest collected no tests: that is a failure"; rc=1
fi
[ $rc -ne 0 ] && status=$rc
exit $status
