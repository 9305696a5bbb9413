#!/usr/bin/python3
"""Train the classic LeNet on Fashion-MNIST and export it to ONNX.

What it does
------------
1. Reads the Fashion-MNIST IDX files (gzipped) directly with gzip + numpy.
   The reader checks the IDX magic numbers (0x00000803 for images,
   0x00000801 for labels), the image dimensions (28x28) and that the
   payload size matches the header.
2. Trains this network deterministically (fixed seeds, one CPU thread,
   torch.use_deterministic_algorithms):

       conv1 1->10 k5 -> maxpool 2 -> relu
       conv2 10->20 k5 -> maxpool 2 -> relu
       flatten (320) -> fc1 320->50 -> relu -> fc2 50->10 (logits)

   There is no softmax in the exported graph: the output is raw logits.
3. Exports the model with torch.onnx.export (opset 13, input "input",
   output "logits", dynamic batch axis "N" on both, constant folding on).
4. Re-evaluates the 10k test set from the EXPORTED ONNX file twice:
   with torch (the float32 reference count, written as "correct") and
   with an independent pure-numpy float32 interpreter for the handful of
   ops this graph uses (Conv, MaxPool, Relu, Flatten/Reshape, Gemm, ...).
   It prints both accuracies and the number of images whose predicted
   class differs between the two.
5. Writes models/lenet.json describing the result.

Preprocessing convention (the C++ `kiln eval` uses exactly this):
    x = pixel / 255.0      (float32 division, no mean/std normalisation)
    layout NCHW, shape [N, 1, 28, 28], dtype float32.

Inputs
------
    --data DIR   directory with train-images-idx3-ubyte.gz,
                 train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz,
                 t10k-labels-idx1-ubyte.gz
                 (default /usr/share/datasets/fashion-mnist)
    --out DIR    where lenet.onnx and lenet.json go (default: models/ next
                 to this script's parent directory, i.e. <repo>/models)

Outputs
-------
    <out>/lenet.onnx   the trained model (~100 KB)
    <out>/lenet.json   accuracy summary and training metadata

How to run (from the repository root; needs Debian's python3 with torch):
    /usr/bin/python3 scripts/train_lenet.py
"""

import argparse
import gzip
import json
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

SEED = 20240607
EPOCHS = 20
BATCH = 64
LR = 2e-3
MILESTONES = [10, 14, 17]  # learning rate x0.5 after these epochs
HFLIP = True  # random horizontal flips of training images
MIN_TOP1 = 89.5

IMAGE_MAGIC = 0x00000803  # unsigned byte, 3 dimensions
LABEL_MAGIC = 0x00000801  # unsigned byte, 1 dimension


# --------------------------------------------------------------------------
# IDX reader
# --------------------------------------------------------------------------

def _read_gz(path):
    with gzip.open(path, "rb") as f:
        return f.read()


def read_idx_images(path):
    """Return uint8 array [count, rows, cols] from a gzipped IDX3 file."""
    raw = _read_gz(path)
    if len(raw) < 16:
        raise ValueError("%s: too short for an IDX3 header" % path)
    magic, count, rows, cols = struct.unpack(">IIII", raw[:16])
    if magic != IMAGE_MAGIC:
        raise ValueError("%s: bad magic 0x%08x (want 0x%08x)"
                         % (path, magic, IMAGE_MAGIC))
    if rows != 28 or cols != 28:
        raise ValueError("%s: images are %dx%d, expected 28x28"
                         % (path, rows, cols))
    expected = 16 + count * rows * cols
    if len(raw) != expected:
        raise ValueError("%s: size %d, header implies %d"
                         % (path, len(raw), expected))
    data = np.frombuffer(raw, dtype=np.uint8, offset=16)
    return data.reshape(count, rows, cols)


def read_idx_labels(path):
    """Return uint8 array [count] from a gzipped IDX1 file."""
    raw = _read_gz(path)
    if len(raw) < 8:
        raise ValueError("%s: too short for an IDX1 header" % path)
    magic, count = struct.unpack(">II", raw[:8])
    if magic != LABEL_MAGIC:
        raise ValueError("%s: bad magic 0x%08x (want 0x%08x)"
                         % (path, magic, LABEL_MAGIC))
    if len(raw) != 8 + count:
        raise ValueError("%s: size %d, header implies %d"
                         % (path, len(raw), 8 + count))
    labels = np.frombuffer(raw, dtype=np.uint8, offset=8)
    if labels.size and labels.max() > 9:
        raise ValueError("%s: label out of range 0..9" % path)
    return labels


