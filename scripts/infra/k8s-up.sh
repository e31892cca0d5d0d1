#!/usr/bin/env bash
# k8s-up.sh - a real Kubernetes v1.20.2 on this host: etcd, kube-apiserver, controller-manager and scheduler on
# 127.0.0.1, and a REAL node: Debian's containerd 1.6 (own socket/root/state, CRI), the kubelet (pods run under runc),
# kube-proxy in iptables mode (ClusterIP and NodePort Services answer from the host), CNI bridge + host-local +
# portmap. Pods pull from the docker-up.sh registry over plain http (imagePullSecrets carry its credentials).
# Binaries from k8s-build.sh (cached). Idempotent: what runs is kept, what is missing is (re)started.
# Writes $MLOPS_INFRA_STATE/k8s/env.sh (MLOPS_TEST_KUBECONFIG, MLOPS_TEST_KUBE_NODE_IP, ...). Undo: k8s-down.sh.
# Host changes (all undone by k8s-down.sh): NODE_IP on lo (the kubelet refuses a loopback node IP); the CNI bridge;
# iptables chains KUBE-*, CNI-*, MLOPS-GUARD*; kubepods cgroups; sysctls set by the kubelet (kernel.panic=10,
# panic_on_oops=1, vm.overcommit_memory=1), kube-proxy (route_localnet=1) and the bridge plugin (ip_forward=1);
# entries under /var/log/pods, /var/log/containers, /var/lib/kubelet/device-plugins (hard-coded in kubelet 1.20) and
# /run/containerd/s (shim sockets, hard-coded in containerd 1.6).
# Env: NODE_IP (10.255.0.1), POD_CIDR (10.244.0.0/24), CLUSTER_CIDR (10.244.0.0/16), SERVICE_CIDR (10.96.0.0/16),
#      MLOPS_TEST_REGISTRY (else the one of docker-up.sh in the same state dir). Root only.
set -Eeuo pipefail   # (no "| grep -q" under pipefail: its early exit + SIGPIPE fails the pipeline)
trap 'echo "k8s-up.sh: line $LINENO: \"$BASH_COMMAND\" failed (rc $?)" >&2' ERR
. "$(dirname "$0")/lib.sh"
need_root "the kubelet and containerd need root"
claim_host
host_record
BIN=$K8S_CACHE/bin
[ -s "$K8S_CACHE/.complete" ] || die "no Kubernetes binaries in $K8S_CACHE: run scripts/infra/k8s-build.sh first (~6 min)"
S=$MLOPS_INFRA_STATE/k8s
L=$MLOPS_INFRA_STATE/logs
P=$S/pki
NW=$S/node
mkdir -p "$P" "$L" "$NW"/{pki,cni/net.d,kubelet} "$NW/containerd"
chmod 700 "$MLOPS_INFRA_STATE" "$S"
NODE_NAME=$(hostname | tr '[:upper:]' '[:lower:]' | tr -c 'a-z0-9.\n-' '-')
NODE_IP=${NODE_IP:-10.255.0.1}
POD_CIDR=${POD_CIDR:-10.244.0.0/24}
CLUSTER_CIDR=${CLUSTER_CIDR:-10.244.0.0/16}
SERVICE_CIDR=${SERVICE_CIDR:-10.96.0.0/16}
BRIDGE=mlops-kbr0
if [ -z "${MLOPS_TEST_REGISTRY:-}" ] && [ -s "$MLOPS_INFRA_STATE/docker/registry/port" ]; then
  MLOPS_TEST_REGISTRY=127.0.0.1:$(cat "$MLOPS_INFRA_STATE/docker/registry/port")
fi
REGISTRY=${MLOPS_TEST_REGISTRY:-127.0.0.1:5000}
PAUSE_IMAGE=local/pause:3.4.1
put() { cat >"$1.new"; if cmp -s "$1.new" "$1"; then rm -f "$1.new"; else mv "$1.new" "$1"; fi; }  # kube-proxy exits when its config is rewritten
if [ ! -s "$S/ports.env" ]; then
  printf 'APISERVER_PORT=%s\nETCD_PORT=%s\nETCD_PEER_PORT=%s\nKUBELET_HEALTHZ_PORT=%s\nPROXY_HEALTHZ_PORT=%s\nPROXY_METRICS_PORT=%s\n' \
    "$(free_port)" "$(free_port)" "$(free_port)" "$(free_port)" "$(free_port)" "$(free_port)" >"$S/ports.env"
