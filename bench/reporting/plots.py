"""Figures (PNG and PDF), one question per figure, readable at 100 % on a laptop (1200 px wide):

* ``accuracy_vs_eps_<protocol>-<hash>_<threat>``: per (protocol, threat model), each defense's worst
  case over the attacks run on it (the leaderboard number) against eps, one line per defense;
* ``detail/<protocol>-<hash>_<threat>_<defense>``: one defense's per-attack curves and its worst case;
* ``tradeoff_<protocol>-<hash>``: clean vs robust accuracy (L_inf worst case) at the protocol's headline
  eps, with the Pareto front; every defense labelled by its point (a zoomed panel where points crowd).

Each figure has a one-line title in words and a small subtitle (protocol, images, seeds, what the
bands are); the attacks' details are in the tables. A defense has the same colour and marker in every
figure, paper figures included (``bench.reporting.style``). Eps is drawn on a categorical axis: a tick
per grid point, evenly spaced, markers at the grid points (the axis label says it is not to scale).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np
import pandas as pd  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from bench.evaluation.intervals import accuracy_interval
from bench.reporting.leaderboard import RANKED, status_of  # noqa: E402
from bench.reporting.style import (KNOWN_DEFENSES, MARKERS, PALETTE, defense_base, defense_color,  # noqa: E402,F401
                                   defense_marker, eps_axis, eps_positions, figure_with_header)
from bench.reporting.tables import WORST, partial_eps, seeds_text  # noqa: E402

DPI = 150
WIDTH_IN = 8.0  # 1200 px at DPI
MAX_SERIES = 12
SUBTITLE_SIZE = 9
STYLE = {"font.size": 11, "axes.titlesize": SUBTITLE_SIZE, "axes.labelsize": 11, "legend.fontsize": 10,
         "xtick.labelsize": 10, "ytick.labelsize": 10, "figure.titlesize": 13}
THREAT_NAMES = {"linf": "L∞", "l2": "L2", "gaussian_noise": "Gaussian noise", "uniform_noise": "uniform noise",
                "salt_pepper": "salt-and-pepper noise"}
EPS_LABELS = {"linf": "eps: L∞ radius (pixel values in [0, 1])", "l2": "eps: L2 radius (pixel values in [0, 1])",
              "gaussian_noise": "noise std (pixel values in [0, 1])",
              "uniform_noise": "noise amplitude (pixel values in [0, 1])",
              "salt_pepper": "fraction of pixels set to 0 or 1"}


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


def _save(fig, out_dir: Path, stem: str, pdf: bool = False) -> list[Path]:
    """``stem``.png, and ``stem``.pdf when asked for (``bench report --pdf``): a report regenerated often ships one format."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{stem}.png"] + ([out_dir / f"{stem}.pdf"] if pdf else [])
    for path in paths:
        # no bbox_inches="tight": the saved width stays WIDTH_IN * DPI; no creation date in a PDF, so that
        # regenerating a report from the same records leaves its files unchanged
        fig.savefig(path, dpi=DPI, metadata={"CreationDate": None} if path.suffix == ".pdf" else None)
    plt.close(fig)
    return paths


def _curve(ax, line: pd.DataFrame, grid: list[float], color: str, marker: str, label: str, dashed: bool,
           lw: float = 2.0):
    """One line on the categorical eps axis (``grid``: the figure's eps values), markers at its grid points."""
    line = line.sort_values("eps")
    x, y = eps_positions(grid, line["eps"]), 100 * line["robust_mean"].to_numpy()
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
    """Labels with units; eps on a categorical axis (``bench.reporting.style.eps_axis``)."""
    eps_axis(ax, grid, EPS_LABELS.get(threat, "eps (pixel values in [0, 1])"))
    ax.set_ylabel("robust accuracy (%)")
    ax.set_ylim(-2, 102)
    ax.grid(alpha=0.3)


def _attacks_text(part: pd.DataFrame) -> str:
    """"worst case per image over fgsm, pgd, square, transfer_pgd (+ pgd_convergence at eps 0.1–0.2)"."""
    runs = part[part["attack"] != WORST]
    grid = sorted(e for e in part["eps"].unique() if e > 0)
    full, partial = [], []
    for attack, rows in sorted(runs.groupby("attack")):
        where = partial_eps(rows, grid)
        (partial if where else full).append(f"{attack} at {where.removesuffix(' only')}" if where else attack)
    return "worst case per image over " + ", ".join(full) + (f" (+ {'; '.join(partial)})" if partial else "")


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


