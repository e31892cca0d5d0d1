#!/usr/bin/env bash
# docker-up.sh - a private Docker engine, an authenticating registry and a single-node Swarm, all on loopback.
# Idempotent: what runs is kept, what is missing is started (so it also restarts a stopped dockerd or registry).
#   dockerd     Debian docker.io 20.10, own socket/data-root/exec-root/config, own bridge mlops-docker0
#               (172.30.254.1/24), local networks from 172.31.0.0/16
#   registry    Debian docker-registry (distribution 2.8) on 127.0.0.1:PORT, htpasswd (bcrypt) auth, random password
#   swarm       manager on 127.0.0.1 (listen/data-path ports chosen free), docker_gwbridge on mlops-gwbr0
#               (172.30.255.0/24), overlays from 172.28.0.0/16. No IPVS in this kernel: services here need
#               --endpoint-mode dnsrr and host-mode published ports; ingress/VIP stay configured as on real clusters.
#   base image  scripts/infra/base-image.sh (debootstrap, cached), unless MLOPS_INFRA_BASE_IMAGE=0
# Writes $MLOPS_INFRA_STATE/docker/env.sh (MLOPS_TEST_DOCKER_HOST, MLOPS_TEST_REGISTRY, ...).
# Env: MLOPS_INFRA_REGISTRY_PORT (default 5000 when free, else any free port). Undo: docker-down.sh. Root only.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need_root "dockerd needs root"
claim_host
host_record
S=$MLOPS_INFRA_STATE/docker
L=$MLOPS_INFRA_STATE/logs
mkdir -p "$S"/{data,exec,registry/data,client} "$L"
chmod 700 "$MLOPS_INFRA_STATE" "$S"
BR=mlops-docker0 BR_CIDR=172.30.254.1/24 GWBR=mlops-gwbr0 GW_SUBNET=172.30.255.0/24
SOCK=$S/docker.sock
export DOCKER_HOST=unix://$SOCK DOCKER_CONFIG=$S/client
D=$DOCKER_CLI
t=$(date +%s.%N)

# ---- dockerd
if ! ip link show "$BR" >/dev/null 2>&1; then
  ip link add "$BR" type bridge && ip addr add "$BR_CIDR" dev "$BR" && ip link set "$BR" up
