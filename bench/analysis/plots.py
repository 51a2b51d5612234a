"""Figures comparing defenses side by side on one analysis (PNG and PDF), 1200 px wide.

``results`` maps a defense's label to its analysis metrics, or to a list of them (one per seed:
lines are then the mean over the seeds' models, bands their range). Defenses keep the report's
colours and markers (``bench.reporting.style``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from bench.analysis.filters import METRICS as FILTER_METRICS  # noqa: E402
from bench.analysis.filters import SPARSITY_EPS  # noqa: E402
from bench.reporting.style import defense_color, defense_marker, figure_with_header  # noqa: E402,F401

WIDTH_IN = 8.0
DPI = 150
STYLE = {"font.size": 10, "axes.titlesize": 10, "axes.labelsize": 10, "legend.fontsize": 9.5,
         "xtick.labelsize": 9, "ytick.labelsize": 9}
CONSISTENCY_PANELS = (
    ("consistency", "AI nearer its source image than\nAN to its target class (share)"),
    ("distance_ratio", "d(AI, source) / d(AN, target class)\n(below 1: consistent)"),
    ("ai_nearest_is_source", "AI's nearest clean image\nis its source (share)"),
)
STIMULI = ("clean: test images the model classifies right; AI (adversarial interference): clean images with a small L∞ "
           "PGD perturbation{eps} that changes the model's decision; AN (adversarial noise): uniform noise optimised until "
           "the model assigns a chosen class (Zhang et al.'s two kinds of adversarial images)")
FILTER_LABELS = {
    "sparsity": "Share of sparse kernels",
    "variance_entropy": "Variance entropy H\n(log10; at most log10 9 = 0.95)",
    "variance_entropy_norm": "H / randomness bound\n(1: as diverse as random kernels)",
    "orthogonality": "Orthogonality of the filters\n(1: mutually orthogonal)",
}
SPARSITY_NOTE = ("Sparsity (the share of 3x3 kernels whose largest |weight| is at most {eps:g} % of the layer's largest) "
                 "is 0 in every layer of every model here: these small CNNs have no near-zero kernels, so its panel is left "
                 "out.")


def save_figure(fig: plt.Figure, stem: Path) -> list[Path]:
    """Write ``stem``.png and ``stem``.pdf at the figure's own size and close the figure."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".pdf")]
    for path in paths:
        fig.savefig(path, dpi=DPI, metadata={"CreationDate": None} if path.suffix == ".pdf" else None)
    plt.close(fig)
    return paths


def _seeds(results: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Every defense's metrics as a list over seeds."""
    return {label: (value if isinstance(value, list) else [value]) for label, value in results.items()}


def _values(rows: list[Any]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in rows], dtype=float)


def _line(ax, x, per_seed: np.ndarray, label: str, dashed: bool = False) -> None:
    """The mean over seeds (rows of ``per_seed``) and, for several seeds, their range as a band."""
    color = defense_color(label)
    with np.errstate(all="ignore"):
        mean = np.nanmean(per_seed, axis=0)
    ax.plot(x, mean, color=color, marker=defense_marker(label), ms=5, lw=1.8, ls="--" if dashed else "-", label=label,
            alpha=0.9)
    if len(per_seed) > 1:
        ax.fill_between(x, np.nanmin(per_seed, axis=0), np.nanmax(per_seed, axis=0), color=color, alpha=0.18, lw=0)


def _count(values: list[int]) -> str:
    """"92" / "3–92" (the range over seeds)."""
    return str(min(values)) if min(values) == max(values) else f"{min(values)}–{max(values)}"


def _header(title: str, subtitle: list[str] | str | None, body_height: float):
    lines = [subtitle] if isinstance(subtitle, str) else list(subtitle or [])
    return figure_with_header(WIDTH_IN, body_height, title, lines)