def _protocol_text(protocol: str, phash: str) -> str:
    return f"{protocol} ({phash})"


def accuracy_vs_eps(table: pd.DataFrame, out_dir: Path, pdf: bool = False) -> list[Path]:
    """One figure per (protocol, threat model): each defense's worst case over its attacks against eps."""
    written = []
    with plt.rc_context(STYLE):
        for (protocol, phash, threat), part in table.groupby(["protocol", "protocol_hash", "threat_model"], sort=True):
            worst = part[part["attack"] == WORST]
            if worst.empty:
                continue
            # strongest first in the legend (at the middle of the grid), at most MAX_SERIES lines
            grid = sorted(worst["eps"].unique())
            mid = worst[worst["eps"] == grid[len(grid) // 2]].groupby("defense")["robust_mean"].mean()
            defenses = list(mid.sort_values(ascending=False).index)
            shown, dropped = defenses[:MAX_SERIES], defenses[MAX_SERIES:]
            fig, body = figure_with_header(WIDTH_IN, 4.6, f"Robust accuracy under the strongest attack, {_threat(threat)}",
                                     [f"{_protocol_text(protocol, phash)}, {int(worst['n_examples'].max())} test images, "
                                      + seeds_text(worst).replace(": ", ":\u00a0") + "; " + _interval_note(worst, "band")
                                      + (f"; {len(dropped)} more defenses in summary.md" if dropped else ""),
                                      _attacks_text(part)])
            ax = body.subplots()
            for defense in shown:
                line = worst[worst["defense"] == defense]
                _curve(ax, line, grid, defense_color(defense), defense_marker(defense), defense + _mark(line), _flagged(line))
            _axes(ax, threat, grid)
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), title="defense (best first)", frameon=False)
            written += _save(fig, out_dir, "accuracy_vs_eps_" + _stem(protocol, phash, threat), pdf)
    return written


def details(table: pd.DataFrame, out_dir: Path) -> list[Path]:
    """One PNG per (protocol, threat model, defense): its per-attack curves and its worst case, under ``detail/``."""
    written = []
    with plt.rc_context(STYLE):
        for (protocol, phash, threat, defense), part in table.groupby(
                ["protocol", "protocol_hash", "threat_model", "defense"], sort=True):
            runs = part[part["attack"] != WORST]
            grid = sorted(part["eps"].unique())
            nonzero = [e for e in grid if e > 0]
            fig, body = figure_with_header(WIDTH_IN, 4.2, f"{defense}: robust accuracy per attack, {_threat(threat)}",
                                     [f"{_protocol_text(protocol, phash)}, {seeds_text(part)}, {_sample_text(part)}; "
                                      + _interval_note(part, "band") + "; black: the worst case per image over the attacks"])
            ax = body.subplots()
            colors = plt.get_cmap("tab10").colors
            for i, (attack, line) in enumerate(sorted(runs.groupby("attack"))):
                _curve(ax, line, grid, colors[(i + 1) % 10], MARKERS[(i + 1) % len(MARKERS)],
                       _attack_label(attack, line, nonzero) + _mark(line), _flagged(line), lw=1.5)
            worst = part[part["attack"] == WORST]
            if not worst.empty:
                _curve(ax, worst, grid, "#000000", "o", "worst case" + _mark(worst), _flagged(worst), lw=3.0)
            _axes(ax, threat, grid)
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), title="attack", frameon=False)
            written += _save(fig, out_dir / "detail", _stem(protocol, phash, threat, defense), pdf=False)
    return written


LABEL_SIZE = 9.5
LEADER = {"arrowstyle": "-", "color": "#888888", "lw": 0.7, "shrinkA": 1, "shrinkB": 5}


def _boxes_overlap(candidates: np.ndarray, taken: np.ndarray) -> np.ndarray:
    """For each candidate box (rows x0, y0, x1, y1), whether it overlaps any of ``taken``."""
    if not len(taken):
        return np.zeros(len(candidates), dtype=bool)
    c, t = candidates[:, None, :], taken[None, :, :]
    return ((c[..., 0] < t[..., 2]) & (t[..., 0] < c[..., 2]) & (c[..., 1] < t[..., 3]) & (t[..., 1] < c[..., 3])).any(axis=1)