def load_split(data_dir, prefix):
    images = read_idx_images(
        os.path.join(data_dir, "%s-images-idx3-ubyte.gz" % prefix))
    labels = read_idx_labels(
        os.path.join(data_dir, "%s-labels-idx1-ubyte.gz" % prefix))
    if images.shape[0] != labels.shape[0]:
        raise ValueError("%s: %d images but %d labels"
                         % (prefix, images.shape[0], labels.shape[0]))
    return images, labels


def preprocess(images_u8):
    """uint8 [N,28,28] -> float32 [N,1,28,28], x = pixel / 255.0."""
    x = images_u8.astype(np.float32) / np.float32(255.0)
    return x.reshape(-1, 1, 28, 28)


# --------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------

class LeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 10, kernel_size=5)
        self.conv2 = nn.Conv2d(10, 20, kernel_size=5)
        self.fc1 = nn.Linear(320, 50)
        self.fc2 = nn.Linear(50, 10)

    def forward(self, x):
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2(x), 2))
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        return self.fc2(x)


def make_deterministic(seed):
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    np.random.seed(seed)
    try:
        torch.use_deterministic_algorithms(True)
    except Exception as exc:  # pragma: no cover - older torch
        print("warning: deterministic algorithms unavailable: %s" % exc)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True


def train(model, x_train, y_train, x_test, y_test, seed):
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    # Halve the learning rate a few times towards the end.
    sched = torch.optim.lr_scheduler.MultiStepLR(
        opt, milestones=MILESTONES, gamma=0.5)
    gen = torch.Generator()
    gen.manual_seed(seed)
    n = x_train.shape[0]
    for epoch in range(EPOCHS):
        t0 = time.time()
        model.train()
        perm = torch.randperm(n, generator=gen)
        total_loss = 0.0
        for start in range(0, n, BATCH):
            idx = perm[start:start + BATCH]
            xb = x_train[idx]
            yb = y_train[idx]
            if HFLIP:
                flip = torch.rand(idx.numel(), generator=gen) < 0.5
                xb = torch.where(flip.view(-1, 1, 1, 1), xb.flip(3), xb)
            opt.zero_grad()
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
            total_loss += loss.item() * idx.numel()
        sched.step()
        acc = torch_accuracy(model, x_test, y_test)[0] * 100.0 / len(y_test)
        print("epoch %2d  loss %.4f  test top1 %.2f%%  (%.1fs)"
              % (epoch + 1, total_loss / n, acc, time.time() - t0))
        sys.stdout.flush()


def torch_accuracy(model, x, y, batch=1000):
    """Return (correct count, predictions numpy) for a torch model."""
    model.eval()
    preds = []
    with torch.no_grad():
        for start in range(0, x.shape[0], batch):
            preds.append(model(x[start:start + batch]).argmax(1))
    pred = torch.cat(preds)
    return int((pred == y).sum().item()), pred.numpy()


# --------------------------------------------------------------------------
# Pure-numpy float32 evaluation of the exported ONNX graph
# --------------------------------------------------------------------------

def _attrs(node):
    import onnx
    out = {}
    for a in node.attribute:
        out[a.name] = onnx.helper.get_attribute_value(a)
    return out


