#!/usr/bin/env bash
# The second half of `make test`: every integration suite again, on a real control plane.
#
# ../shared/k8s holds a real kube-apiserver, kube-controller-manager and etcd (no scheduler,
# kubelet or network: pods stay Pending, NetworkPolicies are stored, not enforced). This
# script starts it in target/k8s (or $LANDLORD_K8S_DIR), runs `make e2e` against it, and
# stops it again if it started it. Without ../shared/k8s it says so and succeeds, so that
# `make test` still works in a bare clone.
set -euo pipefail
cd "$(dirname "$0")/.."

k8s=../shared/k8s
if [ ! -f "$k8s/up" ]; then
  echo "real control plane: skipped, $k8s/up not found (the suites ran on kube-test only)"
  exit 0
fi
dir=${LANDLORD_K8S_DIR:-$PWD/target/k8s}

running=no
if [ -f "$dir/kubeconfig" ] && compgen -G "$dir/run/*.pid" >/dev/null; then
  running=yes # `up` reuses a healthy instance; leave it running as we found it
fi
line=$(bash "$k8s/up" "$dir" | tail -1) # set -e: stops here when it does not come up
eval "$line"
if [ "$running" = no ]; then
  trap 'bash "$k8s/down" "$dir"' EXIT
fi
echo "real control plane: $KUBECONFIG"
make e2e
