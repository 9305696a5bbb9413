#!/usr/bin/env python3
"""kiln vs ONNX Runtime vs PyTorch on the CPU: the same models in one run.

What it does
------------
For each model it runs kiln (`kiln bench --backend cpu`), ONNX Runtime
(CPU execution provider) and PyTorch (the model's frozen TorchScript file)
in alternation: --rounds rounds, and in each round every engine runs one
burst (a fresh process: load, warm up, then timed runs for --burst-seconds
and at least 10 runs).  The engine order rotates from round to round, so a
slow drift of the machine (frequency, a neighbour's load) is spread over
all engines instead of landing on one.  It prints a markdown table with the
median latency of each engine, kiln's ratio to each peer (above 1: kiln is
slower), the median and range over rounds of kiln's burst over ONNX
Runtime's burst of the same round (the pairs ran seconds apart, so a drift
of the machine's speed cancels in each), and throughput (batch * 1000 /
median ms), under a header line
naming the machine and the versions; --json-out writes everything,
including every burst, as JSON.

Same conditions for every engine
--------------------------------
  threads    --threads N (default 2): kiln --threads N; ORT
             intra_op_num_threads=N, inter_op_num_threads=1, sequential
             execution; torch.set_num_threads(N), set_num_interop_threads(1).
             OMP_NUM_THREADS/MKL_NUM_THREADS/OPENBLAS_NUM_THREADS=N for all.
  allocator  every engine runs with glibc malloc in its default settings:
             the environment is the driver's with LD_PRELOAD and every
             MALLOC_* variable removed (so a preloaded jemalloc/tcmalloc or
             an arena limit cannot favour one engine), nothing added.
  graph      ORT with graph optimization level ALL (its default); kiln with
             its default passes; PyTorch with the frozen TorchScript graph.
  input      standard-normal float32 of the same shape for all: ORT and
             PyTorch get the identical array (numpy seed --seed); kiln draws
             its own standard-normal values (`kiln bench` has no input
             option).  The transformer's sequence axis is --seq (128).

Medians
-------
A burst reports its median latency and its number of timed runs (kiln's
JSON has no per-run latencies).  An engine's median is the median over all
timed runs of all its bursts, each burst's runs taken at its burst median
(the run-count-weighted median of the burst medians); the same estimator
is used for all three engines so that the ratios compare like with like.
For ORT and PyTorch the JSON also holds the exact median over the pooled
per-run latencies.

Busy machine
------------
Every burst records how many cores other processes kept busy meanwhile
(/proc/stat minus this script's and its children's CPU time).  A process
on the same cores slows the engines unequally (a pool whose worker waits
for a core stalls every parallel section), so bursts where others used
more than 0.2 cores beyond those that --threads leaves free are named
under the table as unreliable.

int8
----
With --kiln-int8 kiln runs the model quantized to static W8A8 (`kiln
quantize`, calibrated on the model directory's input_0.npy, written to a
temporary folder) on its integer kernels, while ONNX Runtime and PyTorch
run the float32 model: the ratio is then kiln int8 / peer fp32, the
comparison of the issue's int8 goal.

Files and interpreters
----------------------
The driver imports nothing outside the standard library and runs under any
python3.  Bursts are subprocesses: `kiln bench ... --json`; this script with
--worker ort under --ort-python (default .venv/bin/python, which has
onnxruntime); this script with --worker torch under --torch-python
(default /usr/bin/python3, which has torch).  Models: for a name, the first
of DIR/<name>/model.onnx and DIR/<name>.onnx over the --model-dir
directories (default build/models, then models/).  PyTorch runs the
TorchScript file with the same stem (model.pt, lenet.pt) that
scripts/export_models.py writes next to each ONNX file; without one the
PyTorch column says n/a and a note below the table says why.

    python3 scripts/bench_compare.py --models lenet,resnet18 --rounds 3 \\
        --burst-seconds 1 --json-out /tmp/compare.json
    python3 scripts/bench_compare.py --model-dir /tmp/kiln-models --batch 32
"""

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENGINES = ["kiln", "ort", "torch"]
ENGINE_TITLE = {"kiln": "kiln", "ort": "ORT", "torch": "PyTorch"}
DEFAULT_MODELS = ["lenet", "resnet18", "resnet50", "mobilenet_v2", "transformer"]


