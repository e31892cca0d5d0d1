#!/usr/bin/env bash
# Install (first time) and open MLOps Desktop on the default workspace (the user data dir), or --home DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/mlops-desktop "$@"
