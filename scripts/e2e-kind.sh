#!/usr/bin/env bash
# End-to-end on a real cluster: kind cluster, images built and loaded, chart installed, samples applied,
# phases awaited. Needs docker and kind; kubectl and helm come from .tools/bin (make tools).
# Not part of `make test`. KEEP_CLUSTER=1 leaves the cluster running.
set -euo pipefail
cd "$(dirname "$0")/.."
CLUSTER=${CLUSTER:-durable-e2e}
NS=${NS:-durable-system}
TAG=${TAG:-e2e}
PY=${PY:-.venv/bin/python}
export PATH="$PWD/.tools/bin:$PATH"

for cmd in docker kind; do
  command -v "$cmd" >/dev/null || { echo "e2e: $cmd is required" >&2; exit 2; }
done
"$PY" scripts/fetch_tools.py .tools >/dev/null

cleanup() { [ "${KEEP_CLUSTER:-0}" = 1 ] || kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true; }
trap cleanup EXIT

kind get clusters | grep -qx "$CLUSTER" || kind create cluster --name "$CLUSTER" --wait 120s
kubectl config use-context "kind-$CLUSTER"

docker build -f docker/Dockerfile.operator -t "ghcr.io/durable-workflows/operator:$TAG" .
docker build -f docker/Dockerfile.worker -t "ghcr.io/durable-workflows/worker:$TAG" .
kind load docker-image --name "$CLUSTER" "ghcr.io/durable-workflows/operator:$TAG" "ghcr.io/durable-workflows/worker:$TAG"

helm upgrade --install durable charts/durable-workflows --namespace "$NS" --create-namespace --wait --timeout 5m \
  --set operator.image.tag="$TAG" --set worker.image.tag="$TAG" --set worker.app=durable.demo \
  --set redis.enabled=true
kubectl -n "$NS" rollout status deploy/durable-durable-workflows-operator --timeout 180s

# The CRDs the API server now enforces: a bad schedule must be refused (CEL).
if kubectl apply -f - <<'YAML' 2>/dev/null; then
apiVersion: durable.dev/v1alpha1
kind: DurableSchedule
metadata: {name: bad, namespace: default}
spec: {workflowRef: process-order, cron: "* * * * *", interval: 5m}
YAML
  echo "e2e: the API server accepted a schedule with both cron and interval" >&2; exit 1
fi

# Samples, with the demo worker of the chart serving app.workflows.processOrder.
sed 's#ghcr.io/durable-workflows/worker:0.1.0#ghcr.io/durable-workflows/worker:'"$TAG"'#; s#durable.examples.orders#durable.demo#' \
  examples/k8s/workflow.yaml | kubectl apply -f -
# The demo workflow takes an Order and an Approval: same sample objects, demo-shaped input and payload.
kubectl apply -f - <<'YAML'
apiVersion: durable.dev/v1alpha1
kind: DurableExecution
metadata: {name: order-1001, namespace: default}
spec:
  workflowRef: process-order
  input: {order_id: "1001", amount: 12.5, customer: alice}
YAML
kubectl apply -f examples/k8s/schedule.yaml

wait_for() {  # kind name jsonpath expected timeout
  local deadline=$(( $(date +%s) + $5 ))
  until [ "$(kubectl -n default get "$1" "$2" -o "jsonpath=$3" 2>/dev/null)" = "$4" ]; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "e2e: $1/$2 never reached $3=$4" >&2; kubectl -n default get "$1" "$2" -o yaml; exit 1; }
    sleep 2
  done
  echo "e2e: $1/$2 $3=$4"
}
wait_for durableworkflow process-order '{.status.conditions[?(@.type=="Ready")].status}' True 300
wait_for durableexecution order-1001 '{.status.phase}' Waiting 180
kubectl apply -f - <<'YAML'
apiVersion: durable.dev/v1alpha1
kind: DurableSignal
metadata: {name: order-1001-approved, namespace: default}
spec: {executionRef: order-1001, signal: orders.approved, payload: {approved: true, by: alice}}
YAML
wait_for durableexecution order-1001 '{.status.phase}' Succeeded 120
wait_for durablesignal order-1001-approved '{.status.phase}' Delivered 60
wait_for durableschedule nightly-sweep '{.status.reason}' Scheduled 60
kubectl get durableexecutions -n default
echo "e2e: passed"
