"""Figures (PNG and PDF), one question per figure, readable at 100 % on a laptop (1200 px wide):

* ``accuracy_vs_eps_<protocol>-<hash>_<threat>``: per (protocol, threat model), each defense's worst
  case over the attacks run on it (the leaderboard number) against eps, one line per defense;
* ``detail/<protocol>-<hash>_<threat>_<defense>``: one defense's per-attack curves and its worst case;
* ``tradeoff_<protocol>-<hash>``: clean vs robust accuracy (L_inf worst case) at the protocol's headline
  eps, with the Pareto front.

A defense has the same colour in every figure (``defense_color``).
"""

from __future__ import annotations

import math
import re
import textwrap
import zlib
from pathlib import Path
from typing import Any, Iterable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np
import pandas as pd  # noqa: E402

from bench.evaluation.intervals import accuracy_interval
from bench.reporting.leaderboard import RANKED, status_of  # noqa: E402
from bench.reporting.tables import WORST, partial_eps, seeds_text  # noqa: E402

DPI = 150
WIDTH_IN = 8.0  # 1200 px at DPI
MAX_SERIES = 12
TITLE_CHARS = 72  # a title line longer than this runs past the figure's edge at WIDTH_IN
MAX_LABELS = 6  # a tradeoff plot with more defenses names them in a legend: labels in a cluster would touch
STYLE = {"font.size": 11, "axes.titlesize": 12, "axes.labelsize": 11, "legend.fontsize": 10,
         "xtick.labelsize": 10, "ytick.labelsize": 10}

# The built-in defenses, sorted: each gets its own palette entry, whatever a report happens to contain.
KNOWN_DEFENSES = sorted([
    "adv_train", "baseline", "gabor_frontend", "gaussian_blur", "heat_blur", "lowpass_frontend", "median_filter",
    "neural_sim", "pixel_sim", "quantize", "random_noise", "robustbench", "timm", "torchvision",
])
# 15 qualitative colours (tab10, then five darker ones that stay apart from it)
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf", "#000000", "#e6ab02", "#000080", "#008080", "#800000"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "<", ">", "*", "h", "p"]
THREAT_NAMES = {"linf": "L∞", "l2": "L2", "gaussian_noise": "Gaussian noise", "uniform_noise": "uniform noise",
                "salt_pepper": "salt-and-pepper noise"}
EPS_LABELS = {"linf": "eps: L∞ radius (pixel values in [0, 1])", "l2": "eps: L2 radius (pixel values in [0, 1])",
              "gaussian_noise": "noise std (pixel values in [0, 1])",
              "uniform_noise": "noise amplitude (pixel values in [0, 1])",
              "salt_pepper": "fraction of pixels set to 0 or 1"}


def defense_base(label: str) -> str:
    """``gaussian_blur(baseline)`` -> ``gaussian_blur``, ``neural_sim [simulated V1]`` -> ``neural_sim``."""
    return re.split(r"[(\s\[]", label, maxsplit=1)[0]


def defense_color(label: str) -> str:
    """The colour of a defense in every figure: a built-in defense (by its base name) has a fixed
    palette entry in sorted-name order; any other label (or ``robustbench:<model>`` and the like)
    one chosen by a stable hash of the label."""
    base = defense_base(label)
    if base in KNOWN_DEFENSES and ":" not in label:
        return PALETTE[KNOWN_DEFENSES.index(base)]
    return PALETTE[zlib.crc32(label.encode()) % len(PALETTE)]


def _threat(threat: str) -> str:
    return THREAT_NAMES.get(threat, threat)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")


def _stem(protocol: str, phash: str, *rest: str) -> str:
    return "_".join([_slug(f"{protocol}-{phash}")] + [_slug(r) for r in rest])


def _status(flags: Iterable[Any]) -> str:
    """ranked, provisional or flagged (``bench.reporting.leaderboard.status_of``) from the frame's ``flags`` cells."""
    return status_of({name for cell in flags for name in str(cell or "").split(";") if name})


def _flagged(part: pd.DataFrame) -> bool:
    """Not a trusted figure (flagged, or provisional: an incomplete suite): drawn dashed or open, never on the front."""
    return _status(part["flags"].fillna("")) != RANKED


