#!/usr/bin/env bash
# Create .venv and install MLOps Desktop into it (idempotent; reuses what is already installed).
#   bash scripts/setup.sh          the app
#   bash scripts/setup.sh test     the app plus test and benchmark tools
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRA=${1:-}
PY=${PYTHON:-python3}

apt_install() {
  # Debian packages the app or its tests use; only as root, only what is missing.
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null || { echo "setup: not root or no apt-get; skipping: $*"; return 0; }
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "setup: apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Qt's xcb platform plugin needs these to open a real window; tests use offscreen and need none.
apt_install libxcb-cursor0 libxkbcommon-x11-0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 \
            libxcb-shape0 libxcb-xinerama0 libegl1 libgl1 libfontconfig1 libdbus-1-3
if [ "$EXTRA" = test ]; then
  # a private sshd on 127.0.0.1 for the SSH execution tests; Xvfb for real-window screenshots;
  # desktop-file-validate checks the menu entry
  apt_install openssh-server openssh-client xvfb desktop-file-utils
  # appstreamcli validates the frozen app's AppStream metainfo (tests/packaging)
  apt_install appstream
  # wrk: the load generator of benchmarks/serving.py
  apt_install wrk
fi

if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# torch first, pinned: the local CPU build; a looser pin would pull a multi-GB CUDA build.
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  .venv/bin/python -m pip install -q "torch==2.13.0"
fi
if [ "$EXTRA" = test ]; then
  .venv/bin/python -m pip install -q -e ".[test]"
else
  .venv/bin/python -m pip install -q -e .
fi
echo "setup: done ($(.venv/bin/python --version), $(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'))"
