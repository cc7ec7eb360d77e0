#!/usr/bin/env bash
# Make the Python environment for the peer measurements: <repo>/.cache/peers-venv with
# numpy and zipnn 0.5.4 (installed --no-deps: zipnn declares torch and safetensors, but its
# byte API does not use them; zipnn_bench.py registers a stand-in torch when torch is absent).
# zipnn 0.5.4 is an sdist with a C extension: needs gcc and the Python headers
# (Debian: apt-get install python3-venv python3-dev gcc).
#   scripts/peers/setup.sh   then   .cache/peers-venv/bin/python scripts/peers/zipnn_bench.py ...
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$REPO/.cache/peers-venv"
PY="${PYTHON:-python3}"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
"$VENV/bin/python" -m pip install --quiet numpy
"$VENV/bin/python" -m pip install --quiet --no-deps zipnn==0.5.4
"$VENV/bin/python" -c 'import zipnn_core, numpy; print("ok: numpy", numpy.__version__)'
echo "$VENV/bin/python"