fi
. "$S/ports.env"
KUBELET_PORT=10250   # on NODE_IP only
SERVER=https://127.0.0.1:$APISERVER_PORT
t0=$(date +%s.%N)

# ---- 1. PKI (openssl), once: CA, apiserver serving cert, apiserver->kubelet client, service-account keys, an admin token
if [ ! -s "$P/ca.crt" ]; then
  printf '[server]\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes.default.svc\n[client]\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n' >"$P/ext.cnf"
  openssl genrsa -out "$P/ca.key" 2048 2>/dev/null
  openssl req -x509 -new -nodes -key "$P/ca.key" -subj "/CN=mlops-test-ca" -days 3650 -out "$P/ca.crt"
  cert() { # cert NAME SUBJ EXT
    openssl genrsa -out "$P/$1.key" 2048 2>/dev/null
    openssl req -new -key "$P/$1.key" -subj "$2" -out "$P/$1.csr"
    openssl x509 -req -in "$P/$1.csr" -CA "$P/ca.crt" -CAkey "$P/ca.key" -CAcreateserial -days 3650 \
      -extfile "$P/ext.cnf" -extensions "$3" -out "$P/$1.crt" 2>/dev/null
  }
  cert apiserver "/CN=kube-apiserver" server
  cert apiserver-kubelet-client "/O=system:masters/CN=apiserver-kubelet-client" client
  openssl genrsa -out "$P/sa.key" 2048 2>/dev/null; openssl rsa -in "$P/sa.key" -pubout -out "$P/sa.pub" 2>/dev/null
  ( umask 077; echo "$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n'),admin,admin-uid,system:masters" >"$P/tokens.csv" )
fi
TOKEN=$(cut -d, -f1 "$P/tokens.csv")
( umask 077; put "$S/kubeconfig" <<YML
apiVersion: v1
kind: Config
clusters:
- name: mlops-test
  cluster: {server: "$SERVER", certificate-authority-data: "$(base64 -w0 "$P/ca.crt")"}
users:
- name: admin
  user: {token: "$TOKEN"}
contexts:
- name: mlops-test
  context: {cluster: mlops-test, user: admin, namespace: default}
current-context: mlops-test
YML
)
KC="$BIN/kubectl --kubeconfig $S/kubeconfig"
api_ready() { curl -s -m 2 --cacert "$P/ca.crt" -H "Authorization: Bearer $TOKEN" "$SERVER/readyz" | grep '^ok' >/dev/null; }

# ---- 2. control plane
if ! pid_alive "$S/etcd.pid" "$S/etcd"; then
  start_daemon etcd "$S/etcd.pid" "$L/etcd.log" "$BIN/etcd" --name mlops-test --data-dir "$S/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "mlops-test=http://127.0.0.1:$ETCD_PEER_PORT" --log-level warn
fi
if ! pid_alive "$S/apiserver.pid" "$P/apiserver.crt"; then
  start_daemon kube-apiserver "$S/apiserver.pid" "$L/apiserver.log" "$BIN/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$ETCD_PORT" --bind-address=127.0.0.1 --advertise-address=127.0.0.1 \
    --secure-port="$APISERVER_PORT" --insecure-port=0 \
    --tls-cert-file="$P/apiserver.crt" --tls-private-key-file="$P/apiserver.key" --client-ca-file="$P/ca.crt" \
    --token-auth-file="$P/tokens.csv" --authorization-mode=Node,RBAC \
    --service-account-key-file="$P/sa.pub" --service-account-signing-key-file="$P/sa.key" \
    --service-account-issuer=https://kubernetes.default.svc \
    --service-cluster-ip-range="$SERVICE_CIDR" --endpoint-reconciler-type=none \
    --kubelet-client-certificate="$P/apiserver-kubelet-client.crt" --kubelet-client-key="$P/apiserver-kubelet-client.key" \
    --kubelet-preferred-address-types=InternalIP --profiling=false
