#!/usr/bin/env python3
"""Joins `spark bench kernels --json` and `benchmarks/torch_kernels.py --json` by entry name, prints each speedup
(torch median / ours; above 1 means the engine is faster) against performance.md's targets, and writes one combined JSON.

Targets (performance.md, "Our targets"): GEMM through cuBLASLt ≥ 0.95× torch.matmul; fused causal attention forward and
backward ≥ 1.0× F.scaled_dot_product_attention; fused log-prob gather forward + backward ≥ 1.5× log_softmax + gather
with peak extra memory ≤ 1/8 of torch's. Other kernels are listed without a target.

    python3 benchmarks/kernel_ratios.py OURS.json TORCH.json [--out combined.json]

Standard library only (no jq on the GPU machine).
"""

import argparse
import json
import sys

TARGETS = [  # (op prefix, minimum speedup, what)
    ("matmul.", 0.95, "GEMM ≥ 0.95× torch.matmul"),
    ("attention.fwd", 1.0, "attention ≥ 1.0× SDPA"),
    ("attention.bwd", 1.0, "attention ≥ 1.0× SDPA"),
    ("logprob.fwd+bwd", 1.5, "log-prob ≥ 1.5× torch, memory ≤ 1/8"),
]
MEMORY_FRACTION = 1 / 8


def target_of(op):
    for prefix, minimum, what in TARGETS:
        if op == prefix or (prefix.endswith(".") and op.startswith(prefix)):
            return minimum, what
    return None, None


def join(ours, torch):
    theirs = {e["name"]: e for e in torch.get("entries", [])}
    rows = []
    for e in ours.get("entries", []):
        t = theirs.get(e["name"])
        minimum, what = target_of(e["op"])
        row = {"name": e["name"], "op": e["op"], "ours_status": e["status"], "torch_status": t["status"] if t else "absent",
               "ours_ms": e.get("median_ms"), "torch_ms": t.get("median_ms") if t else None, "torch_peer": t.get("peer") if t else None,
               "speedup": None, "target": minimum, "target_text": what, "verdict": "-",
               "ours_rate": rate(e), "torch_rate": rate(t) if t else None, "ours_fraction_of_ceiling": e.get("fraction_of_ceiling")}
        if row["ours_ms"] and row["torch_ms"]:
            row["speedup"] = row["torch_ms"] / row["ours_ms"]
        if e["op"].startswith("logprob"):
            row["ours_peak_extra_bytes"] = e.get("peak_extra_bytes")
            row["ours_retained_bytes"] = e.get("retained_bytes")
            row["torch_peak_extra_bytes"] = t.get("peak_extra_bytes") if t else None
        if minimum is not None:
            row["verdict"] = verdict(row, minimum, e["op"].startswith("logprob"))
        rows.append(row)
    names = {e["name"] for e in ours.get("entries", [])}
    only_torch = [name for name in theirs if name not in names]
    return rows, only_torch


def verdict(row, minimum, check_memory):
    if row["speedup"] is None:
        return "n/a (" + ("ours " + row["ours_status"] if row["ours_status"] != "ok" else "torch " + row["torch_status"]) + ")"
    ok = row["speedup"] >= minimum
    text = "PASS" if ok else "FAIL"
    if check_memory:
        mine, theirs = row.get("ours_peak_extra_bytes"), row.get("torch_peak_extra_bytes")
        if mine is None or not theirs:
            text += ", memory n/a"
        else:
            fits = mine <= theirs * MEMORY_FRACTION
            text = ("PASS" if ok and fits else "FAIL") + f", memory {mine / theirs:.3f} of torch's"
    return text


def rate(e):
    if not e or e.get("median_ms") is None:
        return None
    if e.get("bound") == "compute":
        return f"{e['tflops']:.1f} TFLOP/s" if e.get("tflops") is not None else None
    return f"{e['gbps']:.0f} GB/s" if e.get("gbps") is not None else None


def fmt_ms(ms):
    return "-" if ms is None else (f"{ms * 1000:.1f} us" if ms < 0.1 else f"{ms:.3f} ms")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("ours")
    ap.add_argument("torch")
    ap.add_argument("--out", default=None, help="write the combined JSON here")
    args = ap.parse_args()
    try:
        with open(args.ours) as f:
            ours = json.load(f)
        with open(args.torch) as f:
            torch = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    rows, only_torch = join(ours, torch)
    combined = {"suite": "kernels_vs_torch", "ours": {k: ours.get(k) for k in ("machine", "commit", "timestamp_utc", "settings", "ceilings")},
                "torch": {k: torch.get(k) for k in ("machine", "commit", "timestamp_utc", "settings", "ceilings")},
                "targets": [{"op": p, "minimum_speedup": m, "what": w} for p, m, w in TARGETS], "memory_fraction": MEMORY_FRACTION,
                "rows": rows, "only_in_torch": only_torch}
    if args.out:
        with open(args.out, "w") as f:
            json.dump(combined, f, indent=2, ensure_ascii=False)
            f.write("\n")

    oc, tc = ours.get("ceilings") or {}, torch.get("ceilings") or {}
    print(f"ceilings  ours: {oc.get('copy_gbps') or 0:.0f} GB/s copy, {oc.get('gemm_tflops') or 0:.0f} TFLOP/s GEMM   "
          f"torch: {tc.get('copy_gbps') or 0:.0f} GB/s, {tc.get('gemm_tflops') or 0:.0f} TFLOP/s")
    print(f"{'kernel':<58} {'ours':>11} {'torch':>11} {'speedup':>8}  {'target':>6}  verdict")
    for r in rows:
        sp = f"{r['speedup']:.2f}x" if r["speedup"] is not None else "-"
        tg = f"{r['target']:.2f}x" if r["target"] is not None else ""
        print(f"{r['name']:<58} {fmt_ms(r['ours_ms']):>11} {fmt_ms(r['torch_ms']):>11} {sp:>8}  {tg:>6}  {r['verdict']}")
    judged = [r for r in rows if r["target"] is not None]
    passed = sum(r["verdict"].startswith("PASS") for r in judged)
    failed = sum(r["verdict"].startswith("FAIL") for r in judged)
    print(f"targets: {passed} pass, {failed} fail, {len(judged) - passed - failed} not measured (of {len(judged)}); "
          f"{len(only_torch)} torch-only entries" + (f"; wrote {args.out}" if args.out else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
