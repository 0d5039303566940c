# shellcheck shell=bash
# Source this to use the local cluster from a shell, script or test:
#   source hack/local-cluster/env.sh
# Exports KUBECONFIG, PATH (kubectl first), CICD_CLUSTER_DIR, CICD_REGISTRY and
# the apiserver address as hostNetwork pods should use it.
export CICD_CLUSTER_DIR="${CICD_CLUSTER_DIR:-/var/lib/cicd-local-cluster}"
export KUBECONFIG="$CICD_CLUSTER_DIR/kubeconfig/admin.kubeconfig"
case ":$PATH:" in
  *":$CICD_CLUSTER_DIR/bin:"*) ;;
  *) export PATH="$CICD_CLUSTER_DIR/bin:$PATH" ;;
esac
# Local image registry (plain HTTP, loopback only).
export CICD_REGISTRY="127.0.0.1:5000"
# Apiserver as seen from the host and from hostNetwork pods.
export CICD_APISERVER="https://127.0.0.1:6443"
export CICD_NODE_NAME="cicd-node"
export CICD_CONTAINERD_SOCK="$CICD_CLUSTER_DIR/containerd/containerd.sock"