fi
cat >"$S/daemon.json" <<JSON
{
  "data-root": "$S/data",
  "exec-root": "$S/exec",
  "pidfile": "$S/exec/dockerd.pid",
  "deprecated-key-path": "$S/key.json",
  "hosts": ["unix://$SOCK"],
  "bridge": "$BR",
  "default-address-pools": [{"base": "172.31.0.0/16", "size": 24}],
  "storage-driver": "overlay2",
  "log-driver": "json-file",
  "log-opts": {"max-size": "10m", "max-file": "2"},
  "iptables": true,
  "live-restore": false
}
JSON
if ! pid_alive "$S/dockerd.pid" "$S"; then
  # after a crash (a killed dockerd): its containerd lives on and the new dockerd times out starting another one;
  # the pid file left behind makes the new dockerd refuse to start
  for f in /proc/[0-9]*/cmdline; do
    { tr '\0' ' ' <"$f"; } 2>/dev/null | grep -E "^containerd .*$S/exec/containerd" >/dev/null || continue
    pid=${f#/proc/}; pid=${pid%/cmdline}; log "containerd $pid of a dead dockerd: stopping it"
    kill -TERM "$pid" 2>/dev/null; for _ in $(seq 1 50); do running "$pid" || break; sleep 0.2; done
    running "$pid" && kill -KILL "$pid"
  done
  rm -f "$S/exec/dockerd.pid" "$S/exec/containerd/containerd.pid"
  # our pid file (dockerd refuses to start over a pid file that names itself: its own lives in exec-root)
  start_daemon dockerd "$S/dockerd.pid" "$L/dockerd.log" /usr/sbin/dockerd --config-file "$S/daemon.json"
  wait_for 60 $D version || { tail -30 "$L/dockerd.log" >&2; die "dockerd did not answer on $SOCK"; }
  timing dockerd-start "$(elapsed "$t")" -
fi

# ---- registry with htpasswd auth
t=$(date +%s.%N)
R=$S/registry
if [ ! -s "$R/password" ]; then
  ( umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$R/password" )
  echo mlops-test >"$R/user"
  htpasswd -Bbn "$(cat "$R/user")" "$(cat "$R/password")" >"$R/htpasswd"
fi
if [ ! -s "$R/port" ]; then
  p=${MLOPS_INFRA_REGISTRY_PORT:-}
  if [ -z "$p" ]; then
    p=5000; (exec 3<>/dev/tcp/127.0.0.1/5000) 2>/dev/null && p=$(free_port)
  fi
  echo "$p" >"$R/port"
fi
REG=127.0.0.1:$(cat "$R/port")
cat >"$R/config.yml" <<YML
version: 0.1
log: {level: info, accesslog: {disabled: true}}
storage:
  cache: {blobdescriptor: inmemory}
  filesystem: {rootdirectory: $R/data}
  delete: {enabled: true}
http:
  addr: $REG
  headers: {X-Content-Type-Options: [nosniff]}
auth:
  htpasswd: {realm: mlops-test-registry, path: $R/htpasswd}
YML
if ! pid_alive "$R/registry.pid" "$R/config.yml"; then
  start_daemon registry "$R/registry.pid" "$L/registry.log" /usr/bin/docker-registry serve "$R/config.yml"
  # 401 = up and asking for credentials
  wait_for 30 bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' -m 2 http://$REG/v2/)\" = 401 ]" \
    || { tail -20 "$L/registry.log" >&2; die "registry did not answer on $REG"; }
  timing registry-start "$(elapsed "$t")" -
fi
# the CLI's credentials (scripts only; tests pass auth explicitly): a private DOCKER_CONFIG, never ~/.docker
$D login -u "$(cat "$R/user")" --password-stdin "$REG" <"$R/password" >/dev/null 2>&1 \
  || die "docker login to $REG failed"

# ---- swarm: gwbridge first (its Linux bridge name and subnet are ours), then init on loopback
t=$(date +%s.%N)
if [ "$($D info --format '{{.Swarm.LocalNodeState}}')" != active ]; then
  if ! $D network inspect docker_gwbridge >/dev/null 2>&1; then
    $D network create --driver bridge --subnet "$GW_SUBNET" \
      --opt com.docker.network.bridge.name="$GWBR" --opt com.docker.network.bridge.enable_icc=false \
      --opt com.docker.network.bridge.enable_ip_masquerade=true docker_gwbridge >/dev/null
  fi
  [ -s "$S/swarm.ports" ] || echo "$(free_port) $(free_port udp)" >"$S/swarm.ports"
  read -r SWARM_PORT DATA_PORT <"$S/swarm.ports"
  $D swarm init --advertise-addr "127.0.0.1:$SWARM_PORT" --listen-addr "127.0.0.1:$SWARM_PORT" \
    --data-path-port "$DATA_PORT" --default-addr-pool 172.28.0.0/16 --default-addr-pool-mask-length 24 >/dev/null
  timing swarm-init "$(elapsed "$t")" -
fi
wait_for 30 bash -c "[ \"\$($D node ls --format '{{.Status}}' 2>/dev/null)\" = Ready ]" || die "swarm node not Ready"

# ---- base image (cached tarball; debootstrap on first use)
BASE_TAG=${MLOPS_INFRA_BASE_TAG:-mlops-desktop/python-base:bookworm}
if [ "${MLOPS_INFRA_BASE_IMAGE:-1}" != 0 ]; then
  bash "$INFRA_DIR/base-image.sh" "$BASE_TAG"
fi

cat >"$S/env.sh" <<ENV
export MLOPS_TEST_DOCKER_HOST=unix://$SOCK
export MLOPS_TEST_DOCKER_STATE=$S
export MLOPS_TEST_REGISTRY=$REG
export MLOPS_TEST_REGISTRY_USER=$(cat "$R/user")
export MLOPS_TEST_REGISTRY_PASSWORD_FILE=$R/password
export MLOPS_TEST_BASE_IMAGE=$BASE_TAG
ENV
log "docker engine up: DOCKER_HOST=unix://$SOCK registry=$REG (user $(cat "$R/user")) base=$BASE_TAG"
