"""Figures comparing defenses side by side on one analysis (PNG and PDF)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from bench.analysis.filters import METRICS as FILTER_METRICS  # noqa: E402

CONSISTENCY_PANELS = (
    ("consistency", "AI nearer its source than median AN-to-target"),
    ("distance_ratio", "mean d(AI, source) / mean d(AN, target class)"),
    ("ai_nearest_is_source", "AI's nearest clean image is its source"),
)
FILTER_LABELS = {
    "sparsity": "sparsity (fraction of sparse kernels)",
    "variance_entropy": "variance entropy H (log10, max log10 9)",
    "variance_entropy_norm": "H / randomness bound",
    "orthogonality": "orthogonality",
}


def save_figure(fig: plt.Figure, stem: Path) -> list[Path]:
    """Write ``stem``.png and ``stem``.pdf and close the figure."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".pdf")]
    for path in paths:
        fig.savefig(path, dpi=150, bbox_inches="tight")
    plt.close(fig)
    return paths


# Overlapping lines stay visible (a transform defense has its base's filters exactly).
STYLES = [{"linestyle": ls, "marker": m} for ls, m in (("-", "o"), ("--", "s"), (":", "^"), ("-.", "D"), ((0, (5, 1)), "v"))]


def _style(i: int) -> dict[str, Any]:
    return STYLES[i % len(STYLES)]


def _values(rows: list[Any]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in rows], dtype=float)


def rsa_figure(results: dict[str, dict[str, Any]], stem: Path, title: str) -> list[Path]:
    """Top row: per defense, the Spearman correlations between RDMs; bottom row: consistency per layer, one line per defense."""
    n = len(results)
    width = max(3.6 * n, 4.2 * len(CONSISTENCY_PANELS))
    fig = plt.figure(figsize=(width, 8.2), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.1, 1])
    heat_axes = top.subplots(1, n, squeeze=False)[0]
    image = None
    for ax, (label, metrics) in zip(heat_axes, results.items()):
        layers = metrics["layers"]
        rho = np.array([_values(row) for row in metrics["rdm_spearman"]])
        image = ax.imshow(rho, vmin=-1, vmax=1, cmap="RdBu_r")
        ax.set_xticks(range(len(layers)), layers, rotation=60, ha="right", fontsize=7)
        ax.set_yticks(range(len(layers)), layers, fontsize=7)
        for i in range(len(layers)):
            for j in range(len(layers)):
                if np.isfinite(rho[i, j]):
                    ax.text(j, i, f"{rho[i, j]:.2f}", ha="center", va="center", fontsize=6,
                            color="white" if abs(rho[i, j]) > 0.6 else "black")
        kinds = metrics["stimulus_kinds"]
        ax.set_title(f"{label}\nclean {kinds['clean']}, AI {kinds['ai']}, AN {kinds['an']}", fontsize=8)
    if image is not None:
        top.colorbar(image, ax=list(heat_axes), shrink=0.8, label="Spearman correlation of RDMs")
    for ax, (key, ylabel) in zip(bottom.subplots(1, len(CONSISTENCY_PANELS), squeeze=False)[0], CONSISTENCY_PANELS):
        for i, (label, metrics) in enumerate(results.items()):
            layers = metrics["layers"]
            ax.plot(range(len(layers)), _values([metrics["consistency"][layer][key] for layer in layers]), ms=4,
                    label=label, alpha=0.8, **_style(i))
            ax.set_xticks(range(len(layers)), layers, rotation=60, ha="right", fontsize=7)
        if key == "distance_ratio":
            ax.set_yscale("log")
        else:
            ax.set_ylim(-0.03, 1.03)
        ax.set_title(ylabel, fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    return save_figure(fig, stem)


def filters_figure(results: dict[str, dict[str, Any]], stem: Path, title: str) -> list[Path]:
    """Sparsity, entropy (raw and normalised) and orthogonality vs normalised depth, one line per defense."""
    fig, axes = plt.subplots(1, len(FILTER_METRICS), figsize=(4.2 * len(FILTER_METRICS), 3.6), squeeze=False,
                             layout="constrained")
    for ax, key in zip(axes[0], FILTER_METRICS):
        for i, (label, metrics) in enumerate(results.items()):
            layers = metrics["layers"]
            ax.plot([row["depth"] for row in layers], _values([row[key] for row in layers]), ms=4, label=label, alpha=0.8,
                    **_style(i))
        if key == "sparsity":
            top = max([row["sparsity"] for m in results.values() for row in m["layers"]], default=0.0)
            ax.set_ylim(-0.02, max(0.1, 1.1 * top))
        ax.set_xlabel("normalised depth (3x3 conv layers)")
        ax.set_title(FILTER_LABELS[key], fontsize=9)
        ax.set_xlim(-0.05, 1.05)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    return save_figure(fig, stem)