def _place_labels(ax, xs: list[float], ys: list[float], texts: list[str], colors: list[str],
                  obstacles: list[tuple[float, float, float, float]] = (), others: list[tuple[float, float]] = ()) -> bool:
    """A text label by each point, where it overlaps no other label, no point (``others``: points labelled
    elsewhere too), no ``obstacles`` (data boxes x0, x1, y0, y1: error bars) and stays inside the axes:
    beside the point where there is room, else at the nearest free place, joined to its point by a leader
    line. Returns whether every label found a free place (where none is, it goes right of its point)."""
    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    pixels = fig.dpi / 72
    px = [ax.transData.transform((x, y)) for x, y in zip(xs, ys)]
    r = 7 * pixels  # marker radius in pixels, with a margin
    taken = [(u - r, v - r, u + r, v + r) for u, v in px + [ax.transData.transform(p) for p in others]]
    for x0, x1, y0, y1 in obstacles:
        (u0, v0), (u1, v1) = ax.transData.transform((x0, y0)), ax.transData.transform((x1, y1))
        taken.append((min(u0, u1) - 2, min(v0, v1) - 2, max(u0, u1) + 2, max(v0, v1) + 2))
    gap = 7 * pixels
    step = 4 * pixels
    free = True
    for i in sorted(range(len(xs)), key=lambda i: -ys[i]):
        probe = ax.text(0, 0, texts[i], fontsize=LABEL_SIZE, fontweight="bold")
        extent = probe.get_window_extent(renderer)
        probe.remove()
        w, h = 1.04 * extent.width, 1.15 * extent.height
        u, v = px[i]
        beside = [(u + gap + w / 2, v), (u - gap - w / 2, v), (u, v + gap + h / 2), (u, v - gap - h / 2),
                  (u + gap + w / 2, v + gap + h / 2), (u - gap - w / 2, v + gap + h / 2),
                  (u + gap + w / 2, v - gap - h / 2), (u - gap - w / 2, v - gap - h / 2)]
        gx, gy = np.meshgrid(np.arange(frame.x0 + w / 2, frame.x1 - w / 2, step),
                             np.arange(frame.y0 + h / 2, frame.y1 - h / 2, step))
        centres = np.array(beside + list(zip(gx.ravel(), gy.ravel())))
        boxes = np.column_stack([centres[:, 0] - w / 2, centres[:, 1] - h / 2, centres[:, 0] + w / 2, centres[:, 1] + h / 2])
        inside = (boxes[:, 0] >= frame.x0) & (boxes[:, 2] <= frame.x1) & (boxes[:, 1] >= frame.y0) & (boxes[:, 3] <= frame.y1)
        ok = inside & ~_boxes_overlap(boxes, np.array(taken))
        # the point's distance to each box: the nearest free place first, a place beside the point before all
        reach = np.hypot(np.maximum(np.maximum(boxes[:, 0] - u, u - boxes[:, 2]), 0),
                         np.maximum(np.maximum(boxes[:, 1] - v, v - boxes[:, 3]), 0))
        reach[: len(beside)] = -1.0
        candidates = np.flatnonzero(ok)
        if len(candidates):
            k = candidates[np.argmin(reach[candidates])]
        else:
            free, k = False, 0
        cx, cy = centres[k]
        far = k >= len(beside)
        label = ax.annotate(texts[i], (xs[i], ys[i]), xytext=((cx - u) / pixels, (cy - v) / pixels),
                            textcoords="offset points", ha="center", va="center", fontsize=LABEL_SIZE, color=colors[i],
                            fontweight="bold", arrowprops=LEADER if far else None)
        label.set_in_layout(False)  # placed for this layout: it must not change it
        taken.append(tuple(boxes[k]))
    return free


def _dodge(wanted: list[float], gap: float, low: float, high: float) -> list[float]:
    """Positions as near ``wanted`` (sorted ascending) as they can be with at least ``gap`` between
    neighbours, within [low, high] where there is room: a label repel in one dimension."""
    pos = list(wanted)
    for _ in range(50):  # pairwise pushes until nothing overlaps
        moved = False
        for k in range(1, len(pos)):
            overlap = gap - (pos[k] - pos[k - 1])
            if overlap > 1e-6:
                pos[k - 1] -= overlap / 2
                pos[k] += overlap / 2
                moved = True
        shift = max(0.0, low - pos[0]) if pos else 0.0
        shift = shift or (min(0.0, high - pos[-1]) if pos else 0.0)
        if shift:
            pos = [p + shift for p in pos]
            moved = True
        if not moved:
            break
    return pos


