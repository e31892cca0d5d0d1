#!/usr/bin/env bash
# Install the frozen MLOps Desktop for the current user: menu entry, icon and AppStream metainfo.
# Run from the bundle folder (dist/mlops-desktop/install.sh); --uninstall removes what it installed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
data="${XDG_DATA_HOME:-$HOME/.local/share}"
entry="$data/applications/mlops-desktop.desktop"
icon="$data/icons/hicolor/scalable/apps/mlops-desktop.svg"
meta="$data/metainfo/io.github.mlops_desktop.metainfo.xml"
if [ "${1:-}" = "--uninstall" ]; then
  rm -f "$entry" "$icon" "$meta"
  update-desktop-database "$data/applications" 2>/dev/null || true
  echo "removed MLOps Desktop's menu entry"; exit 0
fi
exe="$here/mlops-desktop"
[ -x "$exe" ] || { echo "install: $exe is missing; run this script from the bundle folder" >&2; exit 1; }
install -Dm644 "$here/mlops-desktop.svg" "$icon"
install -Dm644 "$here/io.github.mlops_desktop.metainfo.xml" "$meta"
mkdir -p "$data/applications"
# Exec quoted as the desktop entry spec asks, so a bundle path with spaces works
sed "s|^Exec=.*|Exec=\"$exe\"|" "$here/mlops-desktop.desktop" > "$entry"
chmod 644 "$entry"
update-desktop-database "$data/applications" 2>/dev/null || true
echo "installed $entry (Exec=\"$exe\")"
