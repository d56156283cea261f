#!/usr/bin/env python3
"""PyTorch peers of `spark bench kernels`, on the same GPU in the same job, with the same entry names.

Each case mirrors one of src/Spark.Native/Benchmarks/KernelPlan.cs (names are `model:op:shape`, built the same way):
bf16 F.linear at the projection and LM-head shapes, RMSNorm as Hugging Face's torch ops (and F.rms_norm when present),
HF's rotate-half RoPE, silu(gate)*up, F.scaled_dot_product_attention causal forward / backward / decode (GQA through
enable_gqa when this torch has it, else repeat_interleave outside the timed region), log_softmax + gather forward and
forward+backward over [T, V] with the peak extra memory from torch.cuda.max_memory_allocated, cross-entropy forward +
backward, torch.optim.AdamW(fused=True) over the same parameter count (fp32 parameters: the master-weight update),
the gradient norm, and top-p sampling.

Timing as the engine's: torch.cuda.Event around the region, warm-up first, median of the runs, a write of a buffer
larger than L2 before each run. Where a case has several torch formulations, each is timed and the fastest is the peer
(`peer` names it, `variants` lists all).

    python3 benchmarks/torch_kernels.py --json torch.json [--model all] [--seq 512,2048,8192] [--reps 20]
    python3 benchmarks/torch_kernels.py --list                          # names only, no GPU needed
    python3 benchmarks/torch_kernels.py --device cpu --tiny --reps 2    # smoke run of every case on tiny shapes
"""

import argparse
import datetime
import json
import math
import os
import statistics
import subprocess
import sys
import time

# model: hidden, intermediate, layers, heads, kv heads, head dim, vocab, tied, rope theta (formats.md)
MODELS = {
    "qwen2.5-1.5b": dict(h=1536, i=8960, layers=28, nh=12, nkv=2, hd=128, v=151936, tied=True, theta=1e6),
    "qwen2.5-7b": dict(h=3584, i=18944, layers=28, nh=28, nkv=4, hd=128, v=152064, tied=False, theta=1e6),
}
# --tiny: the same cases at shapes a CPU runs in seconds (names carry the tiny shapes)
TINY = {
    "qwen2.5-1.5b": dict(h=64, i=160, layers=2, nh=4, nkv=2, hd=16, v=1000, tied=True, theta=1e6),
    "qwen2.5-7b": dict(h=96, i=224, layers=2, nh=6, nkv=2, hd=16, v=1200, tied=False, theta=1e6),
}
EPS = 1e-6


def parameter_count(m):
    h, q, kv = m["h"], m["nh"] * m["hd"], m["nkv"] * m["hd"]
    layer = h * q + q + 2 * (h * kv + kv) + q * h + 3 * h * m["i"] + 2 * h
    return m["v"] * h * (1 if m["tied"] else 2) + m["layers"] * layer + h


def causal_flops(b, s, nh, hd):
    return 4.0 * hd * nh * b * (s * (s + 1) / 2.0)


class Case:
    def __init__(self, model, op, shape, bound, flops, bytes_, build):
        self.name = f"{model}:{op}:{shape}"
        self.model, self.op, self.shape, self.bound = model, op, shape, bound
        self.flops, self.bytes, self.build = flops, bytes_, build


