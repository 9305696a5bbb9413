#!/usr/bin/env python3
"""ONNX Runtime predictions on the Fashion-MNIST test set (x = pixel/255):
ort_predict.py MODEL.onnx OUT.npy [N]. Writes the argmax class per image (int64).
Exit 77 when onnxruntime is not installed (the caller skips)."""
import gzip
import sys

try:
    import onnxruntime as ort
except ImportError:
    print("onnxruntime is not installed: skipped")
    sys.exit(77)
import numpy as np

model, out = sys.argv[1], sys.argv[2]
n = int(sys.argv[3]) if len(sys.argv) > 3 else 10000
with gzip.open("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz") as f:
    raw = f.read()
assert raw[:4] == b"\x00\x00\x08\x03", "bad IDX magic"
x = np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(-1, 1, 28, 28)[:n].astype(np.float32) / np.float32(255)
sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
preds = []
for i in range(0, len(x), 500):
    logits = sess.run(None, {sess.get_inputs()[0].name: x[i:i + 500]})[0]
    preds.append(np.argmax(logits, axis=1))
np.save(out, np.concatenate(preds).astype(np.int64))
print(f"onnxruntime {ort.__version__}: {len(x)} predictions")
