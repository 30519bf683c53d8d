#!/usr/bin/env bash
# kubectl against `landlord dev`: get ns, get tenants -o wide, apply --server-side, delete tenant.
# Run by `make test` after the cargo tests (which build target/debug/landlord).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v kubectl >/dev/null; then
  echo "kubectl-dev: SKIPPED (kubectl is not on PATH)"
  exit 0
fi
work=$(mktemp -d)
port=$(( 20000 + RANDOM % 20000 ))
export KUBECONFIG="$work/kubeconfig"
RUST_LOG=warn target/debug/landlord dev --port "$port" --kubeconfig "$KUBECONFIG" >"$work/dev.log" 2>&1 &
dev=$!
stop() { # TERM, then KILL if it has not exited within 10 s; never wait unbounded
  kill "$dev" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$dev" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$dev" 2>/dev/null; then echo "landlord dev ignored SIGTERM"; kill -9 "$dev" || true; fi
  rm -rf "$work"
}
trap stop EXIT

# Poll with a deadline for the "ready" line.
deadline=$(( SECONDS + 60 ))
until grep -q '^ready' "$work/dev.log"; do
  if (( SECONDS > deadline )) || ! kill -0 $dev 2>/dev/null; then cat "$work/dev.log"; echo "landlord dev never became ready"; exit 1; fi
  sleep 0.1
done

passed=0; failed=0
check() { # name, command, expected regex
  local out
  out=$(eval "$2" 2>&1 || true)
  if grep -Eq "$3" <<<"$out"; then passed=$((passed+1)); echo "ok   $1"
  else failed=$((failed+1)); echo "FAIL $1: expected /$3/ in:"; echo "$out"; fi
}
eventually() { # name, command, expected regex: polled for up to 60 s
  local out deadline=$(( SECONDS + 60 ))
  until out=$(eval "$2" 2>&1 || true); grep -Eq "$3" <<<"$out"; do
    if (( SECONDS > deadline )); then failed=$((failed+1)); echo "FAIL $1: expected /$3/ in:"; echo "$out"; return; fi
    sleep 0.2
  done
  passed=$((passed+1)); echo "ok   $1"
}

check "get ns lists tenant namespaces" "kubectl get ns" "acme-prod +Active"
check "get tenants -o wide shows printer columns" "kubectl get tenants -o wide" "acme +Active +pro +2 .*Active +ACME Corporation"
eventually "plans count their tenants (an operator without --tenant-selector)" "kubectl get tq -o custom-columns=N:.metadata.name,T:.status.tenants --no-headers | sort | tr -s ' ' | paste -sd, -" "^free 1,pro 1$"
check "get landlord lists every kind" "kubectl get landlord" "tenantquota.landlord.dev/pro"
check "apply --server-side of the examples" "kubectl apply --server-side -f manifests/examples/" "tenant.landlord.dev/acme serverside-applied"
check "quota written into tenant namespaces" "kubectl get resourcequota -n acme-prod landlord-quota -o jsonpath='{.spec.hard.pods}'" "^20$"
check "a ConfigMap of the tenant's own" "kubectl create configmap kept -n globex-app --from-literal=color=blue" "configmap/kept created"
check "delete tenant" "kubectl delete tenant globex" 'tenant.landlord.dev "globex" deleted'
check "the deleted tenant is gone" "kubectl get tenant globex" "NotFound"
eventually "Archive (the default) archives, then deletes the namespace" "kubectl get ns globex-app" "NotFound"
check "the archive is in the store" "ls $work/archives/globex/" "\\.llarch$"
check "landlord archive list shows it" "target/debug/landlord archive list --url file://$work/archives" "globex .*\\.llarch"
check "landlord archive show decrypts it, ready for kubectl apply" "target/debug/landlord archive show \$(ls -d $work/archives/globex/*.llarch | sed 's|^|file://|') --url file://$work/archives" "name: kept"

check "no namespace of the tenant is left" "kubectl get ns -l landlord.dev/tenant=globex -o name | wc -l" "^ *0$"
check "refused at admission with the rule's message" "kubectl apply --server-side -f - <<<'{\"apiVersion\":\"landlord.dev/v1alpha1\",\"kind\":\"Tenant\",\"metadata\":{\"name\":\"bad\"},\"spec\":{\"owners\":[{\"kind\":\"ServiceAccount\",\"name\":\"ci\"}]}}'" "needs a namespace"

# landlord dev must stop on SIGTERM by itself.
kill "$dev" || true
for _ in $(seq 100); do kill -0 "$dev" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$dev" 2>/dev/null; then failed=$((failed+1)); echo "FAIL landlord dev did not stop on SIGTERM"; else passed=$((passed+1)); echo "ok   landlord dev stops on SIGTERM"; fi

echo "kubectl-dev: $passed passed, $failed failed"
(( failed == 0 ))