# --------------------------------------------------------------------------
# Workers: one burst in a fresh process, result as one JSON object on stdout
# --------------------------------------------------------------------------

def _worker_inputs(specs, seed):
    import numpy as np
    arrays = []
    for i, (name, shape) in enumerate(specs):
        rng = np.random.RandomState(seed + i)
        arrays.append((name, rng.standard_normal(shape).astype(np.float32)))
    return arrays


def _timed_burst(run_once, warmup, seconds):
    """Warm-up runs, then timed runs until `seconds` and at least 10 runs
    (the rule `kiln bench --min-seconds` follows)."""
    for _ in range(warmup):
        run_once()
    lat = []
    start = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        out = run_once()
        t1 = time.perf_counter()
        lat.append((t1 - t0) * 1e3)
        if len(lat) >= 10 and t1 - start >= seconds:
            return lat, out


def _worker_result(lat, out, version):
    import resource
    import numpy as np
    flat = np.asarray(out, dtype=np.float64).ravel()
    return {
        "latencies_ms": lat,
        "iterations": len(lat),
        "median_ms": _median(lat),
        "p90_ms": _percentile(lat, 90),
        "min_ms": min(lat),
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "version": version,
        # A fingerprint of the first output, to check ORT and PyTorch ran
        # the same model on the same input.
        "output_head": [float(v) for v in flat[:16]],
        "output_absmax": float(np.abs(flat).max()) if flat.size else 0.0,
    }


def worker_ort(a):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = a.threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(a.model, so, providers=["CPUExecutionProvider"])
    feeds = dict(_worker_inputs(a.input_specs, a.seed))
    lat, outs = _timed_burst(lambda: sess.run(None, feeds), a.warmup, a.seconds)
    return _worker_result(lat, outs[0], ort.__version__)


def worker_torch(a):
    import torch
    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    model = torch.jit.load(a.model)
    model.eval()
    xs = [torch.from_numpy(x) for _, x in _worker_inputs(a.input_specs, a.seed)]
    with torch.inference_mode():
        lat, out = _timed_burst(lambda: model(*xs), a.warmup, a.seconds)
    return _worker_result(lat, out.numpy(), torch.__version__)


def worker_probe(a):
    """The model's graph inputs: name, dims (int or symbol name), float?"""
    try:
        import onnx
        m = onnx.load(a.model, load_external_data=False)
        init = {t.name for t in m.graph.initializer}
        out = []
        for i in m.graph.input:
            if i.name in init:
                continue
            t = i.type.tensor_type
            dims = [d.dim_param if d.HasField("dim_param") else
                    (d.dim_value if d.HasField("dim_value") else "?")
                    for d in t.shape.dim]
            out.append({"name": i.name, "dims": dims,
                        "float32": t.elem_type == onnx.TensorProto.FLOAT})
        return {"inputs": out}
    except ImportError:
        import onnxruntime as ort
        sess = ort.InferenceSession(a.model, providers=["CPUExecutionProvider"])
        return {"inputs": [{"name": i.name,
                            "dims": [d if isinstance(d, int) else str(d) for d in i.shape],
                            "float32": i.type == "tensor(float)"}
                           for i in sess.get_inputs()]}


def worker_version(a):
    if a.worker == "ort-version":
        import onnxruntime as ort
        return {"version": ort.__version__}
    import torch
    return {"version": torch.__version__}


def worker_main(a):
    a.input_specs = []
    for spec in a.input or []:
        name, shape = spec.rsplit(":", 1)
        a.input_specs.append((name, tuple(int(d) for d in shape.split("x"))))
    fn = {"ort": worker_ort, "torch": worker_torch, "probe": worker_probe,
          "ort-version": worker_version, "torch-version": worker_version}[a.worker]
    json.dump(fn(a), sys.stdout)
    sys.stdout.write("\n")
    return 0


# --------------------------------------------------------------------------
# Statistics (no numpy in the driver)
# --------------------------------------------------------------------------

def _percentile(values, p):
    """Linear interpolation between closest ranks (as `kiln bench` does)."""
    v = sorted(values)
    idx = p / 100.0 * (len(v) - 1)
    lo = int(idx)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (idx - lo)


def _median(values):
    return _percentile(values, 50)