def np_conv2d(x, w, b, strides, pads, dilations, group):
    """NCHW convolution via im2col + matmul, float32 throughout."""
    if group != 1:
        raise NotImplementedError("grouped Conv")
    if any(d != 1 for d in dilations):
        raise NotImplementedError("dilated Conv")
    n, c, h, wd = x.shape
    oc, ic, kh, kw = w.shape
    assert ic == c, (ic, c)
    pt, pl, pb, pr = pads
    if pt or pl or pb or pr:
        x = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    sh, sw = strides
    hp, wp = x.shape[2], x.shape[3]
    oh = (hp - kh) // sh + 1
    ow = (wp - kw) // sw + 1
    s = x.strides
    # view [n, c, kh, kw, oh, ow]
    cols = np.lib.stride_tricks.as_strided(
        x, shape=(n, c, kh, kw, oh, ow),
        strides=(s[0], s[1], s[2], s[3], s[2] * sh, s[3] * sw),
        writeable=False)
    cols = np.ascontiguousarray(cols).reshape(n, c * kh * kw, oh * ow)
    wm = w.reshape(oc, c * kh * kw)
    y = np.matmul(wm[None, :, :], cols)  # [n, oc, oh*ow]
    y = y.reshape(n, oc, oh, ow)
    if b is not None:
        y = y + b.reshape(1, oc, 1, 1)
    return y.astype(np.float32, copy=False)


def np_maxpool(x, kernel, strides, pads):
    if any(pads):
        raise NotImplementedError("padded MaxPool")
    n, c, h, w = x.shape
    kh, kw = kernel
    sh, sw = strides
    oh = (h - kh) // sh + 1
    ow = (w - kw) // sw + 1
    s = x.strides
    win = np.lib.stride_tricks.as_strided(
        x, shape=(n, c, oh, ow, kh, kw),
        strides=(s[0], s[1], s[2] * sh, s[3] * sw, s[2], s[3]),
        writeable=False)
    return win.max(axis=(4, 5))