def _mark(part_or_flags: pd.DataFrame | str) -> str:
    """" (flagged)" or " (provisional)" after a label; nothing for a ranked figure."""
    flags = part_or_flags["flags"].fillna("") if isinstance(part_or_flags, pd.DataFrame) else [part_or_flags]
    status = _status(flags)
    return "" if status == RANKED else f" ({status})"


def _save(fig, out_dir: Path, stem: str, pdf: bool = True) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{stem}.png"] + ([out_dir / f"{stem}.pdf"] if pdf else [])
    for path in paths:
        # no bbox_inches="tight": the saved width stays WIDTH_IN * DPI; no creation date in a PDF, so that
        # regenerating a report from the same records leaves its files unchanged
        fig.savefig(path, dpi=DPI, metadata={"CreationDate": None} if path.suffix == ".pdf" else None)
    plt.close(fig)
    return paths


def _curve(ax, line: pd.DataFrame, color: str, marker: str, label: str, dashed: bool, lw: float = 2.0):
    line = line.sort_values("eps")
    x, y = line["eps"].to_numpy(), 100 * line["robust_mean"].to_numpy()
    ax.plot(x, y, color=color, marker=marker, ms=5, lw=lw, ls="--" if dashed else "-", label=label)
    if "robust_low" in line and line["robust_low"].notna().all():
        # the table's 95 % interval: Wilson over the examples (one seed), hierarchical bootstrap (several)
        ax.fill_between(x, 100 * line["robust_low"].to_numpy(), 100 * line["robust_high"].to_numpy(), color=color, alpha=0.15, lw=0)
    elif (line["seeds"] > 1).any():
        std = 100 * line["robust_std"].fillna(0.0).to_numpy()
        if (std > 0).any():
            ax.fill_between(x, y - std, y + std, color=color, alpha=0.18, lw=0)
    else:  # one seed: the 95 % Wilson interval over the examples
        low, high = np.array([[100 * v for v in accuracy_interval(a, int(n))]
                              for a, n in zip(line["robust_mean"], line["n_examples"])]).T
        ax.fill_between(x, low, high, color=color, alpha=0.15, lw=0)


def _axes(ax, threat: str, grid) -> None:
    """Labels with units; eps on a symlog axis (the grids are roughly geometric) ticked at the grid values."""
    grid = sorted(float(e) for e in grid)
    nonzero = [e for e in grid if e > 0]
    steps = [b - a for a, b in zip(grid, grid[1:])]
    even = bool(steps) and max(steps) <= 1.25 * min(steps)
    if len(nonzero) > 1 and nonzero[-1] / nonzero[0] >= 10 and not even:
        ax.set_xscale("symlog", linthresh=nonzero[0], linscale=0.6)
        ax.set_xticks(grid, [f"{e:g}" for e in grid])
        ax.minorticks_off()
    ax.set_xlabel(EPS_LABELS.get(threat, "eps (pixel values in [0, 1])"))
    ax.set_ylabel("robust accuracy (%)")
    ax.set_ylim(-2, 102)
    ax.grid(alpha=0.3)


def _attacks(part: pd.DataFrame, eps: float | None = None) -> list[str]:
    """The attacks of a worst case: at ``eps`` only those that ran there; over the whole grid, each
    that ran at part of it says where (``pgd_convergence (eps 0.1, 0.15 only)``)."""
    runs = part[part["attack"] != WORST]
    if eps is not None:
        return sorted(set(runs.loc[np.isclose(runs["eps"], eps), "attack"]))
    grid = sorted(e for e in part["eps"].unique() if e > 0)
    return [_attack_label(attack, rows, grid) for attack, rows in sorted(runs.groupby("attack"))]


def _attack_label(attack: str, rows: pd.DataFrame, grid: list[float]) -> str:
    """``pgd_convergence (eps 0.1, 0.15 only)`` for an attack that ran at part of ``grid``, else its name."""
    where = partial_eps(rows, grid)
    return f"{attack} ({where})" if where else attack