def _weighted_median(pairs):
    """Median of the multiset where value v occurs n times, for (v, n) pairs."""
    pairs = sorted(pairs)
    total = sum(n for _, n in pairs)
    # The middle position(s) of the pooled, sorted list (0-based).
    want = [(total - 1) // 2, total // 2]
    got = []
    seen = 0
    for v, n in pairs:
        while want and want[0] < seen + n:
            got.append(v)
            want.pop(0)
        seen += n
    return (got[0] + got[1]) / 2.0


# --------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------

def engine_env(threads):
    """The one environment every engine runs in (see the header)."""
    env = {k: v for k, v in os.environ.items()
           if k != "LD_PRELOAD" and not k.startswith("MALLOC_")}
    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[k] = str(threads)
    return env


def run_json(cmd, env, timeout):
    """Run cmd; return (parsed JSON of stdout, None) or (None, reason)."""
    try:
        p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout,
                           universal_newlines=True)
    except FileNotFoundError as e:
        return None, "cannot run %s: %s" % (cmd[0], e)
    except subprocess.TimeoutExpired:
        return None, "timed out after %ds: %s" % (timeout, " ".join(cmd))
    if p.returncode != 0:
        tail = (p.stderr.strip().splitlines() or ["(no stderr)"])[-1]
        return None, "exit %d: %s" % (p.returncode, tail)
    try:
        return json.loads(p.stdout), None
    except ValueError:
        return None, "unparsable output: %r" % p.stdout[:200]


def find_model(name, dirs):
    for d in dirs:
        for path in (os.path.join(d, name, "model.onnx"), os.path.join(d, name + ".onnx")):
            if os.path.isfile(path):
                return path
    return None


def cpu_info():
    model, flags = platform.processor() or "unknown", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, val = line.partition(":")
                key = key.strip()
                if key == "model name":
                    model = val.strip()
                elif key == "flags" and not flags:
                    flags = set(val.split())
    except OSError:
        pass
    simd = [f for f in ("avx2", "fma", "avx512f", "avx512_vnni") if f in flags]
    return model, simd


def git_commit():
    """HEAD of the checkout, read from .git without running git."""
    git = os.path.join(REPO, ".git")
    try:
        with open(os.path.join(git, "HEAD")) as f:
            head = f.read().strip()
        if not head.startswith("ref: "):
            return head[:12]
        ref = head[5:]
        path = os.path.join(git, ref)
        if os.path.isfile(path):
            with open(path) as f:
                return f.read().strip()[:12]
        with open(os.path.join(git, "packed-refs")) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 2 and parts[1] == ref:
                    return parts[0][:12]
    except OSError:
        pass
    return "unknown"


