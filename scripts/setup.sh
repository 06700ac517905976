#!/usr/bin/env bash
# Installs what building and testing Causeway needs and is missing:
# cmake (Pingora's zlib-ng), protoc (gRPC code generation), etcd (tests and
# `--etcd` mode), zsh and fish (the CLI's completion tests), chromium, node
# and npm (the console's browser test, e2e/tests/console.rs). As root it
# installs from Debian; otherwise it says what to install and exits non-zero.
# Then it installs the console test's pinned playwright-core from the npm
# registry into e2e/console/node_modules (`npm ci` against the lockfile),
# only when the lockfile changed since the last install.
# Terraform (e2e/tests/terraform.rs) is not packaged by Debian or by the
# registries these machines reach: when it is missing or too old this script
# says so, and those tests fail (they never skip).
set -euo pipefail

terraform_min="1.6.0"
if ! command -v terraform >/dev/null 2>&1; then
  echo "causeway: terraform is not on PATH: the Terraform tests (e2e/tests/terraform.rs) will fail." >&2
  echo "  Install Terraform >= ${terraform_min} (HashiCorp's release zip or apt repository) into /usr/local/bin." >&2
else
  tf_version="$(terraform version 2>/dev/null | sed -n '1s/^Terraform v//p')"
  if [ "$(printf '%s\n%s\n' "$terraform_min" "$tf_version" | sort -V | head -n1)" != "$terraform_min" ]; then
    echo "causeway: terraform ${tf_version:-unknown} is older than ${terraform_min}: the Terraform tests will fail." >&2
  fi
fi

missing_pkgs=()
need() { # need <command> <debian-package>
  command -v "$1" >/dev/null 2>&1 || missing_pkgs+=("$2")
}
need cmake cmake
need protoc protobuf-compiler
need etcd etcd-server
need etcdctl etcd-client
need cc gcc
need ip iproute2
# The CLI tests check that `causewayctl completion zsh|fish` parses in those shells.
need zsh zsh
need fish fish
# The console's browser test: headless Chromium driven by playwright-core.
need chromium chromium
need node nodejs
need npm npm
# etcd-client compiles etcd's protos, which import google/protobuf/*.proto
[ -f /usr/include/google/protobuf/descriptor.proto ] || missing_pkgs+=(libprotobuf-dev)

# npm ci of e2e/console when its lockfile changed since the last install
# (a stamp in node_modules holds the lockfile's hash): a no-op on later runs.
console_npm() {
  local dir=e2e/console stamp=e2e/console/node_modules/.causeway-lock-sha256 sum
  sum="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ]; then
    return 0
  fi
  echo "causeway: installing the console test's playwright-core (npm ci in $dir)" >&2
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  echo "$sum" >"$stamp"
}

if [ ${#missing_pkgs[@]} -eq 0 ]; then
  console_npm
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "causeway: missing tools; install them with:" >&2
  echo "  sudo apt-get install -y ${missing_pkgs[*]}" >&2
  exit 1
fi

echo "causeway: installing ${missing_pkgs[*]} from Debian" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing_pkgs[@]}" >/dev/null
# Debian's etcd-server package starts a system etcd on the default ports;
# tests start their own on free ports, so stop the system one (only when
# this run installed it: other etcd processes are not ours to stop).
if [[ " ${missing_pkgs[*]} " == *" etcd-server "* ]]; then
  if command -v systemctl >/dev/null 2>&1; then
    systemctl disable --now etcd >/dev/null 2>&1 || true
  fi
  pkill -x etcd >/dev/null 2>&1 || true
fi
console_npm
