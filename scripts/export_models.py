#!/usr/bin/python3
"""Export reference models with random weights, plus reference I/O, to ONNX.

What it does
------------
For each requested model it builds the network with RANDOM weights drawn
from a fixed seed (no pretrained weights, nothing is downloaded), puts it in
eval mode, draws a fixed-seed float32 input, records PyTorch's float32
output on that input, and exports the model with torch.onnx.export.
Every exported file is checked with onnx.checker.check_model; the script
prints each model's op histogram (op_type counts), opset and file size.

Models
------
    resnet18, resnet50, mobilenet_v2 (resnet18_bn: resnet18 with its BatchNormalization nodes kept)
        torchvision (weights=None), input [1,3,224,224], opset 13,
        input "input", output "output", dynamic batch axis "N".
    transformer
        torch.nn.TransformerEncoder with BERT-base shapes: 4 layers of
        TransformerEncoderLayer(d_model=768, nhead=12, dim_feedforward=3072,
        activation="gelu", dropout=0, batch_first=True), input
        [1,128,768], opset 14, input "input", output "output", dynamic axes
        "N" (batch) and "seq" (sequence length).
        The export uses the plain math path: enable_nested_tensor=False and
        both the reference run and the export run with autograd enabled on
        parameters that require grad, which makes torch 1.13 skip its fused
        "fast path" kernels (torch._transformer_encoder_layer_fwd,
        torch._native_multi_head_attention).  The graph therefore consists
        of standard ONNX ops only (MatMul/Add/Softmax/Erf/LayerNorm
        decomposed into ReduceMean/Sub/Pow/Sqrt/Div, ...); the script
        asserts that every node is in the default ONNX domain.

Outputs (per model, under --out DIR)
-------
    DIR/<name>/model.onnx     the exported graph with its random weights
    DIR/<name>/input_0.npy    float32 input (standard normal, fixed seed)
    DIR/<name>/output_0.npy   float32 PyTorch output, eval mode, on input_0
    DIR/<name>/ops.txt        distinct op types used, sorted, one per line
    DIR/<name>/model.pt       the same module (same weights) as frozen
                              TorchScript, for PyTorch in
                              scripts/bench_compare.py (PyTorch cannot
                              read ONNX): torch.jit.freeze(torch.jit.trace(
                              model.eval(), input)) under no_grad.  It is
                              traced on PyTorch's inference path, so the
                              transformer records torch's fused encoder
                              layer (the "fast path" the ONNX export
                              avoids), which is what PyTorch runs at
                              inference.  The script checks that the
                              loaded file reproduces output_0 and matches
                              the eager module on a batch of 2 (and, for
                              the transformer, sequence length 64), so the
                              traced shapes are not baked in.

The files are large (resnet50 is ~100 MB) and are generated at test time,
never committed.  Output is deterministic: same seed -> same files.

How to run (needs Debian's python3, which has torch/torchvision/onnx):
    /usr/bin/python3 scripts/export_models.py --out /tmp/kiln-models
    /usr/bin/python3 scripts/export_models.py --out DIR --models resnet18,transformer
"""

import argparse
import collections
import os
import sys
import time

import numpy as np
import torch

SEED = 1234
ALL_MODELS = ["resnet18", "resnet50", "mobilenet_v2", "transformer", "resnet18_bn"]


def _seed_everything(seed):
    torch.manual_seed(seed)
    np.random.seed(seed)


def _random_input(shape, seed):
    rng = np.random.RandomState(seed)
    return rng.standard_normal(shape).astype(np.float32)


# --------------------------------------------------------------------------
# Model builders: each returns (module, input shape, opset, dynamic_axes)
# --------------------------------------------------------------------------