def _interval_note(rows: pd.DataFrame, mark: str) -> str:
    """What the bands or bars are: a bootstrap over seeds and images, Wilson where one seed."""
    if int(rows["seeds"].max()) > 1:
        return (f"{mark} = 95 % interval (bootstrap over seeds and images"
                + ("; Wilson for one seed)" if int(rows["seeds"].min()) == 1 else ")"))
    return f"{mark} = 95 % Wilson interval over the {int(rows['n_examples'].max())} images"


def _sample_text(part: pd.DataFrame) -> str:
    """"500 test images", or "1000 test images (200 for square)" where an attack ran on a subset."""
    sizes = part[part["eps"] > 0].groupby("attack")["n_examples"].max().astype(int)
    most = int(part["n_examples"].max())
    fewer = sizes[sizes < most]
    subsets = [f"{n} for " + ", ".join(sorted(fewer[fewer == n].index)) for n in sorted(fewer.unique(), reverse=True)]
    return f"{most} test images" + (" (" + "; ".join(subsets) + ")" if subsets else "")


def accuracy_vs_eps(table: pd.DataFrame, out_dir: Path) -> list[Path]:
    """One figure per (protocol, threat model): each defense's worst case over its attacks against eps."""
    written = []
    with plt.rc_context({**STYLE, "figure.titlesize": 12}):
        for (protocol, phash, threat), part in table.groupby(["protocol", "protocol_hash", "threat_model"], sort=True):
            worst = part[part["attack"] == WORST]
            if worst.empty:
                continue
            # strongest first in the legend (at the middle of the grid), at most MAX_SERIES lines
            grid = sorted(worst["eps"].unique())
            mid = worst[worst["eps"] == grid[len(grid) // 2]].groupby("defense")["robust_mean"].mean()
            defenses = list(mid.sort_values(ascending=False).index)
            shown, dropped = defenses[:MAX_SERIES], defenses[MAX_SERIES:]
            fig, ax = plt.subplots(figsize=(WIDTH_IN, 4.8), layout="constrained")
            for i, defense in enumerate(shown):
                line = worst[worst["defense"] == defense]
                flagged = _flagged(line)
                _curve(ax, line, defense_color(defense), MARKERS[i % len(MARKERS)],
                       defense + _mark(line), flagged)
            _axes(ax, threat, worst["eps"].unique())
            attacks = _attacks(part)
            # wrapped: a partial sweep names every defense with fewer seeds, which would run off the figure
            # (a no-break space keeps each name with its count)
            ax.set_title(f"{protocol} ({phash}), {_threat(threat)}: worst case over\n{textwrap.fill(', '.join(attacks), TITLE_CHARS)}\n"
                         + textwrap.fill(f"{int(worst['n_examples'].max())} test images, {seeds_text(worst)}".replace(": ", ":\u00a0"), TITLE_CHARS) + "\n"
                         + _interval_note(worst, "band")
                         + (f"; {len(dropped)} more defenses in summary.md" if dropped else ""), loc="left")
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), title="defense (best first)", frameon=False)
            written += _save(fig, out_dir, "accuracy_vs_eps_" + _stem(protocol, phash, threat))
    return written


def details(table: pd.DataFrame, out_dir: Path) -> list[Path]:
    """One PNG per (protocol, threat model, defense): its per-attack curves and its worst case, under ``detail/``."""
    written = []
    with plt.rc_context({**STYLE, "figure.titlesize": 12}):
        for (protocol, phash, threat, defense), part in table.groupby(
                ["protocol", "protocol_hash", "threat_model", "defense"], sort=True):
            runs = part[part["attack"] != WORST]
            grid = sorted(e for e in part["eps"].unique() if e > 0)
            fig, ax = plt.subplots(figsize=(WIDTH_IN, 4.4), layout="constrained")
            colors = plt.get_cmap("tab10").colors
            for i, (attack, line) in enumerate(sorted(runs.groupby("attack"))):
                flagged = _flagged(line)
                _curve(ax, line, colors[(i + 1) % 10], MARKERS[(i + 1) % len(MARKERS)],
                       _attack_label(attack, line, grid) + _mark(line), flagged, lw=1.5)
            worst = part[part["attack"] == WORST]
            if not worst.empty:
                flagged = _flagged(worst)
                _curve(ax, worst, "#000000", "o", "worst case" + _mark(worst), flagged, lw=3.0)
            _axes(ax, threat, part["eps"].unique())
            ax.set_title(f"{defense}: {protocol} ({phash}), {_threat(threat)}, per attack and worst case\n"
                         + textwrap.fill(seeds_text(part) + ", " + _sample_text(part), TITLE_CHARS) + "\n"
                         + _interval_note(part, "band"), loc="left")
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), title="attack", frameon=False)
            written += _save(fig, out_dir / "detail", _stem(protocol, phash, threat, defense), pdf=False)
    return written


