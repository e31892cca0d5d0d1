#!/usr/bin/env bash
# Build the frozen desktop app with PyInstaller into dist/mlops-desktop/ (one folder; no Python needed to run it).
#   bash packaging/build.sh            build (reuses .venv; installs PyInstaller from the `packaging` extra)
#   bash packaging/build.sh --if-stale build only when packaging/, pyproject.toml or mlops_desktop/ changed
# Then: dist/mlops-desktop/mlops-desktop --version ; bash dist/mlops-desktop/install.sh (menu entry + icon)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
[ -x "$PY" ] || { echo "build: run bash scripts/setup.sh first" >&2; exit 1; }
stamp_of() {  # what the bundle is built from: the packaging files, the dependencies and the app's code
  { cat pyproject.toml packaging/*.sh packaging/*.spec packaging/*.py packaging/*.xml packaging/*.desktop \
      packaging/*.svg; find mlops_desktop resources/icons resources/notebooks -type f \
      \( -name '*.py' -o -name '*.svg' -o -name '*.ipynb' \) -print0 | sort -z | xargs -0 cat; \
    "$PY" -m pip freeze 2>/dev/null; } | sha256sum | cut -d' ' -f1
}
stamp=$(stamp_of)
if [ "${1:-}" = "--if-stale" ] && [ -f dist/mlops-desktop/.build-stamp ] && \
   [ "$(cat dist/mlops-desktop/.build-stamp)" = "$stamp" ]; then
  echo "build: dist/mlops-desktop is up to date"; exit 0
fi
"$PY" -c "import PyInstaller" 2>/dev/null || "$PY" -m pip install -q "pyinstaller>=6.10"
start=$(date +%s)
"$PY" -m PyInstaller --noconfirm --clean --log-level WARN --distpath dist --workpath build/pyinstaller \
  packaging/mlops-desktop.spec
install -m 755 packaging/install.sh dist/mlops-desktop/install.sh
install -m 644 packaging/mlops-desktop.desktop packaging/io.github.mlops_desktop.metainfo.xml \
  packaging/mlops-desktop.svg dist/mlops-desktop/
echo "$stamp" > dist/mlops-desktop/.build-stamp
echo "build: dist/mlops-desktop ($(du -sh dist/mlops-desktop | cut -f1)) in $(( $(date +%s) - start )) s"