def rsa_figure(results: dict[str, Any], stem: Path, title: str, subtitle: list[str] | str | None = None) -> list[Path]:
    """Top row: per defense, the Spearman correlations between the layers' RDMs; bottom row: perceptual
    consistency per layer, one line per defense. The header explains AI and AN."""
    per_defense = _seeds(results)
    n = len(per_defense)
    lines = [subtitle] if isinstance(subtitle, str) else list(subtitle or [])
    if not any("AI (adversarial interference)" in line for line in lines):
        lines.append(STIMULI.format(eps=""))
    with plt.rc_context(STYLE):
        fig, body = _header(title, lines, 7.4)
        top, bottom = body.subfigures(2, 1, height_ratios=[1.2, 1])
        top.suptitle("How alike the layers' representational geometries are (RDM: 1 − Pearson r over all stimuli)",
                     x=0.01, ha="left", fontsize=9.5, fontweight="bold")
        bottom.suptitle("Perceptual consistency of each layer", x=0.01, ha="left", fontsize=9.5, fontweight="bold")
        heat_axes = top.subplots(1, n, squeeze=False)[0]
        size = 8 if n <= 2 else 6.5
        image = None
        names = {}
        for ax, (label, seeds) in zip(heat_axes, per_defense.items()):
            layers = seeds[0]["layers"]
            rho = np.nanmean([[_values(row) for row in m["rdm_spearman"]] for m in seeds], axis=0)
            image = ax.imshow(rho, vmin=-1, vmax=1, cmap="RdBu_r")
            ax.set_xticks(range(len(layers)), layers, rotation=45, ha="right", fontsize=size + 0.5)
            ax.set_yticks(range(len(layers)), layers, fontsize=size + 0.5)
            for i in range(len(layers)):
                for j in range(len(layers)):
                    if np.isfinite(rho[i, j]):
                        ax.text(j, i, f"{rho[i, j]:.2f}", ha="center", va="center", fontsize=size,
                                color="white" if abs(rho[i, j]) > 0.6 else "black")
            text = {k: _count([m["stimulus_kinds"][k] for m in seeds]) for k in ("clean", "ai", "an")}
            names[label] = f"{label} ({text['ai']} AI)"
            ax.set_title(f"{label}\n{text['clean']} clean, {text['ai']} AI, {text['an']} AN stimuli"
                         + (f" per seed ({len(seeds)} seeds)" if len(seeds) > 1 else ""), fontsize=9.5)
        if image is not None:
            top.colorbar(image, ax=list(heat_axes), shrink=0.85, label="Spearman ρ between\nthe layers' RDMs")
        panels = bottom.subplots(1, len(CONSISTENCY_PANELS), squeeze=False)[0]
        for ax, (key, panel_title) in zip(panels, CONSISTENCY_PANELS):
            for label, seeds in per_defense.items():
                layers = seeds[0]["layers"]
                values = np.array([_values([m["consistency"][layer][key] for layer in layers]) for m in seeds])
                _line(ax, range(len(layers)), values, names[label])
                ax.set_xticks(range(len(layers)), layers, rotation=45, ha="right", fontsize=8.5)
            if key == "distance_ratio":
                ax.set_yscale("log")
                ax.axhline(1.0, color="#777777", lw=0.8, ls=":")
            else:
                ax.set_ylim(-0.03, 1.03)
            ax.set_title(panel_title, fontsize=9.5, loc="left")
            ax.grid(alpha=0.3)
        handles, labels = panels[0].get_legend_handles_labels()
        bottom.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 4), frameon=False,
                      title="per layer; (n AI) = AI images the statistics rest on")
        return save_figure(fig, stem)


def filters_figure(results: dict[str, Any], stem: Path, title: str, subtitle: list[str] | str | None = None) -> list[Path]:
    """Variance entropy (raw and normalised) and orthogonality vs normalised depth, one line per defense;
    sparsity too, unless it is 0 everywhere (then the figure says so instead of an empty panel)."""
    per_defense = _seeds(results)
    all_rows = [row for seeds in per_defense.values() for m in seeds for row in m["layers"]]
    sparse = any((row.get("sparsity") or 0) > 0 for row in all_rows)
    metrics = [k for k in FILTER_METRICS if k != "sparsity" or sparse]
    lines = [subtitle] if isinstance(subtitle, str) else list(subtitle or [])
    if not sparse:
        eps = next(iter(per_defense.values()))[0].get("sparsity_eps", SPARSITY_EPS)
        lines.append(SPARSITY_NOTE.format(eps=100 * eps))
    with plt.rc_context(STYLE):
        fig, body = _header(title, lines, 3.5)
        axes = body.subplots(1, len(metrics), squeeze=False)[0]
        for ax, key in zip(axes, metrics):
            for label, seeds in per_defense.items():
                depth = [row["depth"] for row in seeds[0]["layers"]]
                values = np.array([_values([row[key] for row in m["layers"]]) for m in seeds])
                # a transform defense has its base's filters exactly: dashed, so that both lines stay visible
                _line(ax, depth, values, label, dashed="(=" in label)
            if key == "sparsity":
                ax.set_ylim(-0.02, max(0.1, 1.1 * max(row["sparsity"] for row in all_rows)))
            ax.set_xlabel("normalised depth\n(0 = first 3x3 conv, 1 = last)")
            ax.set_title(FILTER_LABELS[key], fontsize=9.5, loc="left")
            ax.set_xlim(-0.05, 1.05)
            ax.grid(alpha=0.3)
        handles, labels = axes[0].get_legend_handles_labels()
        body.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 4), frameon=False)
        return save_figure(fig, stem)
