#!/usr/bin/env bash
# base-image.sh TAG - the Python base image of the tests and of generated model images, without Docker Hub:
# debootstrap (minbase) of Debian bookworm from the machine's apt mirror + python3, python3-venv, python3-pip,
# ca-certificates and tini, trimmed, tarred and `docker import`ed with ENTRYPOINT tini (a Python PID 1 ignores
# SIGTERM otherwise) and CMD python3. The tarball is cached in $MLOPS_INFRA_CACHE/base/ under a key of the package
# list and recipe version, so later runs only import it. Uses DOCKER_HOST (Debian's docker CLI). Root only.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need_root debootstrap
TAG=${1:?usage: base-image.sh TAG}
PACKAGES=python3,python3-venv,python3-pip,ca-certificates,tini
RECIPE=1   # bump when the trimming below changes
KEY=$(echo "bookworm minbase $PACKAGES $RECIPE" | sha256sum | cut -c1-12)
TAR=$MLOPS_INFRA_CACHE/base/python-bookworm-$KEY.tar
D=$DOCKER_CLI
mkdir -p "$MLOPS_INFRA_CACHE/base"
if [ "$($D image inspect -f '{{.Comment}}' "$TAG" 2>/dev/null)" = "mlops-desktop base $KEY" ]; then
  exit 0   # this engine already has this very image
fi
t=$(date +%s.%N)
if [ ! -s "$TAR" ]; then
  R=$MLOPS_INFRA_CACHE/base/rootfs.$$
  rm -rf "$R"; trap 'rm -rf "$R"' EXIT
  log "debootstrap bookworm ($PACKAGES)"
  nice -n 10 debootstrap --variant=minbase --include="$PACKAGES" bookworm "$R" "$(apt_mirror)" \
    >"$MLOPS_INFRA_CACHE/base/debootstrap.log" 2>&1 || { tail -20 "$MLOPS_INFRA_CACHE/base/debootstrap.log" >&2; die "debootstrap failed"; }
  # trim what an image never needs: apt caches and lists, docs, man pages, translations
  rm -rf "$R"/var/cache/apt/archives/*.deb "$R"/var/cache/apt/*.bin "$R"/var/lib/apt/lists/* \
         "$R"/usr/share/doc/* "$R"/usr/share/man/* "$R"/usr/share/info/* "$R"/var/log/*.log "$R"/var/cache/debconf/*-old
  find "$R/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
  find "$R/usr/lib/python3" -name __pycache__ -prune -exec rm -rf {} +
  : >"$R/etc/machine-id"
  tar --numeric-owner -C "$R" -cf "$TAR.part" . && mv "$TAR.part" "$TAR"
  rm -rf "$R"
  timing debootstrap "$(elapsed "$t")" cold
  t=$(date +%s.%N)
else
  timing debootstrap 0.0 warm
fi
$D import -c 'ENV LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1' -c 'ENTRYPOINT ["/usr/bin/tini", "--"]' \
       -c 'CMD ["python3"]' -m "mlops-desktop base $KEY" "$TAR" "$TAG" >/dev/null
$D run --rm "$TAG" python3 -c 'import venv, ensurepip, ssl' || die "the base image has no working python3"
timing base-import "$(elapsed "$t")" -
log "$TAG: $($D image inspect -f '{{.Size}}' "$TAG" | awk '{printf "%.0f MB", $1/1e6}') (python $($D run --rm "$TAG" python3 -c 'import sys; print(sys.version.split()[0])'))"