def _label_column(ax, xs: list[float], ys: list[float], texts: list[str], colors: list[str], x_text: float) -> None:
    """Labels in a column at ``x_text`` (data), each at its point's height where it can be and nudged
    vertically where labels would overlap, joined to its point by a leader line."""
    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    probe = ax.text(0, 0, "Xg", fontsize=LABEL_SIZE)
    height = probe.get_window_extent(renderer).height
    probe.remove()
    order = sorted(range(len(xs)), key=lambda i: ys[i])
    wanted = [ax.transData.transform((xs[i], ys[i]))[1] for i in order]
    placed = _dodge(wanted, 1.25 * height, frame.y0 + height, frame.y1 - height)
    inverse = ax.transData.inverted()
    x_pixel = ax.transData.transform((x_text, 0))[0]
    probes = [ax.text(0, 0, t, fontsize=LABEL_SIZE, fontweight="bold") for t in texts]
    widest = max((t.get_window_extent(renderer).width for t in probes), default=0.0)
    for t in probes:
        t.remove()
    if widest > frame.x1 - 8 - x_pixel:  # widen the axes' data range on the right until the column fits
        left, _ = ax.get_xlim()
        share = max((frame.width - 8 - 6 - widest) / frame.width, 0.3)  # of the width, what the points keep
        ax.set_xlim(left, left + (x_text - left) / share)
        x_pixel = ax.transData.transform((x_text, 0))[0]
        inverse = ax.transData.inverted()
    for i, y_pixel in zip(order, placed):
        y_text = inverse.transform((x_pixel, y_pixel))[1]
        label = ax.annotate(texts[i], (xs[i], ys[i]), xytext=(x_text, y_text), textcoords="data", ha="left", va="center",
                            fontsize=LABEL_SIZE, color=colors[i], fontweight="bold", arrowprops={**LEADER, "shrinkA": 4})
        label.set_in_layout(False)


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


def _bars(r, x: float, y: float) -> tuple[Any, Any]:
    """The clean (x) and robust (y) error bars of a row: the table's 95 % intervals, else std over seeds,
    else (one seed) the Wilson intervals over the examples."""
    if not pd.isna(getattr(r, "robust_low", float("nan"))) and not pd.isna(getattr(r, "clean_low", float("nan"))):
        return _asymmetric(x, (r.clean_low, r.clean_high)), _asymmetric(y, (r.robust_low, r.robust_high))
    if r.seeds > 1:
        return 100 * r.clean_std, 100 * r.robust_std
    return (_asymmetric(x, accuracy_interval(r.clean_mean, int(r.n_examples))),
            _asymmetric(y, accuracy_interval(r.robust_mean, int(r.n_examples))))


CROWD_PX = 100.0  # points nearer than this (pixels, in the one-panel layout) form a crowd
OVERLAP_PX = 18.0  # markers nearer than this hide each other


def _crowd(xs: list[float], ys: list[float], limits: tuple[float, float, float, float], size_px: tuple[float, float]) -> list[int]:
    """The largest group of points (single linkage at CROWD_PX) in the one-panel layout, when it is
    crowded (3 points or more, or 2 whose markers overlap); [] otherwise."""
    x0, x1, y0, y1 = limits
    px = np.array([((x - x0) / (x1 - x0) * size_px[0], (y - y0) / (y1 - y0) * size_px[1]) for x, y in zip(xs, ys)])
    n = len(px)
    group = list(range(n))

    def find(i: int) -> int:
        while group[i] != i:
            group[i] = group[group[i]]
            i = group[i]
        return i

    near = np.linalg.norm(px[:, None, :] - px[None, :, :], axis=-1) if n else np.zeros((0, 0))
    for i in range(n):
        for j in range(i + 1, n):
            if near[i, j] < CROWD_PX:
                group[find(i)] = find(j)
    members: dict[int, list[int]] = {}
    for i in range(n):
        members.setdefault(find(i), []).append(i)
    largest = max(members.values(), key=len, default=[])
    overlapping = any(near[i, j] < OVERLAP_PX for i in largest for j in largest if i < j)
    if len(largest) < 3 and not (len(largest) == 2 and overlapping):
        return []
    # a zoom helps only where the crowd fills a small part of the panel
    span = px[largest].max(axis=0) - px[largest].min(axis=0)
    return sorted(largest) if (span < 0.45 * np.array(size_px)).all() else []


