#!/usr/bin/env bash
# Installs the Debian packages kiln needs, only those missing (root, Debian 12).
# Used by scripts/setup.sh and scripts/test.sh; safe to run repeatedly.
set -euo pipefail
cd "$(dirname "$0")/.."
PKGS=(
  build-essential cmake ninja-build pkg-config
  libonnx-dev libprotobuf-dev protobuf-compiler
  libcli11-dev nlohmann-json3-dev libgtest-dev libbenchmark-dev zlib1g-dev
  libonnx-testdata dataset-fashion-mnist
  python3-torch python3-torchvision python3-onnx python3-numpy python3-venv python3-pip
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "kiln: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# ONNX Runtime (PyPI) for the interchange tests, in the project's venv (.venv),
# which also sees Debian's numpy/torch/onnx. Without network the tests that
# need it are skipped, never failed.
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c "import onnxruntime" 2>/dev/null; then
  /usr/bin/python3 -m venv --system-site-packages .venv
  .venv/bin/pip install -q --disable-pip-version-check onnxruntime ||
    echo "kiln: warning: could not install onnxruntime from PyPI; ONNX Runtime checks will be skipped"
fi
