"""Small matplotlib helpers shared by the paper figures."""

from __future__ import annotations

from pathlib import Path

import math

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from bench.evaluation.intervals import accuracy_interval, bootstrap_median_interval  # noqa: E402
from bench.records import AttackRecord  # noqa: E402

BAND_ALPHA = 0.18


def save(fig, out_dir: Path, stem: str) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{stem}.png", out_dir / f"{stem}.pdf"]
    for path in paths:
        fig.savefig(path, dpi=150, bbox_inches="tight")
    plt.close(fig)
    return paths


def curve(ax, record: AttackRecord, label: str, metric: str = "top1") -> None:
    """Accuracy (or top-5 / MRR) vs eps of one attack record, in percent.

    Accuracies (top-1, top-5) get a band: the 95 % Wilson interval over the record's examples.
    The MRR is a mean of reciprocal ranks, not a proportion, and the records hold no per-example
    ranks: it is drawn without a band."""
    m = record.metrics
    eps = [float(e) for e in m.robust_accuracy]
    if metric == "top1":
        values = list(m.robust_accuracy.values())
    else:
        values = [getattr(m.rank.adversarial[e], metric) for e in m.robust_accuracy]
    (line,) = ax.plot(eps, [100 * v for v in values], marker="o", ms=3, label=label)
    if metric in ("top1", "top5"):
        low, high = zip(*(accuracy_interval(v, m.n_examples) for v in values))
        ax.fill_between(eps, [100 * v for v in low], [100 * v for v in high], color=line.get_color(), alpha=BAND_ALPHA,
                        linewidth=0)


def minimal_brackets(record: AttackRecord) -> tuple[np.ndarray, np.ndarray]:
    """Per example, the grid bracket [lower, upper] its minimal perturbation lies in.

    The records keep, per example, whether it survived each eps of the grid (not its norm): an
    example misclassified when clean has perturbation 0; one last robust at eps_i lies in
    (eps_i, eps_i+1]; one robust at the largest eps in (eps_max, inf) (possibly never broken)."""
    m = record.metrics
    grid = sorted((float(e), bits) for e, bits in m.per_example.robust.items())
    n = m.n_examples
    clean = np.array([c == "1" for c in m.per_example.clean])
    first = next((eps for eps, _ in grid if eps > 0), math.inf)
    lower, upper = np.zeros(n), np.where(clean, first, 0.0)  # clean-correct, broken at the first eps: (0, first]
    for i, (eps, bits) in enumerate(grid):
        robust = np.array([b == "1" for b in bits]) & clean
        nxt = grid[i + 1][0] if i + 1 < len(grid) else math.inf
        lower = np.where(robust, eps, lower)
        upper = np.where(robust, nxt, upper)
    return lower, upper


def median_interval(record: AttackRecord, transform=None) -> tuple[float, float]:
    """Bootstrap 95 % interval (seeded) of the median minimal perturbation over the examples, from
    their grid brackets; ``transform`` (monotone) maps a norm to the plotted quantity."""
    lower, upper = minimal_brackets(record)
    if transform is not None:
        lower, upper = transform(lower), transform(upper)
    return bootstrap_median_interval(lower, upper)


def bars_with_intervals(ax, labels: list[str], values: list[float], intervals: list[tuple[float, float]], colors) -> None:
    """Bars with 95 % interval whiskers; an upper bound that is inf is drawn as an arrow to the top (open-ended)."""
    x = np.arange(len(labels))
    ax.bar(x, values, color=colors)
    finite_top = max([v for v in values] + [h for _, h in intervals if math.isfinite(h)] + [0.0])
    top = 1.15 * finite_top if finite_top > 0 else 1.0
    for xi, v, (low, high) in zip(x, values, intervals):
        open_ended = not math.isfinite(high)
        ax.errorbar([xi], [v], yerr=[[max(v - low, 0)], [0 if open_ended else max(high - v, 0)]], fmt="none", ecolor="black",
                    elinewidth=1.2, capsize=4)
        if open_ended:
            ax.annotate("", xy=(xi, top), xytext=(xi, v), arrowprops={"arrowstyle": "->", "color": "black", "lw": 1.2})
            ax.text(xi, top, "open-ended", ha="center", va="bottom", fontsize=6)
    ax.set_ylim(0, top * (1.1 if any(not math.isfinite(h) for _, h in intervals) else 1.05))
    ax.set_xticks(x, labels, rotation=20, ha="right", fontsize=8)


def finish(ax, title: str, xlabel: str, ylabel: str = "accuracy (%)") -> None:
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def subplots(n: int, width: float = 4.2, height: float = 3.4):
    fig, axes = plt.subplots(1, n, figsize=(width * n, height), squeeze=False)
    return fig, list(axes[0])
