#!/usr/bin/env bash
# Put MLOps Desktop in the application menu of the current user (Linux, freedesktop).
# Exec points at this checkout's .venv (scripts/setup.sh makes it), or at `mlops-desktop` on PATH.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
data="${XDG_DATA_HOME:-$HOME/.local/share}"
exe="$root/.venv/bin/mlops-desktop"
if [ ! -x "$exe" ]; then
  exe="$(command -v mlops-desktop || true)"
fi
if [ -z "$exe" ]; then
  echo "install-desktop-entry: mlops-desktop is not installed; run: bash scripts/setup.sh" >&2
  exit 1
fi
install -Dm644 "$here/mlops-desktop.svg" "$data/icons/hicolor/scalable/apps/mlops-desktop.svg"
mkdir -p "$data/applications"
# Exec takes the path quoted as the desktop entry spec asks, so a checkout path with spaces works
sed "s|^Exec=.*|Exec=\"$exe\"|" "$here/mlops-desktop.desktop" > "$data/applications/mlops-desktop.desktop"
chmod 644 "$data/applications/mlops-desktop.desktop"
update-desktop-database "$data/applications" 2>/dev/null || true
echo "installed $data/applications/mlops-desktop.desktop (Exec=\"$exe\")"