# label offsets (points) tried in order: right, left, above, below, then diagonals further out
_OFFSETS = [((8, 0), "left", "center"), ((-8, 0), "right", "center"), ((0, 9), "center", "bottom"),
            ((0, -9), "center", "top"), ((8, 12), "left", "bottom"), ((-8, 12), "right", "bottom"),
            ((8, -12), "left", "top"), ((-8, -12), "right", "top"), ((14, 26), "left", "bottom"),
            ((-14, 26), "right", "bottom"), ((14, -26), "left", "top"), ((-14, -26), "right", "top")] + [
    ((round(r * math.cos(a)), round(r * math.sin(a))), "left" if math.cos(a) > 0.1 else "right" if math.cos(a) < -0.1 else "center",
     "bottom" if math.sin(a) > 0.1 else "top" if math.sin(a) < -0.1 else "center")
    for r in (40, 60, 85, 110) for a in [math.radians(d) for d in (30, 150, 60, 120, 0, 180, -30, -150, 90, -90)]]


def _place_labels(ax, xs: list[float], ys: list[float], texts: list[str], colors: list[str]) -> None:
    """A text label next to each point, at the first offset where it overlaps no other label, no point and
    stays inside the axes (a leader line when it had to move off a diagonal); the first offset otherwise."""
    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    px = [ax.transData.transform((x, y)) for x, y in zip(xs, ys)]
    r = 7 * fig.dpi / 72  # marker radius in pixels, with a margin
    taken = [matplotlib.transforms.Bbox.from_extents(u - r, v - r, u + r, v + r) for u, v in px]
    for i in sorted(range(len(xs)), key=lambda i: -ys[i]):
        chosen = None
        for n, ((dx, dy), ha, va) in enumerate(_OFFSETS):
            text = ax.annotate(texts[i], (xs[i], ys[i]), xytext=(dx, dy), textcoords="offset points", ha=ha, va=va,
                               fontsize=10, color=colors[i])
            box = text.get_window_extent(renderer).expanded(1.04, 1.1)
            inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
            if inside and not any(box.overlaps(t) for t in taken):
                chosen = (text, box, n)
                break
            text.remove()
        if chosen is None:
            text = ax.annotate(texts[i], (xs[i], ys[i]), xytext=_OFFSETS[0][0], textcoords="offset points",
                               ha="left", va="center", fontsize=10, color=colors[i])
            chosen = (text, text.get_window_extent(renderer), 0)
        text, box, n = chosen
        if n >= 8:
            text.arrow_patch = None
            ax.annotate("", (xs[i], ys[i]), xytext=_OFFSETS[n][0], textcoords="offset points",
                        arrowprops={"arrowstyle": "-", "color": "#999999", "lw": 0.6})
        taken.append(box)


