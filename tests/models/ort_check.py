#!/usr/bin/env python3
"""Checks that ONNX Runtime loads a model kiln exported and computes what the
original computes: ort_check.py EXPORTED.onnx INPUT.npy EXPECTED.npy [RTOL].
Exit 0 on match, 1 on mismatch, 77 when onnxruntime is not installed (skip)."""
import sys

try:
    import onnxruntime as ort
except ImportError:
    print("onnxruntime is not installed: skipped")
    sys.exit(77)
import numpy as np

model, inp, expected = sys.argv[1:4]
rtol = float(sys.argv[4]) if len(sys.argv) > 4 else 1e-4
sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
x = np.load(inp)
y = sess.run(None, {sess.get_inputs()[0].name: x})[0]
want = np.load(expected)
rel = float(np.max(np.abs(y - want)) / np.max(np.abs(want)))
print(f"onnxruntime {ort.__version__} on {model}: relative error {rel:.3g}")
sys.exit(0 if y.shape == want.shape and rel <= rtol else 1)
