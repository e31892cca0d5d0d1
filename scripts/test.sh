#!/usr/bin/env bash
# Install everything the tests need and run the whole suite: ruff, mypy (the whole package), pytest.
#   bash scripts/test.sh [PYTEST ARGS...]
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test || exit 1
export QT_QPA_PLATFORM=offscreen
status=0
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