def _asymmetric(value: float, interval: tuple[float, float]) -> np.ndarray:
    """Error-bar lengths below and above ``value`` (percent) for an interval of proportions."""
    low, high = interval
    return np.array([[max(value - 100 * low, 0.0)], [max(100 * high - value, 0.0)]])


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points that no other point beats in both coordinates (>= in both, > in one),
    sorted by the first coordinate."""
    keep = [i for i, (x, y) in enumerate(points)
            if not any(x2 >= x and y2 >= y and (x2 > x or y2 > y) for x2, y2 in points)]
    return sorted(keep, key=lambda i: (points[i][0], -points[i][1]))


def tradeoff(table: pd.DataFrame, out_dir: Path, eps_by_threat: dict[tuple[str, str], float],
             threat: str = "linf") -> list[Path]:
    """One figure per protocol: clean vs worst-case robust accuracy per defense at the headline eps."""
    written = []
    with plt.rc_context({**STYLE, "figure.titlesize": 12}):
        rows = table[(table["attack"] == WORST) & (table["threat_model"] == threat)]
        for (protocol, phash), part in rows.groupby(["protocol", "protocol_hash"], sort=True):
            eps = eps_by_threat[(protocol, threat)]
            at = part[part["eps"] == eps].groupby("defense", sort=True).first().reset_index()
            if at.empty:
                continue
            fig, ax = plt.subplots(figsize=(WIDTH_IN, 6.0), layout="constrained")
            xs, ys = list(100 * at["clean_mean"]), list(100 * at["robust_mean"])
            x_extent, y_extent = list(xs), list(ys)  # the bars must fit in the axes too
            at_rows = list(at.itertuples())
            flagged = [_status([r.flags]) != RANKED for r in at_rows]
            # a flagged or provisional figure is an upper bound, never ranked: the front is drawn through ranked ones only
            trusted = [i for i, bad in enumerate(flagged) if not bad]
            front = [trusted[j] for j in pareto_front([(xs[i], ys[i]) for i in trusted])]
            names = [r.defense + _mark(str(r.flags or "")) + (" *" if i in front else "")
                     for i, r in enumerate(at_rows)]
            crowded = len(at) > MAX_LABELS
            ax.step([xs[i] for i in front], [ys[i] for i in front], where="pre", color="#555555", lw=1.5, ls=":",
                    zorder=2, label="Pareto front")
            for i in sorted(range(len(at_rows)), key=lambda k: -ys[k]):  # most robust first: the legend's order
                r, x, y = at_rows[i], xs[i], ys[i]
                several = r.seeds > 1
                if not pd.isna(getattr(r, "robust_low", float("nan"))) and not pd.isna(getattr(r, "clean_low", float("nan"))):
                    xerr = _asymmetric(x, (r.clean_low, r.clean_high))
                    yerr = _asymmetric(y, (r.robust_low, r.robust_high))
                elif several:
                    xerr, yerr = 100 * r.clean_std, 100 * r.robust_std
                else:  # one seed: 95 % Wilson intervals over the examples, as asymmetric bars
                    xerr = _asymmetric(x, accuracy_interval(r.clean_mean, int(r.n_examples)))
                    yerr = _asymmetric(y, accuracy_interval(r.robust_mean, int(r.n_examples)))
                lo, hi = np.ravel(yerr)[0], np.ravel(yerr)[-1]
                y_extent += [y - lo, y + hi]
                x_extent += [x - np.ravel(xerr)[0], x + np.ravel(xerr)[-1]]
                ax.errorbar(x, y, xerr=xerr, yerr=yerr,
                            marker=MARKERS[i % len(MARKERS)] if crowded else "o", ms=8, capsize=3,
                            color=defense_color(r.defense), ls="none", mfc="white" if flagged[i] else defense_color(r.defense),
                            mew=2, zorder=3, label=names[i] if crowded else None)
            x0, x1 = min(x_extent), max(x_extent)
            y0, y1 = min(y_extent), max(y_extent)
            xpad, ypad = max(1.5, 0.1 * (x1 - x0)), max(3.0, 0.1 * (y1 - y0))
            ax.set_xlim(x0 - xpad, min(x1 + xpad, 102.0))
            ax.set_ylim(max(-3.0, y0 - ypad), min(max(10.0, y1 + ypad), 102.0))
            if not crowded:
                _place_labels(ax, xs, ys, names, [defense_color(d) for d in at["defense"]])
            ax.set_xlabel("clean accuracy (%)")
            ax.set_ylabel(f"robust accuracy (%), worst case at eps = {eps:g}")
            ax.grid(alpha=0.3)
            if crowded:
                ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, title="defense (best first)")
            else:
                ax.legend(loc="lower left", frameon=False)
            ax.set_title(f"{protocol} ({phash}): clean vs robust accuracy, {_threat(threat)} eps = {eps:g}\n"
                         f"worst case over {', '.join(_attacks(table[(table['protocol_hash'] == phash) & (table['threat_model'] == threat)], eps))}\n"
                         f"* = on the Pareto front of the unflagged; open marker = flagged\n"
                         + _interval_note(at, "bars"),
                         loc="left")
            written += _save(fig, out_dir, "tradeoff_" + _stem(protocol, phash))
    return written