class CpuMeter:
    """CPU time that processes other than this one and its children used
    while it was alive, from /proc/stat and getrusage.  Another process on
    these cores distorts the engines unequally (an OpenMP barrier spins
    while its partner thread waits for a core), so every burst records it."""

    def __init__(self):
        self.t0 = time.time()
        self.busy0 = self._busy()
        self.ours0 = self._ours()

    @staticmethod
    def _busy():
        try:
            with open("/proc/stat") as f:
                v = [int(x) for x in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        # user nice system idle iowait irq softirq steal: all but idle/iowait.
        return (sum(v[:8]) - v[3] - v[4]) / float(os.sysconf("SC_CLK_TCK"))

    @staticmethod
    def _ours():
        import resource
        c, s = resource.getrusage(resource.RUSAGE_CHILDREN), resource.getrusage(resource.RUSAGE_SELF)
        return c.ru_utime + c.ru_stime + s.ru_utime + s.ru_stime

    def others_cores(self):
        """Average number of cores the others kept busy (None: unknown)."""
        busy1, wall = self._busy(), time.time() - self.t0
        if self.busy0 is None or busy1 is None or wall <= 0:
            return None
        return round(max(0.0, (busy1 - self.busy0) - (self._ours() - self.ours0)) / wall, 3)


class Engine:
    def __init__(self, key):
        self.key = key
        self.unavailable = None  # reason, when the engine cannot run at all
        self.version = "n/a"


def resolve_inputs(probe, batch, seq):
    """Concrete input shapes and kiln --dim bindings from the probed dims:
    the leading dim is the batch, any other symbolic dim the sequence."""
    specs, dims, problems = [], {}, []
    for inp in probe["inputs"]:
        if not inp["float32"]:
            problems.append("input %s is not float32" % inp["name"])
        shape = []
        for axis, d in enumerate(inp["dims"]):
            if isinstance(d, int) and d > 0:
                if axis == 0 and d != batch:
                    problems.append("input %s has a fixed batch of %d" % (inp["name"], d))
                shape.append(d)
            elif axis == 0:
                shape.append(batch)
            else:
                shape.append(seq)
                if isinstance(d, str) and d and d != "?":
                    dims[d] = seq
        specs.append((inp["name"], shape))
    return specs, dims, problems


def burst_cmd(engine, args, model, specs, kiln_dims, warmup):
    if engine == "kiln":
        cmd = [args.kiln, "bench", model.get("kiln_onnx", model["onnx"]), "--backend", "cpu",
               "--threads", str(args.threads), "--batch", str(args.batch),
               "--warmup", str(warmup), "--min-seconds", str(args.burst_seconds),
               "--seed", str(args.seed), "--json"]
        for k, v in sorted(kiln_dims.items()):
            cmd += ["--dim", "%s=%d" % (k, v)]
        return cmd
    python = args.ort_python if engine == "ort" else args.torch_python
    path = model["onnx"] if engine == "ort" else model["pt"]
    cmd = [python, os.path.abspath(__file__), "--worker", engine, "--model", path,
           "--threads", str(args.threads), "--warmup", str(warmup),
           "--seconds", str(args.burst_seconds), "--seed", str(args.seed)]
    for name, shape in specs:
        cmd += ["--input", "%s:%s" % (name, "x".join(str(d) for d in shape))]
    return cmd


def summarize_burst(engine, out):
    if engine == "kiln":
        lat = out["latency_ms"]
        s = {"median_ms": lat["median"], "p90_ms": lat["p90"], "min_ms": lat["min"],
             "iterations": out["iterations"], "peak_rss_bytes": out.get("peak_rss_bytes")}
        if "latencies_ms" in out:
            s["latencies_ms"] = out["latencies_ms"]
        return s
    return dict(out)


def bench_model(name, args, engines, env, log):
    res = {"model": name, "batch": args.batch, "threads": args.threads,
           "engines": {}, "notes": []}
    onnx_path = find_model(name, args.model_dir)
    if not onnx_path:
        res["error"] = "no %s/model.onnx or %s.onnx under %s" % (
            name, name, ", ".join(args.model_dir))
        return res
    pt_path = os.path.splitext(onnx_path)[0] + ".pt"
    res["onnx"] = onnx_path
    model = {"onnx": onnx_path, "pt": pt_path}

    if args.kiln_int8:
        calib = os.path.join(os.path.dirname(onnx_path), "input_0.npy")
        if not os.path.isfile(calib):
            res["error"] = "--kiln-int8 needs %s to calibrate on" % calib
            return res
        qpath = os.path.join(args.tmp_dir, name + "_w8a8.onnx")
        q = subprocess.run([args.kiln, "quantize", onnx_path, "--calib", calib, "--calib-samples", "1",
                            "-o", qpath], env=env, capture_output=True, text=True)
        if q.returncode != 0:
            res["error"] = "kiln quantize failed: %s" % (q.stderr.strip().splitlines() or ["?"])[-1]
            return res
        model["kiln_onnx"] = qpath
        res["kiln_model"] = qpath
        res["notes"].append("kiln runs the static W8A8 int8 model (kiln quantize); ORT and PyTorch run float32")

    probe, why = None, None
    for python in (args.torch_python, args.ort_python):
        probe, why = run_json([python, os.path.abspath(__file__), "--worker", "probe",
                               "--model", onnx_path], env, 120)
        if probe:
            break
    if not probe:
        res["error"] = "cannot read the model's inputs: %s" % why
        return res
    specs, kiln_dims, problems = resolve_inputs(probe, args.batch, args.seq)
    if problems:
        res["error"] = "; ".join(problems)
        return res
    res["inputs"] = {n: s for n, s in specs}

    active = []
    for e in ENGINES:
        r = {"bursts": [], "error": None}
        res["engines"][e] = r
        if engines[e].unavailable:
            r["error"] = engines[e].unavailable
        elif e == "torch" and not os.path.isfile(pt_path):
            r["error"] = ("no TorchScript file %s (PyTorch cannot read ONNX; "
                          "scripts/export_models.py writes model.pt next to "
                          "each model it exports)" % pt_path)
        else:
            active.append(e)
        if r["error"]:
            res["notes"].append("%s: %s" % (ENGINE_TITLE[e], r["error"]))

    for rnd in range(args.rounds):
        live = [e for e in active if not res["engines"][e]["error"]]
        if not live:
            break
        k = rnd % len(live)
        for e in live[k:] + live[:k]:
            r = res["engines"][e]
            if r["bursts"]:
                # Later bursts warm up for about --warmup-seconds, going by
                # this engine's previous median.
                prev = r["bursts"][-1]["median_ms"] / 1e3
                warmup = max(1, min(1000, int(math.ceil(args.warmup_seconds / max(prev, 1e-6)))))
            else:
                warmup = args.warmup
            cmd = burst_cmd(e, args, model, specs, kiln_dims, warmup)
            meter = CpuMeter()
            t0 = time.time()
            out, why = run_json(cmd, env, args.burst_timeout)
            if why:
                r["error"] = why
                res["notes"].append("%s: %s" % (ENGINE_TITLE[e], why))
                log("  %s round %d: FAILED %s" % (e, rnd + 1, why))
                continue
            b = summarize_burst(e, out)
            b["warmup"] = warmup
            b["round"] = rnd + 1
            b["wall_s"] = round(time.time() - t0, 2)
            b["others_cores"] = meter.others_cores()
            r["bursts"].append(b)
            log("  %-5s round %d: median %.4f ms over %d runs (%.1fs)"
                % (e, rnd + 1, b["median_ms"], b["iterations"], b["wall_s"]))

    for e, r in res["engines"].items():
        if r["error"] or not r["bursts"]:
            continue
        med = _weighted_median([(b["median_ms"], b["iterations"]) for b in r["bursts"]])
        r["median_ms"] = med
        r["iterations"] = sum(b["iterations"] for b in r["bursts"])
        r["throughput_per_s"] = args.batch * 1000.0 / med
        r["burst_medians_ms"] = [b["median_ms"] for b in r["bursts"]]
        r["peak_rss_bytes"] = max(b.get("peak_rss_bytes") or 0 for b in r["bursts"])
        if all("latencies_ms" in b for b in r["bursts"]):
            pooled = [v for b in r["bursts"] for v in b["latencies_ms"]]
            r["pooled_median_ms"] = _median(pooled)
            r["pooled_p90_ms"] = _percentile(pooled, 90)
        if not args.keep_latencies:
            for b in r["bursts"]:
                b.pop("latencies_ms", None)

    # kiln's burst over the peer's burst of the same round: the two ran
    # seconds apart, so a drift of the machine's speed over the run (this
    # host's swings 1.5x within minutes) cancels in each pair.
    kb = {b["round"]: b["median_ms"] for b in res["engines"]["kiln"]["bursts"]}
    res["paired_ratio"] = {}
    for peer in ("ort", "torch"):
        ratios = sorted(kb[b["round"]] / b["median_ms"] for b in res["engines"][peer]["bursts"]
                        if b["round"] in kb and b["median_ms"] > 0)
        if ratios:
            res["paired_ratio"][peer] = {"median": _median(ratios), "min": ratios[0], "max": ratios[-1],
                                         "rounds": len(ratios)}

    # Others only compete for cores beyond the ones the engine leaves free.
    spare = max(0, (os.cpu_count() or 1) - args.threads)
    busy = [(e, b["round"], b["others_cores"]) for e, r in res["engines"].items()
            for b in r["bursts"] if b.get("others_cores") is not None
            and b["others_cores"] > spare + 0.2]
    if busy:
        res["notes"].append(
            "other processes competed for the cores during %d burst(s) (up to %.2f cores busy, "
            "%d spare; %s): those timings are unreliable"
            % (len(busy), max(c for _, _, c in busy), spare,
                                ", ".join("%s r%d" % (ENGINE_TITLE[e], rnd) for e, rnd, _ in busy)))

    # ORT and PyTorch ran on the identical input: their outputs must agree,
    # or the TorchScript file is not the model in the ONNX file.
    o, t = res["engines"]["ort"], res["engines"]["torch"]
    if o["bursts"] and t["bursts"]:
        a, b = o["bursts"][0]["output_head"], t["bursts"][0]["output_head"]
        scale = max(1.0, o["bursts"][0]["output_absmax"])
        diff = max(abs(x - y) for x, y in zip(a, b)) / scale if a else 0.0
        res["ort_vs_torch_rel_diff"] = diff
        if diff > 1e-3:
            res["notes"].append("ORT and PyTorch outputs differ (relative %.3g): "
                                "the .pt may not be the ONNX file's model" % diff)
    return res


def fmt_ms(r):
    return "%.3f" % r["median_ms"] if r.get("median_ms") else "n/a"


def fmt_ratio(a, b):
    if a.get("median_ms") and b.get("median_ms"):
        return "%.2f" % (a["median_ms"] / b["median_ms"])
    return "n/a"


def fmt_tp(r):
    return "%.1f" % r["throughput_per_s"] if r.get("throughput_per_s") else "n/a"


def fmt_paired(res, peer):
    p = res.get("paired_ratio", {}).get(peer)
    if not p:
        return "n/a"
    return "%.2f (%.2f-%.2f)" % (p["median"], p["min"], p["max"])


def render(results, header):
    lines = [header, "",
             "| model | batch | threads | kiln ms | ORT ms | PyTorch ms | kiln/ORT | kiln/ORT by round "
             "| kiln/PyTorch | kiln inf/s | ORT inf/s | PyTorch inf/s |",
             "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|"]
    notes = []
    for res in results:
        if res.get("error"):
            lines.append("| %s | %d | %d | n/a | n/a | n/a | n/a | n/a | n/a | n/a | n/a | n/a |"
                         % (res["model"], res["batch"], res["threads"]))
            notes.append("%s: %s" % (res["model"], res["error"]))
            continue
        k, o, t = (res["engines"][e] for e in ENGINES)
        lines.append("| %s | %d | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            res["model"], res["batch"], res["threads"], fmt_ms(k), fmt_ms(o), fmt_ms(t),
            fmt_ratio(k, o), fmt_paired(res, "ort"), fmt_ratio(k, t), fmt_tp(k), fmt_tp(o), fmt_tp(t)))
        notes += ["%s: %s" % (res["model"], n) for n in res["notes"]]
    lines.append("")
    lines.append("Median latency in ms over all timed runs of all bursts; ratio = "
                 "kiln median / peer median (above 1: kiln slower); by round = the median (and range) "
                 "over rounds of kiln's burst over ORT's burst of the same round; "
                 "inf/s = batch * 1000 / median.")
    if notes:
        lines.append("")
        lines += ["- " + n for n in notes]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(
        description="Compare kiln (cpu backend), ONNX Runtime and PyTorch on CPU, "
                    "alternating engines round by round.")
    ap.add_argument("--models", nargs="+", default=DEFAULT_MODELS,
                    help="model names (space- or comma-separated; default: %s)"
                         % " ".join(DEFAULT_MODELS))
    ap.add_argument("--model-dir", action="append",
                    help="directory holding <name>/model.onnx or <name>.onnx; may be "
                         "repeated, searched in order (default: build/models, models)")
    ap.add_argument("--threads", type=int, default=2, help="threads of every engine (default 2)")
    ap.add_argument("--batch", type=int, default=1, help="batch size (default 1)")
    ap.add_argument("--seq", type=int, default=128,
                    help="length of a model's non-batch symbolic axes (transformer sequence)")
    ap.add_argument("--rounds", type=int, default=5, help="bursts per engine and model (default 5)")
    ap.add_argument("--burst-seconds", type=float, default=2.0,
                    help="timed seconds of a burst, after its warm-up; at least 10 runs (default 2)")
    ap.add_argument("--warmup", type=int, default=3,
                    help="warm-up runs of an engine's first burst")
    ap.add_argument("--warmup-seconds", type=float, default=0.3,
                    help="warm-up time of later bursts (runs estimated from the previous median)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random input")
    ap.add_argument("--kiln", default=os.path.join(REPO, "build", "kiln"),
                    help="kiln binary (default build/kiln)")
    ap.add_argument("--ort-python", default=os.path.join(REPO, ".venv", "bin", "python"),
                    help="interpreter with onnxruntime (default .venv/bin/python)")
    ap.add_argument("--torch-python", default="/usr/bin/python3",
                    help="interpreter with torch (default /usr/bin/python3)")
    ap.add_argument("--burst-timeout", type=int, default=900,
                    help="seconds before a burst is abandoned (default 900)")
    ap.add_argument("--kiln-int8", action="store_true",
                    help="kiln runs each model quantized to static W8A8 (ORT and PyTorch stay float32)")
    ap.add_argument("--json-out", help="write all results (every burst) as JSON here")
    ap.add_argument("--keep-latencies", action="store_true",
                    help="keep ORT's and PyTorch's per-run latencies in --json-out")
    # Worker mode (internal): one burst or one probe in this process.
    ap.add_argument("--worker", choices=["ort", "torch", "probe", "ort-version", "torch-version"],
                    help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    ap.add_argument("--input", action="append", help=argparse.SUPPRESS)
    ap.add_argument("--seconds", type=float, default=2.0, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker:
        return worker_main(args)

    args.models = [m for item in args.models for m in item.split(",") if m]
    args.model_dir = [os.path.abspath(d) for d in
                      (args.model_dir or [os.path.join(REPO, "build", "models"),
                                          os.path.join(REPO, "models")])]
    for name, v in (("--threads", args.threads), ("--batch", args.batch),
                    ("--rounds", args.rounds), ("--seq", args.seq)):
        if v < 1:
            ap.error("%s must be at least 1" % name)
    args.kiln = os.path.abspath(args.kiln)

    def log(msg):
        sys.stderr.write(msg + "\n")
        sys.stderr.flush()

    env = engine_env(args.threads)
    engines = {e: Engine(e) for e in ENGINES}
    if not os.access(args.kiln, os.X_OK):
        engines["kiln"].unavailable = "no kiln binary at %s (--kiln)" % args.kiln
    for e, python in (("ort", args.ort_python), ("torch", args.torch_python)):
        out, why = run_json([python, os.path.abspath(__file__), "--worker", e + "-version"], env, 120)
        if out:
            engines[e].version = out["version"]
        else:
            engines[e].unavailable = "%s under %s: %s" % (
                "onnxruntime" if e == "ort" else "torch", python, why)

    cpu, simd = cpu_info()
    machine = {"cpu": cpu, "simd": simd, "logical_cpus": os.cpu_count(),
               "kernel": platform.release(), "onnxruntime": engines["ort"].version,
               "torch": engines["torch"].version, "kiln_commit": git_commit(),
               "python_driver": platform.python_version()}
    header = ("Machine: %s (%s), %d logical CPUs, Linux %s; onnxruntime %s, torch %s, "
              "kiln %s; %d rounds x %.3g s bursts, engines alternating"
              % (cpu, " ".join(simd) or "no avx2", machine["logical_cpus"], machine["kernel"],
                 machine["onnxruntime"], machine["torch"], machine["kiln_commit"],
                 args.rounds, args.burst_seconds))
    log(header)

    if args.kiln_int8:
        header += "; kiln int8 (W8A8) vs float32 peers"
    results = []
    with tempfile.TemporaryDirectory(prefix="kiln-bench-") as tmp:
        args.tmp_dir = tmp
        for name in args.models:
            log("%s (batch %d, %d threads)" % (name, args.batch, args.threads))
            results.append(bench_model(name, args, engines, env, log))

    table = render(results, header)
    print(table)
    if args.json_out:
        doc = {"machine": machine,
               "settings": {k: getattr(args, k) for k in (
                   "threads", "batch", "seq", "rounds", "burst_seconds", "warmup",
                   "warmup_seconds", "seed", "kiln", "ort_python", "torch_python", "model_dir",
                   "kiln_int8")},
               "environment": {"removed": "LD_PRELOAD, MALLOC_*",
                               "set": {k: env[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                                           "OPENBLAS_NUM_THREADS")}},
               "results": results, "table": table}
        with open(args.json_out, "w") as f:
            json.dump(doc, f, indent=2)
        log("wrote %s" % args.json_out)
    failed = [r for r in results if r.get("error")]
    return 1 if failed and len(failed) == len(results) else 0


if __name__ == "__main__":
    sys.exit(main())