def _calibrate_batchnorm(model, seed, batch=4):
    """Give BatchNorm layers realistic running statistics.

    With freshly initialised BatchNorm (mean 0, var 1, gamma 1, beta 0)
    eval mode is an identity: activations then drift (mobilenet_v2's
    logits end up ~1e-9, resnet50's ~1e2) and all folded Conv biases are
    zero, so the exporter shares them through Identity nodes.  One
    training-mode forward pass over a small fixed-seed random batch with
    momentum=None sets running_mean/var to that batch's statistics; gamma
    and beta get small random perturbations.  Afterwards the model is in
    eval mode and BatchNorm is folded into Conv by the exporter as usual.
    """
    bns = [m for m in model.modules()
           if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    with torch.no_grad():
        for bn in bns:
            bn.reset_running_stats()
            bn.momentum = None  # cumulative average over the passes run
            bn.weight.copy_(1.0 + 0.1 * torch.randn_like(bn.weight))
            bn.bias.copy_(0.1 * torch.randn_like(bn.bias))
        x = torch.from_numpy(_random_input((batch, 3, 224, 224), seed))
        model.train()
        model(x)
        model.eval()


def _torchvision(name):
    import torchvision
    ctor = getattr(torchvision.models, name)
    model = ctor(weights=None)
    _calibrate_batchnorm(model, SEED + 2)
    dyn = {"input": {0: "N"}, "output": {0: "N"}}
    return model, (1, 3, 224, 224), 13, dyn


class BertLikeEncoder(torch.nn.Module):
    """4 BERT-base-shaped transformer encoder layers (post-norm, GELU)."""

    def __init__(self, layers=4, d_model=768, nhead=12, ff=3072):
        super().__init__()
        layer = torch.nn.TransformerEncoderLayer(
            d_model=d_model, nhead=nhead, dim_feedforward=ff, dropout=0.0,
            activation="gelu", batch_first=True)
        self.encoder = torch.nn.TransformerEncoder(
            layer, num_layers=layers, enable_nested_tensor=False)
        # TransformerEncoder deep-copies one layer, so all layers start out
        # identical (and the exporter would then share their initializers
        # through Identity nodes).  Give every layer its own random weights;
        # biases and LayerNorm affine parameters get small random values
        # instead of 0/1 so that they are exercised too.
        with torch.no_grad():
            for name, p in self.encoder.named_parameters():
                if p.dim() >= 2:
                    torch.nn.init.xavier_uniform_(p)
                elif ".norm" in name and name.endswith(".weight"):
                    p.copy_(1.0 + 0.1 * torch.randn_like(p))
                else:
                    p.copy_(0.02 * torch.randn_like(p))

    def forward(self, x):
        return self.encoder(x)


def _transformer():
    model = BertLikeEncoder()
    dyn = {"input": {0: "N", 1: "seq"}, "output": {0: "N", 1: "seq"}}
    return model, (1, 128, 768), 14, dyn


def build(name):
    if name in ("resnet18", "resnet50", "mobilenet_v2"):
        return _torchvision(name)
    if name == "resnet18_bn":
        # The same network, exported with its BatchNormalization nodes kept
        # (TrainingMode.PRESERVE on an eval-mode model skips the exporter's
        # Conv+BN folding), so kiln's own fold_batchnorm pass has real work.
        return _torchvision("resnet18")
    if name == "transformer":
        return _transformer()
    raise SystemExit("unknown model %r (known: %s)"
                     % (name, ", ".join(ALL_MODELS)))


# --------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------

def _plain_path_forward(model, x):
    """Run model on x with the non-fused (plain math) code path.

    torch 1.13's eval-mode MultiheadAttention / TransformerEncoderLayer use
    fused kernels only when autograd is off or no argument requires grad.
    Keeping grad enabled on parameters that require grad forces the
    ordinary path, for the reference output and the traced graph alike.
    """
    if hasattr(torch.backends, "mha") and hasattr(
            torch.backends.mha, "set_fastpath_enabled"):
        torch.backends.mha.set_fastpath_enabled(False)
    with torch.enable_grad():
        return model(x)


def _max_rel_err(got, want):
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    return float(np.abs(got - want).max() / max(1.0, float(np.abs(want).max())))


def save_torchscript(model, x, y, pt_path, other_shape):
    """Save model as frozen TorchScript at pt_path and check the file.

    Returns the largest relative error of the loaded file against the
    reference output y on x and against the eager module on a fresh input of
    other_shape (a different batch, and sequence length if any).
    """
    for p in model.parameters():
        p.requires_grad_(False)
    with torch.no_grad():
        frozen = torch.jit.freeze(torch.jit.trace(model.eval(), (x,)))
    frozen.save(pt_path)
    loaded = torch.jit.load(pt_path)
    x2 = torch.from_numpy(_random_input(other_shape, SEED + 3))
    with torch.no_grad():
        want2 = model(x2).numpy()
    with torch.inference_mode():
        err = max(_max_rel_err(loaded(x).numpy(), y),
                  _max_rel_err(loaded(x2).numpy(), want2))
    if err > 1e-3:
        raise SystemExit("%s: TorchScript file differs from the module "
                         "(max relative error %.3g)" % (pt_path, err))
    return err


def export_one(name, out_root):
    t0 = time.time()
    import onnx

    _seed_everything(SEED)
    model, shape, opset, dyn = build(name)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(True)

    x_np = _random_input(shape, SEED + 1)
    x = torch.from_numpy(x_np)
    y = _plain_path_forward(model, x).detach().numpy().astype(np.float32)

    out_dir = os.path.join(out_root, name)
    os.makedirs(out_dir, exist_ok=True)
    onnx_path = os.path.join(out_dir, "model.onnx")
    np.save(os.path.join(out_dir, "input_0.npy"), x_np)
    np.save(os.path.join(out_dir, "output_0.npy"), y)

    with torch.enable_grad():
        torch.onnx.export(
            model, (x,), onnx_path,
            opset_version=opset,
            input_names=["input"], output_names=["output"],
            dynamic_axes=dyn,
            training=(torch.onnx.TrainingMode.PRESERVE if name.endswith("_bn")
                      else torch.onnx.TrainingMode.EVAL),
            do_constant_folding=True)

    proto = onnx.load(onnx_path)
    onnx.checker.check_model(proto)
    bad = [n.op_type for n in proto.graph.node if n.domain not in ("", "ai.onnx")]
    if bad:
        raise SystemExit("%s: non-standard ops in export: %s" % (name, bad))

    hist = collections.Counter(n.op_type for n in proto.graph.node)
    ops = sorted(hist)
    with open(os.path.join(out_dir, "ops.txt"), "w") as f:
        for op in ops:
            f.write(op + "\n")

    # The second check shape differs in every dynamic axis of the export.
    other_shape = list(shape)
    for axis in dyn["input"]:
        other_shape[axis] = 2 if axis == 0 else shape[axis] // 2
    pt_path = os.path.join(out_dir, "model.pt")
    pt_err = save_torchscript(model, x, y, pt_path, tuple(other_shape))

    opsets = ", ".join("%s:%d" % (o.domain or "ai.onnx", o.version)
                       for o in proto.opset_import)
    size = os.path.getsize(onnx_path)
    print("== %s: %s  %.2f MB  opset %s  nodes %d  initializers %d  (%.1fs)"
          % (name, onnx_path, size / 1e6, opsets, len(proto.graph.node),
             len(proto.graph.initializer), time.time() - t0))
    print("   input %s -> output %s, |output| max %.4g"
          % (list(x_np.shape), list(y.shape), float(np.abs(y).max())))
    print("   %s  %.2f MB  (TorchScript, max relative error %.2g)"
          % (pt_path, os.path.getsize(pt_path) / 1e6, pt_err))
    for op, count in sorted(hist.items(), key=lambda kv: (-kv[1], kv[0])):
        print("   %-20s %d" % (op, count))
    sys.stdout.flush()
    return ops


def main():
    ap = argparse.ArgumentParser(
        description="Export random-weight reference models to ONNX.")
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--models", default=",".join(ALL_MODELS),
                    help="comma-separated subset of: %s" % ",".join(ALL_MODELS))
    ap.add_argument("--threads", type=int, default=2,
                    help="torch CPU threads (default 2)")
    args = ap.parse_args()

    names = [m.strip() for m in args.models.split(",") if m.strip()]
    for n in names:
        if n not in ALL_MODELS:
            ap.error("unknown model %r (known: %s)" % (n, ", ".join(ALL_MODELS)))

    torch.set_num_threads(max(1, args.threads))
    try:
        torch.use_deterministic_algorithms(True)
    except Exception:
        pass

    t0 = time.time()
    for n in names:
        export_one(n, args.out)
    print("done: %d model(s) in %.1fs" % (len(names), time.time() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
