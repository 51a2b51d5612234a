"""Small matplotlib helpers shared by the paper figures, over every seed of a figure's records.

The look (a defense's colour and marker, its label, the categorical eps axis, the header with a
one-line title and a small subtitle) is ``bench.reporting.style``'s, as in the report figures.
Intervals are those of the leaderboard: for one seed the 95 % Wilson interval over the test
images; for several a two-level bootstrap (resample the seeds, then the images within each).
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from bench.evaluation.intervals import (BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, bootstrap_median_interval,  # noqa: E402
                                        hierarchical_interval)
from bench.records import AttackRecord  # noqa: E402
from bench.reporting.style import (EPS_SPACING_NOTE, defense_color, defense_marker, display_label,  # noqa: E402,F401
                                   eps_axis, eps_positions, figure_with_header, uneven)

WIDTH_IN = 8.0  # 1200 px at DPI, as the report figures
DPI = 150
BAND_ALPHA = 0.18
STYLE = {"font.size": 10, "axes.titlesize": 10.5, "axes.labelsize": 10, "legend.fontsize": 9.5,
         "xtick.labelsize": 9, "ytick.labelsize": 9}
CONTROL_HATCH = "///"  # a control variant (shuffled target) has its defense's colour, hatched or dashed


def save(fig, out_dir: Path, stem: str) -> list[Path]:
    """``stem``.png and .pdf at the figure's own size (WIDTH_IN wide: 1200 px), no creation date in the PDF."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{stem}.png", out_dir / f"{stem}.pdf"]
    for path in paths:
        fig.savefig(path, dpi=DPI, metadata={"CreationDate": None} if path.suffix == ".pdf" else None)
    plt.close(fig)
    return paths


def label_of(records: list, variant: str | None = None) -> str:
    """A defense as the leaderboard names it (its records' ``DefenseInfo.label``), with the figure's variant."""
    return display_label(records[0].defense, variant)


def seed_interval(values: list[float], n: int) -> tuple[float, float, float]:
    """(mean, low, high) of an accuracy measured on ``n`` images per seed: Wilson for one seed, the
    hierarchical bootstrap for several (it needs only each seed's accuracy and n)."""
    outcomes = [np.arange(n) < round(v * n) for v in values]
    return hierarchical_interval(outcomes)


def _metric(record: AttackRecord, metric: str) -> dict[float, float]:
    m = record.metrics
    if metric == "top1":
        return {float(e): float(v) for e, v in m.robust_accuracy.items()}
    return {float(e): float(getattr(m.rank.adversarial[e], metric)) for e in m.robust_accuracy}


def curve(ax, records: list[AttackRecord], label: str, metric: str = "top1", control: bool = False) -> list[float]:
    """Accuracy (or top-5 / MRR) in percent vs eps over the seeds' records, on the categorical eps axis;
    returns the eps grid.

    The line is the mean over seeds. Accuracies (top-1, top-5) get a band: the 95 % interval over seeds
    and images (``seed_interval``). The MRR is a mean of reciprocal ranks, not a proportion, and the
    records hold no per-example ranks: it gets the range over the seeds (none for one seed)."""
    per_seed = [_metric(rec, metric) for rec in records]
    grid = sorted(set.intersection(*(set(p) for p in per_seed)))
    n = min(rec.metrics.n_examples for rec in records)
    x = eps_positions(grid, grid)
    color = defense_color(label)
    if metric in ("top1", "top5"):
        mean, low, high = np.array([seed_interval([p[e] for p in per_seed], n) for e in grid]).T
    else:
        values = np.array([[p[e] for p in per_seed] for e in grid])
        mean, low, high = values.mean(axis=1), values.min(axis=1), values.max(axis=1)
    ax.plot(x, 100 * mean, marker=defense_marker(label), ms=4.5, lw=1.8, color=color, ls="--" if control else "-",
            label=label)
    if metric in ("top1", "top5") or len(records) > 1:
        ax.fill_between(x, 100 * low, 100 * high, color=color, alpha=BAND_ALPHA, linewidth=0)
    return grid


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