def numpy_run_onnx(model_proto, x):
    """Interpret the (small) LeNet ONNX graph with numpy float32."""
    from onnx import numpy_helper
    g = model_proto.graph
    env = {}
    for init in g.initializer:
        arr = numpy_helper.to_array(init)
        if arr.dtype.kind == "f":
            arr = arr.astype(np.float32)
        env[init.name] = arr
    env[g.input[0].name] = x.astype(np.float32, copy=False)
    for node in g.node:
        a = _attrs(node)
        ins = [env[i] if i else None for i in node.input]
        op = node.op_type
        if op == "Conv":
            w = ins[1]
            k = w.shape[2:]
            y = np_conv2d(ins[0], w, ins[2] if len(ins) > 2 else None,
                          a.get("strides", [1, 1]),
                          a.get("pads", [0, 0, 0, 0]),
                          a.get("dilations", [1, 1]),
                          a.get("group", 1))
            if "kernel_shape" in a:
                assert list(a["kernel_shape"]) == list(k)
        elif op == "MaxPool":
            if a.get("ceil_mode", 0) or any(
                    d != 1 for d in a.get("dilations", [1, 1])):
                raise NotImplementedError("MaxPool attrs %r" % a)
            y = np_maxpool(ins[0], a["kernel_shape"],
                           a.get("strides", [1, 1]),
                           a.get("pads", [0, 0, 0, 0]))
        elif op == "Relu":
            y = np.maximum(ins[0], np.float32(0))
        elif op == "Flatten":
            axis = a.get("axis", 1)
            t = ins[0]
            y = t.reshape(int(np.prod(t.shape[:axis])), -1)
        elif op == "Reshape":
            t = ins[0]
            shape = [int(v) for v in ins[1]]
            if not a.get("allowzero", 0):
                shape = [t.shape[i] if v == 0 else v
                         for i, v in enumerate(shape)]
            y = t.reshape(shape)
        elif op == "Gemm":
            A, B = ins[0], ins[1]
            if a.get("transA", 0):
                A = A.T
            if a.get("transB", 0):
                B = B.T
            y = np.float32(a.get("alpha", 1.0)) * (A @ B)
            if len(ins) > 2 and ins[2] is not None:
                y = y + np.float32(a.get("beta", 1.0)) * ins[2]
        elif op == "MatMul":
            y = ins[0] @ ins[1]
        elif op == "Add":
            y = ins[0] + ins[1]
        else:
            raise NotImplementedError("numpy evaluator: op %s" % op)
        if y.dtype.kind == "f":
            y = y.astype(np.float32, copy=False)
        env[node.output[0]] = y
    return env[g.output[0].name]


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--out", default=os.path.join(here, "..", "models"))
    args = ap.parse_args()
    out_dir = os.path.normpath(args.out)
    os.makedirs(out_dir, exist_ok=True)

    import onnx

    make_deterministic(SEED)
    t_start = time.time()

    tr_img, tr_lab = load_split(args.data, "train")
    te_img, te_lab = load_split(args.data, "t10k")
    print("train %s  test %s" % (tr_img.shape, te_img.shape))
    x_train = torch.from_numpy(preprocess(tr_img))
    y_train = torch.from_numpy(tr_lab.astype(np.int64))
    x_test_np = preprocess(te_img)
    x_test = torch.from_numpy(x_test_np)
    y_test = torch.from_numpy(te_lab.astype(np.int64))

    model = LeNet()
    t_train = time.time()
    train(model, x_train, y_train, x_test, y_test, SEED)
    train_seconds = time.time() - t_train
    print("training took %.1fs" % train_seconds)

    model.eval()
    onnx_path = os.path.join(out_dir, "lenet.onnx")
    torch.onnx.export(
        model, torch.zeros(1, 1, 28, 28), onnx_path,
        opset_version=13,
        input_names=["input"], output_names=["logits"],
        dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}},
        do_constant_folding=True)
    proto = onnx.load(onnx_path)
    onnx.checker.check_model(proto)
    print("exported %s (%d bytes), ops: %s"
          % (onnx_path, os.path.getsize(onnx_path),
             [n.op_type for n in proto.graph.node]))

    # --- torch float32 evaluation with the exported weights ------------
    from onnx import numpy_helper
    exported = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    ref = LeNet()
    state = ref.state_dict()
    missing = [k for k in state if k not in exported]
    if missing:
        # Names changed during export: fall back to the trained weights,
        # which are what got exported.
        print("note: initializer names differ (%s); using trained model"
              % missing)
        ref = model
    else:
        ref.load_state_dict({k: torch.from_numpy(exported[k].copy())
                             for k in state})
    correct_t, pred_t = torch_accuracy(ref, x_test, y_test)

    # --- numpy float32 evaluation of the ONNX graph ---------------------
    pred_n = []
    for start in range(0, x_test_np.shape[0], 1000):
        logits = numpy_run_onnx(proto, x_test_np[start:start + 1000])
        assert logits.dtype == np.float32 and logits.shape[1] == 10
        pred_n.append(logits.argmax(1))
    pred_n = np.concatenate(pred_n)
    correct_n = int((pred_n == te_lab).sum())
    disagree = int((pred_n != pred_t).sum())

    n_test = int(te_lab.shape[0])
    top1_t = round(100.0 * correct_t / n_test, 2)
    top1_n = round(100.0 * correct_n / n_test, 2)
    print("torch  float32: %d / %d = %.2f%%" % (correct_t, n_test, top1_t))
    print("numpy  float32: %d / %d = %.2f%%" % (correct_n, n_test, top1_n))
    print("prediction disagreements torch vs numpy: %d" % disagree)

    meta = {
        "model": "lenet.onnx",
        "dataset": "fashion-mnist",
        "split": "t10k",
        "images": n_test,
        "correct": correct_t,
        "top1": top1_t,
        "preprocess": "x = pixel / 255.0, float32, NCHW [N,1,28,28]",
        "trained_with": "torch %s, Adam lr %g (x0.5 after epochs %s),"
                        " batch %d, cross-entropy, %s,"
                        " 1 CPU thread, deterministic"
                        % (torch.__version__, LR,
                           ", ".join(str(m) for m in MILESTONES), BATCH,
                           "random horizontal flips" if HFLIP
                           else "no augmentation"),
        "epochs": EPOCHS,
        "seed": SEED,
    }
    with open(os.path.join(out_dir, "lenet.json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    print("wrote %s" % os.path.join(out_dir, "lenet.json"))
    print("total time %.1fs" % (time.time() - t_start))

    if top1_t < MIN_TOP1:
        print("ERROR: top-1 %.2f%% below target %.1f%%" % (top1_t, MIN_TOP1))
        return 1
    if disagree:
        print("WARNING: numpy and torch disagree on %d images" % disagree)
    return 0


if __name__ == "__main__":
    sys.exit(main())
