# shellcheck shell=bash
# Variables here are used by the scripts that source this file.
# shellcheck disable=SC2034
# One node of the local cluster: its containerd, CNI bridge and kubelet.
# Sourced (after lib.sh) by `up` (node 1) and `node` (nodes 2..4); never
# executed. `select_node N` sets the N_* variables every function here uses.
#
# Node 1 is the original single node: its paths are the historical ones
# ($STATE/containerd, $STATE/kubelet, ...). Node K >= 2 keeps everything under
# $STATE/node-K and differs from node 1 in exactly these respects:
#   name cicd-node-K, address 198.51.100.K (on the same host-only interface),
#   pod range 10.244.(K-1).0/24 on bridge cicd-cni(K-1), kubelet healthz port
#   10248+100*(K-1), cgroup root /cicd-node-K, pod logs under its own dir.

# Every node's pods get addresses from this /16 (each node its own /24 range
# of it), so all pod addresses are on-link for every pod: the bridges are
# joined at layer 2 (see link_node_bridge) and no packet is ever IP-forwarded.
POD_NETWORK="10.244.0.0/16"
# Highest node number `up --nodes` accepts (addresses and ports are derived
# from the number; four is plenty for a 2-core machine).
MAX_NODES=4

# select_node N: set the N_* variables for node N (1..MAX_NODES).
select_node() {
  local n="$1"
  [[ "$n" =~ ^[1-9]$ ]] && (( n <= MAX_NODES )) || die "node number must be 1..$MAX_NODES, got '$n'"
  N_NUM="$n"
  N_IP="198.51.100.$n"
  N_POD_CIDR="10.244.$((n - 1)).0/24"
  N_BRIDGE="cicd-cni$((n - 1))"
  N_HEALTHZ_PORT=$((10248 + 100 * (n - 1)))
  if (( n == 1 )); then
    N_NAME="$NODE_NAME"
    N_DIR="$STATE"
    N_CTRD_COMPONENT=containerd
    N_KUBELET_COMPONENT=kubelet
    N_CERT=kubelet
    N_CNI_NET=cicd-pods
    N_CGROUP_ROOT=""
    N_POD_LOGS=""
    N_KUBELET_ROOT="$KUBELET_ROOT"
    N_KUBELET_CONFIG="$STATE/kubelet-config.yaml"
  else
    N_NAME="$NODE_NAME-$n"
    N_DIR="$STATE/node-$n"
    N_CTRD_COMPONENT="node-$n-containerd"
    N_KUBELET_COMPONENT="node-$n-kubelet"
    N_CERT="kubelet-$n"
    N_CNI_NET="cicd-pods-$n"
    # Own cgroup subtree: this kubelet's /kubepods must not be node 1's.
    N_CGROUP_ROOT="/$N_NAME"
    # Kubelet garbage-collects every dir in its pod log dir that belongs to
    # no pod it knows, so two kubelets must not share /var/log/pods.
    N_POD_LOGS="$N_DIR/pod-logs"
    N_KUBELET_ROOT="$N_DIR/kubelet"
    N_KUBELET_CONFIG="$N_DIR/kubelet-config.yaml"
  fi
  N_CTRD_DIR="$N_DIR/containerd"
  N_SOCK="$N_CTRD_DIR/containerd.sock"
  N_CNI_DIR="$N_DIR/cni"
}

# Numbers of the extra nodes (2..) that have a state dir, ascending.
extra_nodes() {
  local d
  for d in "$STATE"/node-[2-9]; do
    [[ -d "$d" ]] && echo "${d##*-}"
  done
  return 0
}

# Kubelet settings only extra nodes have (node 1's config stays unchanged).
node_kubelet_extra_config() {
  [[ -n "$N_CGROUP_ROOT" ]] && echo "cgroupRoot: $N_CGROUP_ROOT"
  [[ -n "$N_POD_LOGS" ]] && echo "podLogsDir: $N_POD_LOGS"
  return 0
}