def _zoom_box(xs: list[float], ys: list[float], crowd: list[int], limits) -> tuple[float, float, float, float]:
    """The region the zoomed panel shows: the crowd's points with a margin, inside the full panel's limits."""
    cx, cy = [xs[i] for i in crowd], [ys[i] for i in crowd]
    wx, wy = max(cx) - min(cx), max(cy) - min(cy)
    px, py = max(0.35 * wx, 0.4), max(0.3 * wy, 1.5)
    x0, x1, y0, y1 = limits
    top = min(max(cy) + py, y1)
    bottom = max(min(cy) - py, y0, -0.05 * top)  # no room below 0 % beyond a marker's
    return max(min(cx) - px, x0), min(max(cx) + px, x1), bottom, top


def _bar_boxes(xs, ys, errs) -> list[tuple[float, float, float, float]]:
    """The data boxes of the points' error bars (one per bar), for label placement to avoid."""
    boxes = []
    for x, y, (xerr, yerr) in zip(xs, ys, errs):
        xe, ye = np.ravel(xerr), np.ravel(yerr)
        boxes += [(x - float(xe[0]), x + float(xe[-1]), y, y), (x, x, y - float(ye[0]), y + float(ye[-1]))]
    return boxes


def _draw_points(ax, xs, ys, errs, colors, markers, flagged, front, ms: float = 8) -> None:
    ax.step([xs[i] for i in front], [ys[i] for i in front], where="pre", color="#555555", lw=1.5, ls=":", zorder=2,
            label="Pareto front")
    for i in sorted(range(len(xs)), key=lambda k: ys[k]):  # the lowest drawn first: a crowd's top points stay visible
        xerr, yerr = errs[i]
        ax.errorbar(xs[i], ys[i], xerr=xerr, yerr=yerr, marker=markers[i], ms=ms, capsize=3, color=colors[i], ls="none",
                    mfc="white" if flagged[i] else colors[i], mec=colors[i], mew=2, elinewidth=1.3, alpha=0.95, zorder=3)


