#!/usr/bin/env bash
# Validates Kubernetes manifests against the Kubernetes JSON schemas of several
# Kubernetes versions, with the PyPI package kubernetes-validate (which ships
# the schemas, so no network is needed once it is installed).
#
#   scripts/kubernetes-validate.sh 1.28 1.32 1.37 < manifests.yaml
#
# Reads a multi-document YAML stream on stdin and prints one JSON line per
# (document, version): {"doc", "kind", "apiVersion", "name", "requested",
# "version", "result", "path", "message"}, with result `passed`, `failed`
# (path and message say why) or `no-schema` (a kind the package has no schema
# for, such as a CRD's custom resource). Validation is strict: unknown fields
# fail. `version` is the schema version the package used, so a caller can
# check it is the one it asked for. Exits 0 when every document was read, 2
# when the package cannot be installed or the input is not YAML.
#
# The package is installed when missing, pinned, into a virtualenv under the
# cache directory ($CAUSEWAY_CACHE_DIR, default ~/.cache/causeway) with pip.
# `--install-only` installs and prints the interpreter's path.
set -euo pipefail

PACKAGE="kubernetes-validate==1.37.0"
cache_root="${CAUSEWAY_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/causeway}"
dest="$cache_root/kubernetes-validate"
py="$dest/venv/bin/python"

installed() {
  [ -x "$py" ] && "$py" -c 'import kubernetes_validate.utils' >/dev/null 2>&1
}

if ! installed; then
  if ! command -v python3 >/dev/null 2>&1; then
    echo "causeway: python3 is missing; it is needed to install $PACKAGE" >&2
    exit 2
  fi
  mkdir -p "$dest"
  # Serialise concurrent installers (parallel test threads and binaries).
  exec 9>"$dest/.lock"
  if command -v flock >/dev/null 2>&1; then
    flock 9
  fi
  if ! installed; then
    echo "causeway: installing $PACKAGE from PyPI into $dest/venv" >&2
    rm -rf "$dest/venv"
    if ! python3 -m venv "$dest/venv" >&2; then
      echo "causeway: 'python3 -m venv' failed (on Debian: apt-get install python3-venv)" >&2
      exit 2
    fi
    if ! "$dest/venv/bin/python" -m pip install --quiet --disable-pip-version-check "$PACKAGE" >&2; then
      echo "causeway: 'pip install $PACKAGE' failed (is PyPI reachable?)" >&2
      rm -rf "$dest/venv"
      exit 2
    fi
  fi
  exec 9>&-
fi

if [ "${1:-}" = "--install-only" ]; then
  echo "$py"
  exit 0
fi
if [ $# -eq 0 ]; then
  echo "usage: $0 VERSION... < manifests.yaml" >&2
  exit 2
fi

exec "$py" - "$@" 3<&0 <<'PY'
import json
import os
import sys

import yaml
import kubernetes_validate.utils as kv

versions = sys.argv[1:]
shipped = sorted({kv.major_minor(v) for v in kv.all_versions()})
for v in versions:
    if kv.major_minor(v.lstrip("v")) not in shipped:
        print(f"causeway: kubernetes-validate has no schemas for {v}; it ships {', '.join(shipped)}",
              file=sys.stderr)
        sys.exit(2)
try:
    with os.fdopen(3) as stream:
        docs = [d for d in yaml.safe_load_all(stream) if d]
except yaml.YAMLError as e:
    print(f"causeway: the manifests are not YAML: {e}", file=sys.stderr)
    sys.exit(2)

for i, doc in enumerate(docs):
    meta = doc.get("metadata") or {}
    for requested in versions:
        line = {
            "doc": i,
            "kind": doc.get("kind"),
            "apiVersion": doc.get("apiVersion"),
            "name": meta.get("name"),
            "requested": requested,
            "version": None,
            "result": "passed",
            "path": None,
            "message": None,
        }
        try:
            line["version"] = kv.validate(doc, requested, strict=True)
        except kv.ValidationError as e:
            line["version"] = e.version
            line["result"] = "failed"
            line["path"] = ".".join(str(p) for p in e.path)
            line["message"] = e.message
        except kv.SchemaNotFoundError as e:
            line["result"] = "no-schema"
            line["message"] = e.message
        except kv.VersionNotSupportedError as e:
            print(f"causeway: kubernetes-validate has no schemas for {e.version}", file=sys.stderr)
            sys.exit(2)
        print(json.dumps(line))
PY
