"""The look every figure shares: one colour and one marker per defense, its display label, the eps axis.

* ``defense_color`` / ``defense_marker``: a built-in defense (by its base name, so that
  ``gaussian_blur(baseline)`` and ``neural_sim [simulated V1]`` keep their defense's colour) has a
  fixed entry; any other label (a plugin, ``robustbench:<model>``) one chosen by a stable hash.
  The report figures (``bench.reporting.plots``), the paper figures (``bench.figures``) and the
  analysis figures (``bench.analysis.plots``) all take them from here.
* ``display_label``: a defense as the leaderboard names it (``DefenseInfo.label`` of its records:
  ``neural_sim [simulated V1]``, ``gaussian_blur(baseline)``), with a figure's variant after it
  (``neural_sim [simulated V1], shuffled target``).
* ``eps_axis``: eps grids are drawn on a categorical axis, one evenly spaced tick per grid point
  (the grids are neither linear nor geometric: 0, .01, .02, .05, .1, .2), with markers at the grid
  points only; the axis label says that the spacing is not to scale.
"""

from __future__ import annotations

import re
import textwrap
import zlib
from typing import Any, Iterable, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

# The built-in defenses, sorted.
KNOWN_DEFENSES = sorted([
    "adv_train", "baseline", "gabor_frontend", "gaussian_blur", "heat_blur", "lowpass_frontend", "median_filter",
    "neural_sim", "pixel_sim", "quantize", "random_noise", "robustbench", "timm", "torchvision",
])
# One fixed colour per built-in defense: the baseline black (the reference every figure compares with),
# the others from tab10 and a few darker colours that stay apart from it.
COLORS = {
    "baseline": "#000000", "adv_train": "#1f77b4", "pixel_sim": "#ff7f0e", "neural_sim": "#2ca02c",
    "gaussian_blur": "#d62728", "heat_blur": "#9467bd", "lowpass_frontend": "#8c564b", "median_filter": "#e377c2",
    "gabor_frontend": "#bcbd22", "quantize": "#17becf", "random_noise": "#7f7f7f", "robustbench": "#e6ab02",
    "timm": "#000080", "torchvision": "#008080",
}
# every colour above, then one more: what a label that is not a built-in defense draws from (by hash)
PALETTE = list(COLORS.values()) + ["#800000"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "<", ">", "*", "h", "p", "d", "H"]
DEFENSE_MARKERS = dict(zip(["baseline", "adv_train", "pixel_sim", "neural_sim", "gaussian_blur", "heat_blur",
                            "lowpass_frontend", "median_filter", "gabor_frontend", "quantize", "random_noise",
                            "robustbench", "timm", "torchvision"], MARKERS))
EPS_SPACING_NOTE = "grid points evenly spaced, not to scale"
TITLE_SIZE = 13
SUBTITLE_SIZE = 9
HEADER_CHARS = 116  # a subtitle line (SUBTITLE_SIZE) across a figure 8 inches wide


def defense_base(label: str) -> str:
    """``gaussian_blur(baseline)`` -> ``gaussian_blur``, ``neural_sim [simulated V1]`` -> ``neural_sim``."""
    return re.split(r"[(\s\[,]", label, maxsplit=1)[0]


def _builtin(label: str) -> str | None:
    base = defense_base(label)
    return base if base in COLORS and ":" not in label else None


def defense_color(label: str) -> str:
    """The colour of a defense in every figure (see the module docstring)."""
    base = _builtin(label)
    return COLORS[base] if base else PALETTE[zlib.crc32(label.encode()) % len(PALETTE)]


def defense_marker(label: str) -> str:
    """The marker of a defense in every figure, fixed like its colour."""
    base = _builtin(label)
    return DEFENSE_MARKERS[base] if base else MARKERS[zlib.crc32(label.encode()) % len(MARKERS)]


def display_label(defense: Any, variant: str | None = None) -> str:
    """How figures name a defense: the leaderboard's label (``DefenseInfo.label``; a plain name is taken as
    it is), then the variant a figure adds (``shuffled target``)."""
    label = getattr(defense, "label", defense)
    return f"{label}, {variant}" if variant else str(label)


def eps_positions(grid: Iterable[float], values: Iterable[float]) -> list[int]:
    """The categorical x position (index in the sorted grid) of each eps value."""
    ordered = sorted(float(e) for e in grid)
    return [int(np.argmin([abs(float(v) - e) for e in ordered])) for v in values]


def eps_ticks(grid: Sequence[float]) -> list[str]:
    return [f"{float(e):g}" for e in sorted(float(e) for e in grid)]


def uneven(grid: Iterable[float]) -> bool:
    """Whether a grid's steps differ (so that its categorical axis is not to scale)."""
    steps = np.diff(sorted({float(e) for e in grid}))
    return len(steps) > 0 and not np.allclose(steps, steps[0], rtol=0.02)


def eps_axis(ax, grid: Iterable[float], label: str, note: bool = True) -> None:
    """A categorical eps axis: a tick per grid point, evenly spaced, labelled with its value; ``label``
    gets the note that the spacing is not to scale (unless the grid is evenly spaced anyway, or ``note``
    is False: a figure of several such panels says it once)."""
    ordered = sorted({float(e) for e in grid})
    ticks = eps_ticks(ordered)
    if len(ordered) > 8 and not uneven(ordered):  # a long even grid: every other value labelled, the scale is linear
        ticks = [t if k % 2 == 0 or k == len(ticks) - 1 else "" for k, t in enumerate(ticks)]
    ax.set_xticks(range(len(ordered)), ticks, rotation=45 if len(ordered) > 8 and uneven(ordered) else 0)
    ax.set_xlim(-0.3, len(ordered) - 0.7)
    ax.set_xlabel(f"{label}\n({EPS_SPACING_NOTE})" if note and uneven(ordered) else label)
    ax.minorticks_off()


def figure_with_header(width: float, body_height: float, title: str, subtitle: list[str]):
    """A figure ``width`` inches wide: a header (a one-line title in words, a small subtitle under it: where
    the data come from, what the bands are) over a subfigure of ``body_height`` inches for the panels, in
    constrained layout; returns (figure, body subfigure)."""
    chars = int(HEADER_CHARS * width / 8.0)
    lines = [part for text in subtitle if text for part in textwrap.wrap(text, chars, break_on_hyphens=False)]
    head_height = 0.42 + 0.19 * len(lines)
    fig = plt.figure(figsize=(width, body_height + head_height), layout="constrained")
    head, body = fig.subfigures(2, 1, height_ratios=[head_height, body_height])
    head.text(0.01, 1 - 0.08 / head_height, title, ha="left", va="top", fontsize=TITLE_SIZE, fontweight="bold")
    if lines:
        head.text(0.01, 1 - 0.36 / head_height, "\n".join(lines), ha="left", va="top", fontsize=SUBTITLE_SIZE,
                  color="#333333", linespacing=1.35)
    return fig, body
