#!/usr/bin/env bash
# The main job: install what is missing, build kiln (Release, build/), then run
# it on the bundled LeNet: describe it, measure its Fashion-MNIST accuracy, time it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
ninja -C build kiln
echo; echo "== kiln info models/lenet.onnx"
build/kiln info models/lenet.onnx
echo; echo "== kiln eval models/lenet.onnx --dataset fashion-mnist (recorded: $(grep -o '"top1": [0-9.]*' models/lenet.json | cut -d' ' -f2)%)"
build/kiln eval models/lenet.onnx --dataset fashion-mnist
echo; echo "== kiln bench models/lenet.onnx"
build/kiln bench models/lenet.onnx
