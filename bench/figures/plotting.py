"""Small matplotlib helpers shared by the paper figures."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from bench.records import AttackRecord  # noqa: E402


def save(fig, out_dir: Path, stem: str) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{stem}.png", out_dir / f"{stem}.pdf"]
    for path in paths:
        fig.savefig(path, dpi=150, bbox_inches="tight")
    plt.close(fig)
    return paths


def curve(ax, record: AttackRecord, label: str, metric: str = "top1") -> None:
    """Accuracy (or top-5 / MRR) vs eps of one attack record, in percent."""
    m = record.metrics
    eps = [float(e) for e in m.robust_accuracy]
    if metric == "top1":
        values = list(m.robust_accuracy.values())
    else:
        values = [getattr(m.rank.adversarial[e], metric) for e in m.robust_accuracy]
    ax.plot(eps, [100 * v for v in values], marker="o", ms=3, label=label)


def finish(ax, title: str, xlabel: str, ylabel: str = "accuracy (%)") -> None:
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def subplots(n: int, width: float = 4.2, height: float = 3.4):
    fig, axes = plt.subplots(1, n, figsize=(width * n, height), squeeze=False)
    return fig, list(axes[0])