write_containerd_config() {
  local d="$N_CTRD_DIR" host
  mkdir -p "$d/root" "$d/state" "$d/certs.d" "$N_CNI_DIR/net.d" "$N_CNI_DIR/ipam"
  cat >"$d/config.toml" <<EOF
# containerd for the cicd local cluster only: own root, state and socket, so a
# system containerd (if any) is never touched.
version = 2
root = "$d/root"
state = "$d/state"
# Snapshotters that cannot work here; disabled to keep the log readable.
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
                    "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = "$N_SOCK"
[ttrpc]
  address = "$N_SOCK.ttrpc"
[debug]
  level = "info"

[plugins."io.containerd.internal.v1.opt"]
  path = "$d/opt"

[plugins."io.containerd.grpc.v1.cri"]
  # Locally built, also imported at startup, so sandboxes never need a pull.
  sandbox_image = "$REGISTRY_ADDR/cicd/pause:3"
  # root here lacks CAP_SYS_RESOURCE: negative oom_score_adj values are
  # refused and runc would fail every sandbox without this.
  restrict_oom_score_adj = true
  enable_selinux = false
  # Pod network namespaces are mounted under our state dir, not /var/run/netns.
  netns_mounts_under_state_dir = true
  # Exec/attach/port-forward streaming server: loopback only.
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        # cgroup v1 hybrid and no systemd as PID 1: cgroupfs driver.
        SystemdCgroup = false

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$N_CNI_DIR/net.d"

  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$d/certs.d"
EOF
  # Registry redirection (defence in depth against any pull leaving the host).
  # containerd 1.6 (remotes/docker/config/hosts.go): the hosts of a hosts.toml
  # are its [host."…"] entries in file order, then the `server` entry LAST;
  # the upstream default (e.g. registry-1.docker.io) is filled in only when
  # that last entry has no host. With `server` set it is never added. A file
  # WITHOUT any [host] table fails to parse in this version and containerd
  # then falls back to the default upstream host, so we always write both.
  # `_default` (honoured by containerd 1.6.20, checked with `ctr --debug
  # images pull --hosts-dir` inside an empty netns) covers every other host:
  # any registry name resolves to the local registry only.
  for host in docker.io _default; do
    mkdir -p "$d/certs.d/$host"
    cat >"$d/certs.d/$host/hosts.toml" <<EOF
# Everything for $host is served by the local registry, and only by it.
server = "http://$REGISTRY_ADDR"

[host."http://$REGISTRY_ADDR"]
  capabilities = ["pull", "resolve"]
EOF
  done
  # CNI: one bridge, host-local IPAM, no masquerade, no default route in pods
  # (isGateway/isDefaultGateway false): pods reach each other, the host's
  # bridge address, and the Service CIDR via the host (where kube-proxy's
  # DNAT turns 10.96.0.1:443 into the local apiserver), nothing else.
  # containerd adds loopback itself.
  cat >"$N_CNI_DIR/net.d/10-cicd-bridge.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "$N_CNI_NET",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$N_BRIDGE",
      "isGateway": false,
      "isDefaultGateway": false,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$N_CNI_DIR/ipam",
        "ranges": [[{"subnet": "$POD_NETWORK", "rangeStart": "${N_POD_CIDR%.*}.10",
                      "rangeEnd": "${N_POD_CIDR%.*}.254", "gateway": "${N_POD_CIDR%.*}.1"}]],
        "routes": [{"dst": "$SERVICE_CIDR", "gw": "${N_POD_CIDR%.*}.1"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
}

start_containerd() {
  write_containerd_config
  # PATH must include /usr/sbin, where Debian puts runc.
  CONFIG_FILE="$N_CTRD_DIR/config.toml" \
  ensure "$N_CTRD_COMPONENT" 30 ctr -a "$N_SOCK" version -- \
    env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    containerd --config "$N_CTRD_DIR/config.toml"
}

write_kubelet_config() {
  mkdir -p "$N_KUBELET_ROOT"
  cat >"$N_KUBELET_CONFIG" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# Serve only on the node address (apiserver -> kubelet for logs/exec).
address: $N_IP
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $N_HEALTHZ_PORT
tlsCertFile: $PKI/$N_CERT-serving.crt
tlsPrivateKeyFile: $PKI/$N_CERT-serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization:
  mode: Webhook
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://$N_SOCK
imageServiceEndpoint: unix://$N_SOCK
failSwapOn: false
# No static pods.
staticPodPath: ""
clusterDomain: cluster.local
# Nothing answers here (no DNS add-on); pods have no route to it either.
clusterDNS: [$CLUSTER_DNS_IP]
serializeImagePulls: false
registerNode: true
# root lacks CAP_SYS_RESOURCE: do not fail on oom_score_adj.
oomScoreAdj: 0
# Loose thresholds: the disk is shared with builds; evict only when nearly full.
evictionHard:
  memory.available: "200Mi"
  nodefs.available: "2%"
  nodefs.inodesFree: "2%"
  imagefs.available: "2%"
# A pressure condition (and its NoSchedule taint) lasts this long after the
# signal clears (default 5m): a build's burst of disk use must not keep the
# node unschedulable for minutes after it ended.
evictionPressureTransitionPeriod: 30s
# Images preloaded under foreign names (see hack/images/build) cannot be pulled
# again, so image GC must practically never run.
imageGCHighThresholdPercent: 99
imageGCLowThresholdPercent: 98
localStorageCapacityIsolation: true
maxPods: 110
EOF
  node_kubelet_extra_config >>"$N_KUBELET_CONFIG"
}

kubelet_healthy() { curl -sf "http://127.0.0.1:$N_HEALTHZ_PORT/healthz"; }

start_kubelet() {
  write_kubelet_config
  CONFIG_FILE="$N_KUBELET_CONFIG" \
  ensure "$N_KUBELET_COMPONENT" 90 kubelet_healthy -- \
    "$K8S_BIN/kubelet" \
    --config="$N_KUBELET_CONFIG" \
    --kubeconfig="$KCFG/$N_CERT.kubeconfig" \
    --root-dir="$N_KUBELET_ROOT" \
    --hostname-override="$N_NAME" --node-ip="$N_IP" \
    --v=1
}


# --- extra nodes (2..): certificates, network, cgroups, images ----------------

# Client and serving certificates + kubeconfig of node N's kubelet.
node_pki() {
  new_cert "$N_CERT-client" "system:node:$N_NAME" system:nodes clientAuth
  new_cert "$N_CERT-serving" "system:node:$N_NAME" system:nodes serverAuth \
    "IP:$N_IP,IP:127.0.0.1,DNS:$N_NAME,DNS:localhost"
  write_kubeconfig "$N_CERT" "$N_CERT-client"
}

# Names of the veth pair that joins node 1's bridge to node N's (end on
# node 1's bridge first).
node_link_names() { echo "cicd-n$N_NUM-a cicd-n$N_NUM-b"; }

# Node N's address on the host-only interface, its own pod bridge (host
# address .1 of its /24), and a veth pair joining that bridge to node 1's:
# the two bridges then form one layer-2 pod network, the way two machines'
# pod networks are joined by a switch, without IP forwarding (which stays 0).
# arp_ignore=1: the host answers ARP for a bridge address only on that
# bridge, so each node's pods use their own node's gateway.
setup_node_network() {
  ip addr replace "$N_IP/32" dev "$ADVERTISE_IF"
  if ! ip link show "$N_BRIDGE" >/dev/null 2>&1; then
    ip link add "$N_BRIDGE" type bridge
  fi
  ip addr replace "${N_POD_CIDR%.*}.1/${N_POD_CIDR#*/}" dev "$N_BRIDGE"
  ip link set "$N_BRIDGE" up
  local a b
  read -r a b <<<"$(node_link_names)"
  if ! ip link show "$a" >/dev/null 2>&1; then
    ip link add "$a" type veth peer name "$b"
  fi
  ip link set "$a" master "$CNI_BRIDGE" up
  ip link set "$b" master "$N_BRIDGE" up
  local i
  for i in "$CNI_BRIDGE" "$N_BRIDGE"; do
    sysctl -qw "net.ipv4.conf.$i.arp_ignore=1"
  done
}

remove_node_network() {
  local a b
  read -r a b <<<"$(node_link_names)"
  ip link del "$a" 2>/dev/null || true
  ip link del "$N_BRIDGE" 2>/dev/null || true
  ip addr del "$N_IP/32" dev "$ADVERTISE_IF" 2>/dev/null || true
}

# Cgroup hierarchies (dirs) this host has: the v1 controller mounts, or the
# single v2 mount.
cgroup_mounts() {
  awk '$3 == "cgroup" || ($3 == "cgroup2" && $2 == "/sys/fs/cgroup") {print $2}' /proc/self/mounts
}

# Node N's cgroup root must exist in every hierarchy before its kubelet
# starts (kubelet refuses a missing --cgroup-root). A new v1 cpuset cgroup
# starts with no CPUs and memory nodes: copy the parent's.
setup_node_cgroups() {
  local m
  for m in $(cgroup_mounts); do
    mkdir -p "$m$N_CGROUP_ROOT"
    if [[ -f "$m/cpuset.cpus" && ! -s "$m$N_CGROUP_ROOT/cpuset.cpus" ]] &&
       [[ -z "$(tr -d '[:space:]' <"$m$N_CGROUP_ROOT/cpuset.cpus")" ]]; then
      cat "$m/cpuset.cpus" >"$m$N_CGROUP_ROOT/cpuset.cpus"
      cat "$m/cpuset.mems" >"$m$N_CGROUP_ROOT/cpuset.mems"
    fi
  done
}

# Pids of every process in node N's cgroup subtree (its pods' containers).
node_cgroup_pids() {
  local m
  m="$(cgroup_mounts | grep -E '/pids$|^/sys/fs/cgroup$' | head -n 1)"
  [[ -n "$m" && -d "$m$N_CGROUP_ROOT" ]] || return 0
  find "$m$N_CGROUP_ROOT" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u
}

# Remove node N's cgroup dirs, deepest first (they must be empty).
remove_node_cgroups() {
  local m
  for m in $(cgroup_mounts); do
    [[ -d "$m$N_CGROUP_ROOT" ]] || continue
    find "$m$N_CGROUP_ROOT" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
}

# Image name -> digest lines of a containerd's k8s.io namespace (names only,
# no bare sha256: ids).
ctrd_images() {
  ctr -a "$1" -n k8s.io images ls 2>/dev/null | awk 'NR > 1 && $1 !~ /^sha256:/ {print $1, $3}'
}

# Copy every image node 1's containerd has (base images, the preloaded seed
# image, project :dev images) into node N's, unless N has it already. Node N
# can pull from the local registry too, but the preloaded names cannot be
# pulled, and a re-pushed :dev tag would not be pulled again.
sync_node_images() {
  local have name digest tar="$N_DIR/image.tar" n=0
  have="$(ctrd_images "$N_SOCK")"
  while read -r name digest; do
    [[ -n "$name" ]] || continue
    grep -qxF "$name $digest" <<<"$have" && continue
    if ctr -a "$CTRD_SOCK" -n k8s.io images export --platform linux/amd64 "$tar" "$name" 2>/dev/null &&
       ctr -a "$N_SOCK" -n k8s.io images import --platform linux/amd64 "$tar" >/dev/null 2>&1; then
      n=$((n + 1))
    else
      log "  could not copy image $name to $N_NAME (it will be pulled from $REGISTRY_ADDR if needed)"
    fi
    rm -f "$tar"
  done <<<"$(ctrd_images "$CTRD_SOCK")"
  log "  copied $n images from $NODE_NAME to $N_NAME"
}

node_ready() {
  [[ "$(kubectl_admin get node "$1" \
    -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == True ]]
}

# start_node N: bring extra node N up (idempotent). Needs node 1's control
# plane, containerd and registry running.
start_node() {
  select_node "$1"
  (( N_NUM >= 2 )) || die "node 1 is started by up"
  is_running kube-apiserver || die "the cluster is not up (run up first)"
  is_running containerd || die "node 1's containerd is not running (run up first)"
  mkdir -p "$N_DIR" "$LOGS" "$PIDS"
  log "== node $N_NAME ($N_IP, pods ${N_POD_CIDR}, bridge $N_BRIDGE, cgroup root $N_CGROUP_ROOT)"
  node_pki
  setup_node_network
  setup_node_cgroups
  start_containerd
  sync_node_images
  start_kubelet
  CURRENT_LOG="$LOGS/$N_KUBELET_COMPONENT.log"
  wait_for "node $N_NAME Ready" 120 node_ready "$N_NAME"
  log "node $N_NAME Ready"
}

# stop_node N: what a machine losing power looks like to the cluster: kubelet,
# containerd, the shims and every container of node N are SIGKILLed at once,
# and its runtime state dir (tmpfs /run on a real machine) is dropped. The
# node's address and bridge stay, so nothing sent to them can leave the host;
# the apiserver gets "connection refused" where a real dead machine would
# time out. Images, kubelet root and the Node object are kept.
stop_node() {
  select_node "$1"
  (( N_NUM >= 2 )) || die "node 1 cannot be stopped alone (use down)"
  local name pid pids=() i
  for name in "$N_KUBELET_COMPONENT" "$N_CTRD_COMPONENT"; do
    is_running "$name" && pids+=("$(pid_of "$name")")
  done
  pids+=($(pgrep -f "containerd-shim-runc-v2 .*-address $N_SOCK( |$)" || true))
  for i in 1 2 3 4 5; do
    pids+=($(node_cgroup_pids))
    (( ${#pids[@]} )) || break
    kill -KILL "${pids[@]}" 2>/dev/null || true
    pids=()
    sleep 0.2
  done
  rm -f "$PIDS/$N_KUBELET_COMPONENT.pid" "$PIDS/$N_CTRD_COMPONENT.pid"
  # Pod network namespaces and sandbox mounts live under the state dir.
  { awk '{print $2}' /proc/self/mounts | grep -E "^$N_CTRD_DIR/state(/|$)" || true; } | sort -r |
    while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
  rm -rf "$N_CTRD_DIR/state"
  log "node $N_NAME stopped (kubelet, containerd, shims and containers killed)"
}

# remove_node N: stop node N, delete its Node object (if the apiserver
# answers), mounts, network, cgroups and state dir. The cluster is then what
# it was before `up --nodes N`.
remove_node() {
  select_node "$1"
  stop_node "$1"
  if is_running kube-apiserver; then
    kubectl_admin delete node "$N_NAME" --ignore-not-found --wait=false >/dev/null 2>&1 || true
  fi
  { awk '{print $2}' /proc/self/mounts | grep -E "^$N_DIR(/|$)" || true; } | sort -r |
    while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
  remove_node_network
  remove_node_cgroups
  rm -rf "$N_DIR" "$N_CNI_DIR"
  rm -f "$LOGS/$N_KUBELET_COMPONENT.log" "$LOGS/$N_CTRD_COMPONENT.log"
  log "node $N_NAME removed"
}
