#!/usr/bin/env bash
# The Kubernetes manifests, offline: `kubectl kustomize deploy/kubernetes` renders them, and every
# rendered object must validate against its API schema (tests/kubernetes/validate.js, npm's
# kubernetes-models and @kubernetes-models/prometheus-operator at the versions
# tests/kubernetes/package-lock.json pins), with the Deployment running the image scripts/image.sh
# builds. Then the check itself: a copy with a port of the wrong type and another image must
# fail, naming both.
#
#   scripts/k8s-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v kubectl >/dev/null || { echo "k8s-check: kubectl is missing (apt-get install kubernetes-client)" >&2; exit 2; }
command -v npm >/dev/null || { echo "k8s-check: npm is missing (apt-get install npm)" >&2; exit 2; }
version=$(sed -n 's/^project(ghostwatch VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
image=ghostwatch:$version
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

(cd tests/kubernetes && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >/dev/null)
kubectl kustomize deploy/kubernetes >"$work/rendered.yaml"
echo "k8s-check: rendered $(grep -c '^kind:' "$work/rendered.yaml") objects with kubectl $(kubectl version --client -o json 2>/dev/null | sed -n 's/.*"gitVersion": "\([^"]*\)".*/\1/p' | head -1)"
node tests/kubernetes/validate.js "$work/rendered.yaml" --image "$image"

sed -e 's/containerPort: 9739/containerPort: "nine"/' -e "s|image: $image|image: somewhere/else:1|" \
  "$work/rendered.yaml" >"$work/broken.yaml"
if out=$(node tests/kubernetes/validate.js "$work/broken.yaml" --image "$image" 2>&1); then
  echo "k8s-check: FAILED: a Deployment with a string port and another image passed" >&2
  exit 1
fi
grep -q 'containerPort must be integer' <<<"$out" || { echo "k8s-check: FAILED: the bad port was not named: $out" >&2; exit 1; }
grep -q 'runs somewhere/else:1' <<<"$out" || { echo "k8s-check: FAILED: the other image was not named: $out" >&2; exit 1; }
echo "k8s-check: a broken copy fails as it should (a string port, another image)"