def plan(args, torch=None, F=None):
    """The cases, in the engine's order. `build(dev)` returns {variant: (fn, reset_or_None)} plus optional memory probe."""
    cases = []
    tokens = args.tokens
    for name in args.models:
        m = (TINY if args.tiny else MODELS)[name]
        h, inter, nh, nkv, hd, v = m["h"], m["i"], m["nh"], m["nkv"], m["hd"], m["v"]
        qw, kvw = nh * hd, nkv * hd
        t = tokens

        for proj, n, k, bias in [("q_proj", qw, h, True), ("k_proj", kvw, h, True), ("v_proj", kvw, h, True), ("o_proj", h, qw, False),
                                 ("gate_proj", inter, h, False), ("up_proj", inter, h, False), ("down_proj", h, inter, False),
                                 ("lm_head", v, h, False)]:
            def build(dev, n=n, k=k, bias=bias, t=t):
                x = rand(torch, (t, k), dev, -1, 1)
                w = rand(torch, (n, k), dev, -0.05, 0.05)
                b = rand(torch, (n,), dev, -0.1, 0.1) if bias else None
                return {"F.linear": (lambda: F.linear(x, w, b), None)}
            cases.append(Case(name, f"matmul.{proj}", f"T{t}xN{n}xK{k}", "compute", 2.0 * t * n * k,
                              2.0 * (t * k + n * k + t * n + (n if bias else 0)), build))

        def build_norm(dev, t=t, h=h):
            x = rand(torch, (t, h), dev, -1, 1)
            w = rand(torch, (h,), dev, 0.5, 1.5)

            def hf():  # transformers' Qwen2RMSNorm
                xf = x.float()
                var = xf.pow(2).mean(-1, keepdim=True)
                return w * (xf * torch.rsqrt(var + EPS)).to(x.dtype)
            variants = {"hf_torch_ops": (hf, None)}
            if hasattr(F, "rms_norm"):
                variants["F.rms_norm"] = (lambda: F.rms_norm(x, (h,), w, EPS), None)
            return variants
        cases.append(Case(name, "rmsnorm", f"T{t}xH{h}", "memory", 4.0 * t * h, 2.0 * (2.0 * t * h + h), build_norm))

        def build_rope(dev, t=t, nh=nh, hd=hd, theta=m["theta"]):
            q = rand(torch, (t, nh, hd), dev, -1, 1)
            inv = 1.0 / (theta ** (torch.arange(0, hd, 2, device=dev, dtype=torch.float32) / hd))
            freqs = torch.outer(torch.arange(t, device=dev, dtype=torch.float32), inv)
            emb = torch.cat((freqs, freqs), dim=-1)
            cos, sin = emb.cos().to(q.dtype)[:, None, :], emb.sin().to(q.dtype)[:, None, :]

            def rotate_half(x):
                x1, x2 = x[..., : hd // 2], x[..., hd // 2:]
                return torch.cat((-x2, x1), dim=-1)
            return {"hf_apply_rotary": (lambda: q * cos + rotate_half(q) * sin, None)}
        cases.append(Case(name, "rope.q", f"T{t}xNH{nh}xHD{hd}", "memory", 3.0 * t * qw, 4.0 * t * qw + 4.0 * t + 2.0 * hd, build_rope))

        def build_swiglu(dev, t=t, inter=inter):
            g = rand(torch, (t, inter), dev, -4, 4)
            u = rand(torch, (t, inter), dev, -1, 1)
            return {"F.silu*up": (lambda: F.silu(g) * u, None)}
        cases.append(Case(name, "swiglu", f"T{t}xI{inter}", "memory", 6.0 * t * inter, 6.0 * t * inter, build_swiglu))

        for s in args.seq:
            b = max(1, args.attention_tokens // s)
            cases.append(Case(name, "attention.fwd", f"B{b}xS{s}", "compute", causal_flops(b, s, nh, hd),
                              2.0 * b * s * (2.0 * qw + 2.0 * kvw), lambda dev, b=b, s=s, nh=nh, nkv=nkv, hd=hd: sdpa_case(torch, F, dev, b, s, nh, nkv, hd, False)))
            cases.append(Case(name, "attention.bwd", f"B{b}xS{s}", "compute", 2.5 * causal_flops(b, s, nh, hd),
                              2.0 * b * s * (2.0 * qw + 2.0 * kvw) + 4.0 * b * s * (qw + 2.0 * kvw),
                              lambda dev, b=b, s=s, nh=nh, nkv=nkv, hd=hd: sdpa_case(torch, F, dev, b, s, nh, nkv, hd, True)))
        for s in args.seq:
            b = args.decode_rows
            cases.append(Case(name, "attention.decode", f"B{b}xS{s}", "memory", 4.0 * b * s * qw, 2.0 * (2.0 * b * s * kvw + 2.0 * b * qw),
                              lambda dev, b=b, s=s, nh=nh, nkv=nkv, hd=hd: decode_case(torch, F, dev, b, s, nh, nkv, hd)))

        tvh = float(t) * v * h
        inputs = 2.0 * (t * h + v * h)
        cases.append(Case(name, "logprob.fwd", f"T{t}xH{h}xV{v}", "compute", 2 * tvh, inputs + 12.0 * t,
                          lambda dev, t=t, h=h, v=v: logprob_case(torch, F, dev, t, h, v, False)))
        cases.append(Case(name, "logprob.fwd+bwd", f"T{t}xH{h}xV{v}", "compute", 8 * tvh, 2 * inputs + 4.0 * t * h + 8.0 * v * h,
                          lambda dev, t=t, h=h, v=v: logprob_case(torch, F, dev, t, h, v, True)))

        def build_ce(dev, t=t, v=v):
            logits = rand(torch, (t, v), dev, -4, 4).requires_grad_(True)
            targets = torch.randint(0, v, (t,), device=dev, generator=gen(torch, dev, 3))

            def run():
                logits.grad = None
                F.cross_entropy(logits.float(), targets).backward()
            return {"F.cross_entropy+backward": (run, None)}
        cases.append(Case(name, "cross_entropy", f"T{t}xV{v}", "memory", 5.0 * t * v, 4.0 * t * v + 8.0 * t, build_ce))

        p_total = parameter_count(m)
        p = min(p_total, args.max_adamw_parameters)
        pshape = f"P{p}" if p == p_total else f"P{p}of{p_total}"

        def build_adamw(dev, p=p):
            w = torch.nn.Parameter(rand(torch, (p,), dev, -0.05, 0.05, dtype=torch.float32))
            w.grad = rand(torch, (p,), dev, -1e-3, 1e-3, dtype=torch.float32)
            fused = {"fused": True} if dev.type == "cuda" else {}  # the fused kernels are CUDA's
            opt = torch.optim.AdamW([w], lr=1e-5, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01, **fused)
            return {("AdamW(fused=True), fp32 params" if fused else "AdamW, fp32 params"): (opt.step, None)}
        cases.append(Case(name, "adamw.master", pshape, "memory", 12.0 * p, 30.0 * p, build_adamw))

        def build_norm2(dev, p=p):
            g = rand(torch, (p,), dev, -1e-3, 1e-3, dtype=torch.float32)
            return {"linalg.vector_norm().item()": (lambda: torch.linalg.vector_norm(g).item(), None)}
        cases.append(Case(name, "sum_of_squares", pshape, "memory", 2.0 * p, 4.0 * p, build_norm2))

        def build_sample(dev, rows=args.sample_rows, v=v):
            logits = rand(torch, (rows, v), dev, -8, 8)
            g = gen(torch, dev, 1234)

            def run():  # transformers' TopPLogitsWarper after temperature, then multinomial
                scores = logits.float() / 0.7
                sorted_logits, sorted_idx = torch.sort(scores, descending=False)
                cum = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
                remove = cum <= (1 - 0.95)
                remove[..., -1:] = False
                scores = scores.masked_fill(remove.scatter(1, sorted_idx, remove), -float("inf"))
                return torch.multinomial(scores.softmax(dim=-1), 1, generator=g)
            return {"hf_top_p+multinomial": (run, None)}
        cases.append(Case(name, "sample", f"R{args.sample_rows}xV{v}", "memory", 5.0 * args.sample_rows * v, 2.0 * args.sample_rows * v, build_sample))
    return cases


def gen(torch, dev, seed):
    g = torch.Generator(device=dev)
    g.manual_seed(seed)
    return g


def rand(torch, shape, dev, lo, hi, dtype=None):
    dtype = dtype or torch.bfloat16
    x = torch.empty(shape, device=dev, dtype=torch.float32 if dtype == torch.bfloat16 else dtype)
    x.uniform_(lo, hi)
    return x.to(dtype)


def sdpa_case(torch, F, dev, b, s, nh, nkv, hd, backward):
    # the engine's layout [B·S, NH·HD] is [B, S, NH, HD]; SDPA reads [B, NH, S, HD] views of it
    q = rand(torch, (b, s, nh, hd), dev, -1, 1).transpose(1, 2)
    k = rand(torch, (b, s, nkv, hd), dev, -1, 1).transpose(1, 2)
    v = rand(torch, (b, s, nkv, hd), dev, -1, 1).transpose(1, 2)

    def make(ctx, kk, vv, extra):
        if not backward:
            return lambda: run_in(ctx, lambda: F.scaled_dot_product_attention(q, kk, vv, is_causal=True, **extra))
        qg, kg, vg = (x.detach().requires_grad_(True) for x in (q, kk, vv))
        out = run_in(ctx, lambda: F.scaled_dot_product_attention(qg, kg, vg, is_causal=True, **extra))
        d_out = rand(torch, tuple(out.shape), dev, -0.1, 0.1)
        return lambda: run_in(ctx, lambda: out.backward(d_out, retain_graph=True))
    return sdpa_variants(torch, F, dev, k, v, nh // nkv, make)


def decode_case(torch, F, dev, b, s, nh, nkv, hd):
    q = rand(torch, (b, 1, nh, hd), dev, -1, 1).transpose(1, 2)
    k = rand(torch, (b, s, nkv, hd), dev, -1, 1).transpose(1, 2)
    v = rand(torch, (b, s, nkv, hd), dev, -1, 1).transpose(1, 2)

    def make(ctx, kk, vv, extra):
        return lambda: run_in(ctx, lambda: F.scaled_dot_product_attention(q, kk, vv, is_causal=False, **extra))
    return sdpa_variants(torch, F, dev, k, v, nh // nkv, make)


def sdpa_variants(torch, F, dev, k, v, group, make):
    """One variant per SDPA backend this torch can pin (flash, cuDNN, efficient) that accepts the inputs: GQA through
    enable_gqa when it takes it, else k and v repeated per query head (outside the timed region). The default dispatch
    only when none of them runs."""
    if not hasattr(F, "scaled_dot_product_attention"):
        raise RuntimeError(f"torch {torch.__version__} has no F.scaled_dot_product_attention")
    gqa = gqa_kwargs(torch, F)
    repeated = None
    variants = {}
    for label, ctx in sdpa_backends(torch, dev):
        if label == "sdpa[default]" and variants:
            break
        tries = ([("gqa", k, v, gqa)] if gqa else []) + [("repeat_kv", None, None, {})]
        for how, kk, vv, extra in tries:
            if kk is None:
                if repeated is None:
                    repeated = (k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1))
                kk, vv = repeated
            try:
                fn = make(ctx, kk, vv, extra)
                fn()  # does this backend take these inputs?
                variants[f"{label} {how}"] = (fn, None)
                break
            except RuntimeError:
                continue
    return variants


def gqa_kwargs(torch, F):
    import inspect
    try:
        return {"enable_gqa": True} if "enable_gqa" in inspect.signature(F.scaled_dot_product_attention).parameters else {}
    except (TypeError, ValueError):
        # builtins without a signature: try the keyword
        try:
            x = torch.zeros(1, 2, 4, 8)
            F.scaled_dot_product_attention(x, x[:, :1], x[:, :1], enable_gqa=True)
            return {"enable_gqa": True}
        except (TypeError, RuntimeError):
            return {}


def sdpa_backends(torch, dev):
    """(label, context-manager factory or None): flash, cuDNN and efficient on CUDA when this torch can pin them; default always."""
    out = []
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
        if dev.type == "cuda":
            for label in ("FLASH_ATTENTION", "CUDNN_ATTENTION", "EFFICIENT_ATTENTION"):
                if hasattr(SDPBackend, label):
                    out.append((f"sdpa[{label.lower()}]", lambda label=label: sdpa_kernel([getattr(SDPBackend, label)])))
    except ImportError:
        pass
    out.append(("sdpa[default]", None))
    return out


def run_in(ctx, fn):
    if ctx is None:
        return fn()
    with ctx():
        return fn()


def logprob_case(torch, F, dev, t, h, v, backward):
    hidden = rand(torch, (t, h), dev, -1, 1)
    weight = rand(torch, (v, h), dev, -0.05, 0.05)
    targets = torch.randint(0, v, (t,), device=dev, generator=gen(torch, dev, 7))

    def forward(x, w):  # TRL's selective_log_softmax on fp32 logits, as RL trainers compute per-token log-probs
        logits = (x @ w.t()).float()
        return torch.log_softmax(logits, dim=-1).gather(-1, targets[:, None]).squeeze(-1)
    if not backward:
        return {"log_softmax+gather": (lambda: forward(hidden, weight), None)}
    x = hidden.detach().requires_grad_(True)
    w = weight.detach().requires_grad_(True)
    g = rand(torch, (t,), dev, -1, 1, dtype=torch.float32)

    def run():
        forward(x, w).backward(g)  # grads accumulate into x.grad, w.grad (allocated by the warm-up)
    return {"log_softmax+gather fwd+bwd": (run, None)}


def measure(torch, dev, fn, reset, warmup, reps, max_seconds, flush):
    for _ in range(warmup):
        if reset:
            reset()
        fn()
    sync(torch, dev)
    times, total = [], 0.0
    while len(times) < max(1, reps):
        if reset:
            reset()
        if dev.type == "cuda":
            flush.add_(1.0)
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            ms = start.elapsed_time(end)
        else:
            t0 = time.perf_counter()
            fn()
            ms = (time.perf_counter() - t0) * 1e3
        times.append(ms)
        total += ms / 1e3
        if len(times) >= 3 and total > max_seconds:
            break
    return sorted(times)


def sync(torch, dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def peak_extra(torch, dev, fn):
    """Bytes allocated beyond what was live before one more call (torch's caching-allocator view)."""
    if dev.type != "cuda":
        return None
    sync(torch, dev)
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    fn()
    sync(torch, dev)
    return torch.cuda.max_memory_allocated() - base


def machine(torch, dev):
    info = {"torch": torch.__version__, "cuda": getattr(torch.version, "cuda", None), "device": dev.type,
            "host_cores": os.cpu_count(), "python": sys.version.split()[0]}
    if dev.type == "cuda":
        p = torch.cuda.get_device_properties(dev)
        info.update(gpu=p.name, compute_capability=f"{p.major}.{p.minor}", memory_bytes=p.total_memory, multiprocessors=p.multi_processor_count)
        try:
            info["nvidia_driver"] = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                                   capture_output=True, text=True, timeout=20).stdout.strip().splitlines()[0]
        except (OSError, subprocess.SubprocessError, IndexError):
            info["nvidia_driver"] = None
    return info


def commit(given):
    if given:
        return given
    if os.environ.get("SPARK_COMMIT"):
        return os.environ["SPARK_COMMIT"]
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def ceilings(torch, F, dev, args, flush):
    out = {"copy_gbps": None, "gemm_tflops": None,
           "copy_model": "Tensor.copy_ of 1 GiB; counts the read and the write",
           "gemm_model": "bf16 8192³ torch.matmul, 2·N³ FLOPs"}
    if dev.type != "cuda":
        return out
    a = torch.empty(1 << 29, device=dev, dtype=torch.bfloat16).fill_(1.0)
    b = torch.empty_like(a)
    ms = statistics.median(measure(torch, dev, lambda: b.copy_(a), None, args.warmup, 10, 1.0, flush))
    out["copy_gbps"] = 2.0 * (1 << 30) / (ms * 1e-3) / 1e9
    del a, b
    n = 8192
    x = rand(torch, (n, n), dev, -1, 1)
    w = rand(torch, (n, n), dev, -0.05, 0.05)
    ms = statistics.median(measure(torch, dev, lambda: torch.matmul(x, w), None, args.warmup, 10, 1.0, flush))
    out["gemm_tflops"] = 2.0 * n ** 3 / (ms * 1e-3) / 1e12
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="all", help="qwen2.5-1.5b, qwen2.5-7b or all (comma-separated)")
    ap.add_argument("--seq", default="512,2048,8192")
    ap.add_argument("--tokens", type=int, default=4096)
    ap.add_argument("--attention-tokens", type=int, default=16384)
    ap.add_argument("--decode-rows", type=int, default=64)
    ap.add_argument("--sample-rows", type=int, default=64)
    ap.add_argument("--max-adamw-parameters", type=int, default=1_600_000_000)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--case-seconds", type=float, default=2.0)
    ap.add_argument("--budget-seconds", type=float, default=0.0, help="skip the remaining cases after this many seconds (0: no limit)")
    ap.add_argument("--filter", default=None)
    ap.add_argument("--json", default=None)
    ap.add_argument("--commit", default=None)
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--tiny", action="store_true", help="tiny shapes (CPU smoke runs)")
    ap.add_argument("--list", action="store_true", help="print the case names and exit")
    args = ap.parse_args()
    names = list(MODELS) if args.model == "all" else [m.strip() for m in args.model.split(",")]
    for n in names:
        if n not in MODELS:
            ap.error(f"--model: unknown model '{n}' (expected {', '.join(MODELS)} or all)")
    args.models = names
    args.seq = [int(s) for s in args.seq.split(",")]
    if args.tiny:
        args.tokens, args.attention_tokens, args.decode_rows, args.sample_rows = 32, 64, 4, 4
        args.seq = [16, 32]
        args.max_adamw_parameters = 100_000

    if args.list:
        for c in plan(args):
            if not args.filter or args.filter.lower() in c.name.lower():
                print(c.name)
        return 0

    import torch
    import torch.nn.functional as F
    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: torch sees no CUDA device (use --device cpu --tiny for a smoke run)", file=sys.stderr)
        return 1
    dev = torch.device(args.device)
    torch.manual_seed(0)
    flush = torch.empty(64 << 20, device=dev, dtype=torch.float32) if dev.type == "cuda" else None  # 256 MiB > L2
    clock = time.time()
    report = {"suite": "torch_kernels", "machine": machine(torch, dev), "commit": commit(args.commit),
              "timestamp_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(),
              "settings": {"models": names, "sequence_lengths": args.seq, "tokens": args.tokens, "attention_tokens": args.attention_tokens,
                           "decode_rows": args.decode_rows, "reps": args.reps, "warmup": args.warmup, "case_seconds": args.case_seconds,
                           "tiny": args.tiny, "timing": "torch.cuda.Event around the region, median; 256 MiB written before each run"},
              "ceilings": None, "entries": []}

    def save():
        if args.json:
            tmp = args.json + ".tmp"
            with open(tmp, "w") as f:
                json.dump(report, f, indent=2, ensure_ascii=False)
                f.write("\n")
            os.replace(tmp, args.json)

    report["ceilings"] = ceilings(torch, F, dev, args, flush)
    print(f"{report['machine'].get('gpu', dev.type)}, torch {torch.__version__}; ceilings: {report['ceilings']['copy_gbps'] or 0:.0f} GB/s copy, "
          f"{report['ceilings']['gemm_tflops'] or 0:.0f} TFLOP/s bf16 GEMM", flush=True)
    save()
    for c in plan(args, torch, F):
        if args.filter and args.filter.lower() not in c.name.lower():
            continue
        entry = {"name": c.name, "model": c.model, "op": c.op, "shape": c.shape, "bound": c.bound, "flops": c.flops, "bytes": c.bytes,
                 "status": "ok", "median_ms": None, "min_ms": None, "runs": 0, "tflops": None, "gbps": None, "peer": None,
                 "variants": {}, "peak_extra_bytes": None, "error": None}
        if args.budget_seconds > 0 and time.time() - clock > args.budget_seconds:
            entry.update(status="skipped", error=f"the run's budget of {args.budget_seconds:.0f} s was spent")
            report["entries"].append(entry)
            continue
        try:
            variants = c.build(dev)
            if not variants:
                raise RuntimeError("no torch formulation runs here")
            best = None
            for label, (fn, reset) in variants.items():
                times = measure(torch, dev, fn, reset, args.warmup, args.reps, args.case_seconds, flush)
                med = statistics.median(times)
                entry["variants"][label] = med
                if best is None or med < best[1]:
                    best = (label, med, times, fn)
            label, med, times, fn = best
            entry.update(peer=label, median_ms=med, min_ms=times[0], runs=len(times),
                         tflops=c.flops / (med * 1e-3) / 1e12 if med > 0 else None, gbps=c.bytes / (med * 1e-3) / 1e9 if med > 0 else None)
            if c.op.startswith("logprob"):
                entry["peak_extra_bytes"] = peak_extra(torch, dev, fn)
            del variants
        except Exception as e:  # one case failing (out of memory, an old torch) is that entry's result
            entry.update(status="error", error=f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
        finally:
            if dev.type == "cuda":
                torch.cuda.empty_cache()
        report["entries"].append(entry)
        rate = (f"{entry['tflops']:.1f} TFLOP/s" if c.bound == "compute" else f"{entry['gbps']:.0f} GB/s") if entry["median_ms"] else ""
        print(f"  {c.name:<58} {entry['status']:<7} {entry['median_ms'] or 0:10.3f} ms  {rate:>14}  {entry['peer'] or entry['error'] or ''}", flush=True)
        save()
    save()
    ok = sum(e["status"] == "ok" for e in report["entries"])
    print(f"{ok} of {len(report['entries'])} torch cases measured" + (f"; wrote {args.json}" if args.json else ""))
    return 0 if ok > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
