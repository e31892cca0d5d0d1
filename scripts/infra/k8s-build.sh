#!/usr/bin/env bash
# k8s-build.sh - build Kubernetes v1.20.2 (kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kubelet,
# kube-proxy), etcd 3.4.23 and a static pause binary from Debian bookworm's source and binary packages only
# (apt-get source / apt-get download into a private apt directory; nothing is installed on the host).
# Result, cached: $MLOPS_INFRA_CACHE/k8s-v1.20.2/bin/ with a .complete stamp; a second run returns at once.
# The ~2.7 GB build tree is removed afterwards (MLOPS_INFRA_KEEP_BUILD=1 keeps it). Needs no root.
# Cold: ~5-8 min on 2 cores (nice 10, so a shared machine stays usable).
#   bash scripts/infra/k8s-build.sh [--force]
set -euo pipefail
. "$(dirname "$0")/lib.sh"
OUT=$K8S_CACHE
if [ "${1:-}" != --force ] && [ -s "$OUT/.complete" ]; then
  timing k8s-build 0.0 warm
  exit 0
fi
t=$(date +%s.%N)
B=$MLOPS_INFRA_CACHE/k8s-build        # scratch tree (source, Go toolchain, caches)
rm -rf "$B" "$OUT.part"
mkdir -p "$B"/{apt/lists/partial,apt/cache/archives/partial,apt/empty,debs,root,src,home,gocache,gopath/src/k8s.io,tools} "$OUT.part/bin"
trap 'log "build failed; scratch tree kept in $B"' ERR

# 1. a private apt config: bookworm with deb-src (the machine's own sources have none)
MIRROR=$(apt_mirror)
printf 'deb %s bookworm main\ndeb-src %s bookworm main\n' "$MIRROR" "$MIRROR" >"$B/apt/sources.list"
cat >"$B/apt/apt.conf" <<CONF
Dir::Etc::sourcelist "$B/apt/sources.list";
Dir::Etc::sourceparts "$B/apt/empty";
Dir::State::Lists "$B/apt/lists";
Dir::Cache "$B/apt/cache";
APT::Sandbox::User "root";
CONF
export APT_CONFIG=$B/apt/apt.conf
apt-get update -qq
log "private apt lists ready"

# 2. Debian's kubernetes 1.20.5+really1.20.2 source: the full upstream tree with vendor/
(cd "$B/src" && apt-get source --download-only -qq kubernetes >/dev/null && dpkg-source -x --no-check kubernetes_*.dsc k8s >/dev/null)
log "kubernetes source unpacked"

# 3. Go 1.19, etcd, rsync (make gen_openapi uses it) and reflect2 1.0.2: unpacked, not installed
(cd "$B/debs" && apt-get download -qq golang-1.19-go golang-1.19-src etcd-server rsync libpopt0 \
   golang-github-modern-go-reflect2-dev >/dev/null)
for f in "$B"/debs/*.deb; do dpkg-deb -x "$f" "$B/root"; done
printf '#!/bin/sh\nLD_LIBRARY_PATH=%s/root/usr/lib/x86_64-linux-gnu exec %s/root/usr/bin/rsync "$@"\n' "$B" "$B" >"$B/tools/rsync"
chmod +x "$B/tools/rsync"
cp "$B/root/usr/bin/etcd" "$OUT.part/bin/etcd"
log "go 1.19, etcd, rsync unpacked"

# 4. REQUIRED: the vendored modern-go/reflect2 1.0.1 corrupts memory under Go >= 1.18 (reflect.mapiterinit changed):
#    the apiserver panics at random. Debian's reflect2 1.0.2 fixes it.
R=$B/src/k8s/vendor/github.com/modern-go/reflect2
rm -f "$R"/*.go "$R"/*.s
cp "$B"/root/usr/share/gocode/src/github.com/modern-go/reflect2/*.go "$B"/root/usr/share/gocode/src/github.com/modern-go/reflect2/*.s "$R/"

# 5. generate pkg/generated/openapi (not in the tarball), then build in GOPATH mode as upstream 1.20 does
export GOROOT=$B/root/usr/lib/go-1.19 PATH=$B/tools:$B/root/usr/lib/go-1.19/bin:$PATH
export GOPROXY=off GOFLAGS= CGO_ENABLED=0 HOME=$B/home GOPATH=$B/gopath GOCACHE=$B/gocache GO111MODULE=off
(cd "$B/src/k8s" && nice -n 10 make gen_openapi >/dev/null)
log "openapi generated"
ln -sfn "$B/src/k8s" "$B/gopath/src/k8s.io/kubernetes"
cd "$B/gopath/src/k8s.io/kubernetes"
V=k8s.io/kubernetes/vendor/k8s.io
LDF="-s -w -X $V/component-base/version.gitVersion=v$K8S_VERSION -X $V/component-base/version.gitMajor=1"
LDF+=" -X $V/component-base/version.gitMinor=20 -X $V/component-base/version.gitTreeState=clean"
LDF+=" -X $V/component-base/version.gitCommit=faecb196815e248d3ecfb03c680a4507229c2a56"
LDF+=" -X $V/component-base/version.buildDate=2021-01-13T13:20:00Z -X $V/client-go/pkg/version.gitVersion=v$K8S_VERSION"
CMDS="kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy"
nice -n 10 go build -ldflags "$LDF" -o "$OUT.part/bin/" $(printf './cmd/%s ' $CMDS)
log "built $CMDS"

# 6. the pod sandbox ("pause") binary, static, from the same tree (no image registry to pull it from)
gcc -Os -Wall -Werror -static -DVERSION=v3.4.1-k8s-v$K8S_VERSION -o "$OUT.part/bin/pause" build/pause/linux/pause.c
"$OUT.part/bin/kube-apiserver" --version >/dev/null

# 7. publish atomically; drop the scratch tree
printf 'kubernetes=v%s\nbuilt=%s\nseconds=%s\n' "$K8S_VERSION" "$(date -u +%FT%TZ)" "$(elapsed "$t")" >"$OUT.part/.complete"
rm -rf "$OUT"; mv "$OUT.part" "$OUT"
cd /
[ "${MLOPS_INFRA_KEEP_BUILD:-0}" = 1 ] || rm -rf "$B"
log "binaries in $OUT/bin ($(du -sh "$OUT" | cut -f1))"
timing k8s-build "$(elapsed "$t")" cold