def tradeoff(table: pd.DataFrame, out_dir: Path, eps_by_threat: dict[tuple[str, str], float],
             threat: str = "linf", pdf: bool = False) -> list[Path]:
    """One figure per protocol: clean vs worst-case robust accuracy per defense at the headline eps.

    Every defense is labelled by its point (no legend to decode). Where points crowd, the figure has
    two panels: every defense on the left, the crowded region zoomed on the right, its labels in a
    column beside the points, nudged apart vertically and joined to their points by leader lines."""
    written = []
    with plt.rc_context(STYLE):
        rows = table[(table["attack"] == WORST) & (table["threat_model"] == threat)]
        for (protocol, phash), part in rows.groupby(["protocol", "protocol_hash"], sort=True):
            eps = eps_by_threat[(protocol, threat)]
            at = part[part["eps"] == eps].groupby("defense", sort=True).first().reset_index()
            if at.empty:
                continue
            xs, ys = list(100 * at["clean_mean"]), list(100 * at["robust_mean"])
            at_rows = list(at.itertuples())
            errs = [_bars(r, x, y) for r, x, y in zip(at_rows, xs, ys)]
            flagged = [_status([r.flags]) != RANKED for r in at_rows]
            # a flagged or provisional figure is an upper bound, never ranked: the front is drawn through ranked ones only
            trusted = [i for i, bad in enumerate(flagged) if not bad]
            front = [trusted[j] for j in pareto_front([(xs[i], ys[i]) for i in trusted])]
            names = [r.defense + _mark(str(r.flags or "")) + (" *" if i in front else "") for i, r in enumerate(at_rows)]
            colors = [defense_color(d) for d in at["defense"]]
            markers = [defense_marker(d) for d in at["defense"]]
            x_extent = list(xs) + [x + s * float(np.ravel(e[0])[k]) for x, e in zip(xs, errs) for s, k in ((-1, 0), (1, -1))]
            y_extent = list(ys) + [y + s * float(np.ravel(e[1])[k]) for y, e in zip(ys, errs) for s, k in ((-1, 0), (1, -1))]
            x0, x1 = min(x_extent), max(x_extent)
            y0, y1 = min(y_extent), max(y_extent)
            xpad, ypad = max(1.5, 0.1 * (x1 - x0)), max(3.0, 0.1 * (y1 - y0))
            limits = (x0 - xpad, min(x1 + xpad, 102.0), max(-3.0, y0 - ypad), min(max(10.0, y1 + ypad), 102.0))
            crowd = _crowd(xs, ys, limits, (WIDTH_IN * 0.8 * DPI, 4.6 * DPI))
            runs = table[(table["protocol_hash"] == phash) & (table["threat_model"] == threat)]
            fig, body = figure_with_header(WIDTH_IN, 6.0, f"Clean vs robust accuracy per defense, {_threat(threat)} eps = {eps:g}",
                                     [f"{_protocol_text(protocol, phash)}, {int(at['n_examples'].max())} test images, "
                                      f"{seeds_text(at)}; robust = worst case per image over {', '.join(_attacks(runs, eps))}",
                                      _interval_note(at, "bars") + "; dotted line: Pareto front of the unflagged (* on "
                                      "it); open marker = flagged"])
            if not crowd:
                ax = body.add_subplot()
                axes = [ax]
                _draw_points(ax, xs, ys, errs, colors, markers, flagged, front)
            else:
                box = _zoom_box(xs, ys, crowd, limits)
                inside = [i for i in range(len(xs)) if box[0] <= xs[i] <= box[1] and box[2] <= ys[i] <= box[3]]
                outside = [i for i in range(len(xs)) if i not in inside]
                # the overview needs room for the labels of the points outside the zoom
                ax, zoom = axes = body.subplots(1, 2, width_ratios=[1, 1.7] if len(outside) <= 3 else [1.5, 1])
                for a in axes:
                    _draw_points(a, xs, ys, errs, colors, markers, flagged, front, ms=7 if a is ax else 9)
                ax.add_patch(Rectangle((box[0], box[2]), box[1] - box[0], box[3] - box[2], fill=False, ls="--", lw=1.0,
                                       ec="#444444", zorder=4))
                ax.set_title("every defense", loc="left", fontsize=SUBTITLE_SIZE + 1)
                zoom.set_title("zoom on the dashed box", loc="left", fontsize=SUBTITLE_SIZE + 1)
                zoom.set_xlabel("clean accuracy (%)")
            # every axis label and title before the labels: those are placed for the final layout
            for a in axes:
                a.grid(alpha=0.3)
            ax.set_xlabel("clean accuracy (%)")
            ax.set_ylabel(f"robust accuracy (%) at eps = {eps:g}")
            ax.set_xlim(*limits[:2])
            ax.set_ylim(*limits[2:])
            if not crowd:
                _place_labels(ax, xs, ys, names, colors, _bar_boxes(xs, ys, errs))
            else:
                # the label column right of the points and their bars, in the zoomed panel's right 40 %
                bar_right = max(xs[i] + float(np.ravel(errs[i][0])[-1]) for i in inside)
                x_text = max(box[1], min(bar_right, limits[1])) + 0.03 * (box[1] - box[0])
                zoom.set_xlim(box[0], box[0] + (x_text - box[0]) / 0.6)
                zoom.set_ylim(box[2], box[3])
                zoom.set_xticks([t for t in zoom.get_xticks() if box[0] <= t <= min(x_text, 100.0)])
                _place_labels(ax, [xs[i] for i in outside], [ys[i] for i in outside], [names[i] for i in outside],
                              [colors[i] for i in outside], _bar_boxes(xs, ys, errs) + [box],
                              [(xs[i], ys[i]) for i in inside])
                _label_column(zoom, [xs[i] for i in inside], [ys[i] for i in inside], [names[i] for i in inside],
                              [colors[i] for i in inside], x_text)
                zoom.set_xlim(box[0], zoom.get_xlim()[1])
            written += _save(fig, out_dir, "tradeoff_" + _stem(protocol, phash), pdf)
    return written