fi
wait_for 120 api_ready || { tail -20 "$L/apiserver.log" >&2; die "kube-apiserver not ready on $SERVER"; }
timing apiserver-ready "$(elapsed "$t0")" -
if ! pid_alive "$S/controller-manager.pid" "$S/kubeconfig"; then
  start_daemon kube-controller-manager "$S/controller-manager.pid" "$L/controller-manager.log" "$BIN/kube-controller-manager" \
    --kubeconfig="$S/kubeconfig" --leader-elect=false --bind-address=127.0.0.1 --secure-port=0 --port=0 \
    --service-account-private-key-file="$P/sa.key" --root-ca-file="$P/ca.crt" --use-service-account-credentials=true
fi
if ! pid_alive "$S/scheduler.pid" "$S/kubeconfig"; then
  start_daemon kube-scheduler "$S/scheduler.pid" "$L/scheduler.log" "$BIN/kube-scheduler" \
    --kubeconfig="$S/kubeconfig" --leader-elect=false --bind-address=127.0.0.1 --secure-port=0 --port=0
fi
# the default ServiceAccount exists once the controllers work (pods can be admitted from then on)
wait_for 120 $KC -n default get serviceaccount default || die "controller-manager made no default ServiceAccount"

# ---- 3. node host state before the node first runs (k8s-down.sh removes relative to it)
if [ ! -s "$NW/host-orig.paths" ]; then
  ls -A /var/log/pods /var/log/containers 2>/dev/null >"$NW/host-orig.podlogs" || true
  { for d in /var/log/pods /var/log/containers /var/lib/kubelet /var/lib/kubelet/device-plugins /run/containerd /run/containerd/s; do
      [ -e "$d" ] && echo "EXISTED $d"; done
    ls -d /sys/fs/cgroup/*/kubepods 2>/dev/null | sed 's/^/EXISTED /'
    ip -o addr show dev lo | grep -w "$NODE_IP/32" >/dev/null && echo "EXISTED addr"
    echo "recorded $(date +%s)"; } >"$NW/host-orig.paths" || true
fi
put "$NW/node.env" <<ENV
NODE_NAME=$NODE_NAME
NODE_IP=$NODE_IP
BRIDGE=$BRIDGE
ENV

# ---- 4. node certificates: kubelet client (Node authorizer: system:node:NAME in system:nodes), kube-proxy client
#         (default binding system:node-proxier), kubelet serving cert for NODE_IP (kubectl logs/exec)
NP=$NW/pki
printf '[client]\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n[server]\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:%s,IP:127.0.0.1,DNS:%s,DNS:localhost\n' "$NODE_IP" "$NODE_NAME" | put "$NP/ext.cnf"
ncert() { # ncert NAME SUBJ EXT
  openssl verify -CAfile "$P/ca.crt" "$NP/$1.crt" >/dev/null 2>&1 && return 0
  openssl genrsa -out "$NP/$1.key" 2048 2>/dev/null
  openssl req -new -key "$NP/$1.key" -subj "$2" -out "$NP/$1.csr"
  openssl x509 -req -in "$NP/$1.csr" -CA "$P/ca.crt" -CAkey "$P/ca.key" -CAserial "$NP/ca.srl" -CAcreateserial \
    -days 3650 -extfile "$NP/ext.cnf" -extensions "$3" -out "$NP/$1.crt" 2>/dev/null
}
ncert node-client "/O=system:nodes/CN=system:node:$NODE_NAME" client
ncert kube-proxy "/CN=system:kube-proxy" client
ncert kubelet-serving "/CN=$NODE_NAME" server
for who in node-client kube-proxy; do
  put "$NW/$who.kubeconfig" <<YML
apiVersion: v1
kind: Config
clusters: [{name: local, cluster: {server: "$SERVER", certificate-authority: "$P/ca.crt"}}]
users: [{name: $who, user: {client-certificate: "$NP/$who.crt", client-key: "$NP/$who.key"}}]
contexts: [{name: local, context: {cluster: local, user: $who}}]
current-context: local
YML
done

# ---- 5. host network: the node IP on lo; guard chains so nothing of the pod or service ranges leaves the host
ip -o addr show dev lo | grep -w "$NODE_IP/32" >/dev/null || ip addr add "$NODE_IP/32" dev lo
chain() { # chain TABLE NAME HOOK: (re)create an empty chain NAME, jumped to first from HOOK
  iptables -t "$1" -N "$2" 2>/dev/null || iptables -t "$1" -F "$2"
  iptables -t "$1" -C "$3" -j "$2" 2>/dev/null || iptables -t "$1" -I "$3" 1 -j "$2"
}
chain filter MLOPS-GUARD FORWARD
iptables -A MLOPS-GUARD -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT        # pod <-> pod (dockerd sets FORWARD policy DROP)
iptables -A MLOPS-GUARD -i "$BRIDGE" -j REJECT                     # pods reach the host only, nothing beyond it
chain filter MLOPS-GUARD-OUT OUTPUT
iptables -A MLOPS-GUARD-OUT -d "$SERVICE_CIDR" -j REJECT           # a ClusterIP kube-proxy has not programmed yet: fail fast
chain mangle MLOPS-GUARD-POST POSTROUTING                          # (in OUTPUT, -o is the device routed to before DNAT)
iptables -t mangle -A MLOPS-GUARD-POST -d "$SERVICE_CIDR" -j DROP
iptables -t mangle -A MLOPS-GUARD-POST -d "$CLUSTER_CIDR" ! -o "$BRIDGE" -j DROP

# ---- 6. CNI: bridge + host-local IPAM (state under NW) + portmap; containerd adds loopback itself
put "$NW/cni/net.d/10-mlops.conflist" <<JSON
{"cniVersion": "0.4.0", "name": "mlops", "plugins": [
  {"type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_CIDR"}]], "routes": [{"dst": "0.0.0.0/0"}],
            "dataDir": "$NW/cni/ipam"}},
  {"type": "portmap", "capabilities": {"portMappings": true}}]}
JSON

# ---- 7. containerd: own socket/root/state/runc root, netns under state; no CAP_SYS_RESOURCE -> restrict_oom_score_adj;
#         the registry as a plain-http mirror of itself (credentials come with each pull, from imagePullSecrets)
C=$NW/containerd; SOCK=$C/containerd.sock
CTR="ctr --address $SOCK --namespace k8s.io"
put "$C/config.toml" <<TOML
version = 2
root = "$C/root"
state = "$C/state"
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$C/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$NW/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$C/runc"
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."$REGISTRY"]
    endpoint = ["http://$REGISTRY"]
TOML
if ! pid_alive "$NW/containerd.pid" "$C/config.toml"; then
  start_daemon containerd "$NW/containerd.pid" "$L/containerd.log" /usr/bin/containerd --config "$C/config.toml"
  wait_for 60 ctr --address "$SOCK" version || { tail -20 "$L/containerd.log" >&2; die "containerd did not answer"; }
fi

# ---- 8. the pause image: the cached static pause binary in a docker-archive tar made by hand, imported
if ! $CTR images ls -q | grep -x "docker.io/$PAUSE_IMAGE" >/dev/null; then
  D=$NW/pause; rm -rf "$D"; mkdir -p "$D/rootfs" "$D/img"
  cp "$BIN/pause" "$D/rootfs/pause"
  tar -C "$D/rootfs" --owner=0 --group=0 --numeric-owner --mtime=@0 -cf "$D/layer.tar" pause
  LAYER=$(sha256sum "$D/layer.tar" | cut -d' ' -f1)
  printf '{"architecture":"amd64","os":"linux","config":{"Entrypoint":["/pause"],"User":"65535:65535"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' "$LAYER" >"$D/config.json"
  CF=$(sha256sum "$D/config.json" | cut -d' ' -f1)
  mkdir -p "$D/img/$LAYER"; cp "$D/layer.tar" "$D/img/$LAYER/layer.tar"; cp "$D/config.json" "$D/img/$CF.json"
  printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["%s/layer.tar"]}]' "$CF" "$PAUSE_IMAGE" "$LAYER" >"$D/img/manifest.json"
  tar -C "$D/img" -cf "$D/pause-image.tar" .
  $CTR images import "$D/pause-image.tar" >/dev/null
  log "pause image imported"
fi

# ---- 9. kubelet: cgroupfs (cgroup v1), remote runtime = our containerd, x509 + webhook authn/authz
put "$NW/kubelet.yaml" <<YML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
failSwapOn: false
address: $NODE_IP
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTHZ_PORT
authentication: {anonymous: {enabled: false}, webhook: {enabled: true}, x509: {clientCAFile: "$P/ca.crt"}}
authorization: {mode: Webhook}
tlsCertFile: "$NP/kubelet-serving.crt"
tlsPrivateKeyFile: "$NP/kubelet-serving.key"
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
podCIDR: $POD_CIDR
oomScoreAdj: 0
serializeImagePulls: false
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%"}
imageGCHighThresholdPercent: 100
enforceNodeAllocatable: []
volumePluginDir: "$NW/kubelet/volume-plugins"
staticPodPath: ""
YML
t=$(date +%s.%N)
if ! pid_alive "$NW/kubelet.pid" "$NW/kubelet.yaml"; then
  start_daemon kubelet "$NW/kubelet.pid" "$L/kubelet.log" "$BIN/kubelet" --config="$NW/kubelet.yaml" \
    --kubeconfig="$NW/node-client.kubeconfig" --container-runtime=remote --container-runtime-endpoint="unix://$SOCK" \
    --runtime-request-timeout=5m --root-dir="$NW/kubelet" --cert-dir="$NW/kubelet/pki" --node-ip="$NODE_IP" \
    --hostname-override="$NODE_NAME" --v=1
fi
ready() { [ "$($KC get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]; }
wait_for 240 ready || { tail -30 "$L/kubelet.log" >&2; die "node $NODE_NAME not Ready"; }
timing node-ready "$(elapsed "$t")" -

# ---- 10. kube-proxy, iptables mode (no IPVS here); conntrack settings left alone (0 = leave as is)
put "$NW/kube-proxy.yaml" <<YML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection: {kubeconfig: "$NW/kube-proxy.kubeconfig"}
hostnameOverride: $NODE_NAME
bindAddress: $NODE_IP
clusterCIDR: $CLUSTER_CIDR
healthzBindAddress: 127.0.0.1:$PROXY_HEALTHZ_PORT
metricsBindAddress: 127.0.0.1:$PROXY_METRICS_PORT
nodePortAddresses: ["$NODE_IP/32", "127.0.0.1/32"]
oomScoreAdj: 0
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
YML
if ! pid_alive "$NW/kube-proxy.pid" "$NW/kube-proxy.yaml"; then
  start_daemon kube-proxy "$NW/kube-proxy.pid" "$L/kube-proxy.log" "$BIN/kube-proxy" --config="$NW/kube-proxy.yaml" --v=1
fi
wait_for 120 curl -fsS -m 2 "http://127.0.0.1:$PROXY_HEALTHZ_PORT/healthz" || { tail -30 "$L/kube-proxy.log" >&2; die "kube-proxy not healthy"; }
wait_for 60 iptables -t nat -S KUBE-SERVICES || die "kube-proxy wrote no KUBE-SERVICES chain"

cat >"$S/env.sh" <<ENV
export MLOPS_TEST_KUBECONFIG=$S/kubeconfig
export MLOPS_TEST_KUBE_STATE=$S
export MLOPS_TEST_KUBE_NODE_IP=$NODE_IP
export MLOPS_TEST_KUBE_BIN=$BIN
ENV
timing k8s-up "$(elapsed "$t0")" -
log "kubernetes up: KUBECONFIG=$S/kubeconfig node $NODE_NAME ($NODE_IP) registry $REGISTRY"
