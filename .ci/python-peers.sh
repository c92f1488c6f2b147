#!/usr/bin/env bash
# Installs the Python TAXII/STIX peers that test/interop/ runs against
# (taxii2-client, stix2-validator, medallion) and schemathesis, which
# test/api/fuzz.test.ts runs as <venv>/bin/st, pinned in
# .ci/requirements-peers.txt, into a virtual environment, and exports
# FEEDHUB_PYTHON=<venv>/bin/python.
#
# Usage:
#   source .ci/python-peers.sh && python_peers_setup
#   .ci/python-peers.sh                  install, then print the export line
#
# Environment:
#   FEEDHUB_CI_CACHE   cache directory, default $HOME/.cache/feedhub-ci; the
#                      venv is $FEEDHUB_CI_CACHE/venv and is reused while its
#                      stamp matches the requirements file
#   PYTHON             interpreter that creates the venv, default python3
#
# Network: pip reads PyPI (or the index that pip is configured with).

PYTHON_PEERS_REQUIREMENTS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/requirements-peers.txt"

python_peers_log() {
  echo "python-peers.sh: $*" >&2
}

# The venv is complete when its stamp holds the hash of the requirements file
# it was built from, its interpreter imports every peer and the schemathesis
# command line is there.
python_peers_complete() {
  local venv="$1" wanted="$2"
  [[ -x "$venv/bin/python" && -f "$venv/.feedhub-stamp" ]] || return 1
  [[ "$(cat "$venv/.feedhub-stamp")" == "$wanted" ]] || return 1
  "$venv/bin/python" -c 'import taxii2client.v21, stix2validator, medallion, schemathesis' 2>/dev/null || return 1
  [[ -x "$venv/bin/st" ]]
}

python_peers_setup() {
  local cache="${FEEDHUB_CI_CACHE:-$HOME/.cache/feedhub-ci}"
  local venv="$cache/venv" python="${PYTHON:-python3}" wanted
  wanted="$(sha256sum "$PYTHON_PEERS_REQUIREMENTS" | cut -d' ' -f1)" || return 1

  if ! python_peers_complete "$venv" "$wanted"; then
    command -v "$python" >/dev/null || {
      python_peers_log "$python not found; install Python 3.9 or later, or set PYTHON"
      return 1
    }
    python_peers_log "creating $venv from $PYTHON_PEERS_REQUIREMENTS"
    rm -rf "$venv"
    mkdir -p "$cache"
    if ! "$python" -m venv "$venv"; then
      python_peers_log "$python -m venv failed; install the venv module (Debian: python3-venv)"
      return 1
    fi
    if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
      --no-input -r "$PYTHON_PEERS_REQUIREMENTS"; then
      python_peers_log "pip install failed; see the pip output above"
      return 1
    fi
    echo "$wanted" >"$venv/.feedhub-stamp"
    python_peers_complete "$venv" "$wanted" || {
      python_peers_log "the peers do not import after installing; see $venv"
      return 1
    }
  fi
  export FEEDHUB_PYTHON="$venv/bin/python"
  python_peers_log "FEEDHUB_PYTHON=$FEEDHUB_PYTHON"
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  set -euo pipefail
  python_peers_setup
  echo "export FEEDHUB_PYTHON=$FEEDHUB_PYTHON"
fi