def median_interval_over_seeds(records: list[AttackRecord], transform=None, confidence: float = 0.95,
                               resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> tuple[float, float]:
    """The 95 % interval of the mean over seeds of each seed's median minimal perturbation: one seed as
    ``median_interval``; several by a two-level bootstrap (resample the seeds, then each drawn seed's
    images), from the images' grid brackets: the low end from the lower bounds' medians, the high end
    from the upper bounds' (inf where a drawn median is open-ended)."""
    if len(records) == 1:
        return median_interval(records[0], transform)
    rng = np.random.default_rng(seed)
    medians = []  # per seed: the lower and upper medians of `resamples` resamples of its images
    for record in records:
        lower, upper = minimal_brackets(record)
        if transform is not None:
            lower, upper = transform(lower), transform(upper)
        idx = rng.integers(0, len(lower), size=(resamples, len(lower)))
        medians.append((np.median(lower[idx], axis=1), np.median(upper[idx], axis=1)))
    drawn = rng.integers(0, len(records), size=(resamples, len(records)))
    column = rng.integers(0, resamples, size=(resamples, len(records)))
    low = np.array([[medians[s][0][c] for s, c in zip(row, cols)] for row, cols in zip(drawn, column)]).mean(axis=1)
    high = np.array([[medians[s][1][c] for s, c in zip(row, cols)] for row, cols in zip(drawn, column)]).mean(axis=1)
    alpha = (1 - confidence) / 2
    return (float(np.quantile(low, alpha, method="lower")), float(np.quantile(high, 1 - alpha, method="higher")))


def hbars(ax, labels: list[str], values: list[float], intervals: list[tuple[float, float]], controls: list[bool],
          show_labels: bool = True) -> None:
    """Horizontal bars (first label on top) in each defense's colour, a control hatched, with 95 % interval
    whiskers; an upper bound that is inf is drawn as an arrow to the right edge, marked open-ended."""
    y = np.arange(len(labels))[::-1]
    colors = [defense_color(label) for label in labels]
    ax.barh(y, values, color=[c if not k else "white" for c, k in zip(colors, controls)], edgecolor=colors,
            hatch=[CONTROL_HATCH if k else None for k in controls], lw=1.5, height=0.65)
    finite_top = max(list(values) + [h for _, h in intervals if math.isfinite(h)] + [0.0])
    top = 1.15 * finite_top if finite_top > 0 else 1.0
    for yi, v, (low, high) in zip(y, values, intervals):
        open_ended = not math.isfinite(high)
        ax.errorbar([v], [yi], xerr=[[max(v - low, 0)], [0 if open_ended else max(high - v, 0)]], fmt="none",
                    ecolor="#333333", elinewidth=1.3, capsize=4)
        if open_ended:
            ax.annotate("", xy=(top, yi), xytext=(v, yi), arrowprops={"arrowstyle": "->", "color": "#333333", "lw": 1.2})
            ax.text(top, yi + 0.22, "open-ended", ha="right", va="bottom", fontsize=8)
    ax.set_xlim(0, top * 1.05)
    if show_labels:  # panels that share the y axis take the first one's labels
        ax.set_yticks(y, labels)
    else:
        ax.tick_params(labelleft=False)
    ax.grid(alpha=0.3, axis="x")


def finish(ax, title: str, xlabel: str, ylabel: str | None = "accuracy (%)", grid: list[float] | None = None,
           note: bool = True) -> None:
    """A panel's short title and axis labels; with ``grid``, the categorical eps axis (``note``: its label says
    when it is not to scale; a figure of several panels says it once, in its subtitle)."""
    ax.set_title(title, loc="left")
    if grid is not None:
        eps_axis(ax, grid, xlabel, note)
    else:
        ax.set_xlabel(xlabel)
    if ylabel:
        ax.set_ylabel(ylabel)
    ax.set_ylim(-2, 102)
    ax.grid(alpha=0.3)


def shared_legend(body, ax, ncol: int | None = None) -> None:
    """One legend for every panel, under them (the panels draw the same defenses)."""
    handles, labels = ax.get_legend_handles_labels()
    if ncol is None:  # one row where the labels fit across the figure, else two columns
        ncol = len(labels) if sum(len(label) + 8 for label in labels) <= 110 else 2
    body.legend(handles, labels, loc="outside lower center", ncol=ncol, frameon=False)


def figure(title: str, subtitle: list[str], panels: int, height: float = 3.4, **kwargs):
    """A header (one-line title in words, a small subtitle: what the data are, what the bands are) over
    ``panels`` panels side by side; returns (figure, body subfigure, axes)."""
    fig, body = figure_with_header(WIDTH_IN, height, title, subtitle)
    axes = body.subplots(1, panels, squeeze=False, **kwargs)[0]
    return fig, body, list(axes)
