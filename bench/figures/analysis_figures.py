"""Figures of the analyses (RSA, filter statistics), drawn from their records over every seed they hold."""

from __future__ import annotations

from pathlib import Path

from bench.analysis.plots import STIMULI, filters_figure, rsa_figure
from bench.figures.plotting import label_of
from bench.records import AnalysisRecord

TITLES = {"rsa": "How each layer represents clean and adversarial images (RSA)",
          "filters": "Convolution-filter statistics vs depth"}


def draw_analysis(kind: str, data, out: Path, stem: str) -> list[Path]:
    """``data``: a ``bench.figures.base.FigureData`` of analysis records; defenses named as on the leaderboard."""
    results = {label_of(records, item.variant): [rec.metrics for rec in records] for item, records in data.records.items()}
    subtitle = [f"{data.basis()}: {'one model' if len(data.seeds) == 1 else f'{len(data.seeds)} models'} per defense"
                + ("" if len(data.seeds) == 1 else " (lines: mean; bands: range over the seeds)")]
    if kind == "rsa":
        first = next(iter(data.records.values()))[0]
        eps = first.analysis.params.get("eps")
        subtitle.append(STIMULI.format(eps=f" (eps {eps:g})" if isinstance(eps, (int, float)) else ""))
    draw = rsa_figure if kind == "rsa" else filters_figure
    return draw(results, out / stem, TITLES[kind], subtitle)


def analysis_sample(record: AnalysisRecord) -> str:
    """What one analysis measured on, for the caption (its n)."""
    m = record.metrics
    if record.analysis.name == "rsa":
        kinds = ", ".join(f"{n} {kind.upper() if kind != 'clean' else kind}" for kind, n in m.get("stimulus_kinds", {}).items())
        return f"n = {sum(m.get('stimulus_kinds', {}).values())} stimuli ({kinds}) over {len(m.get('layers', []))} layers"
    if record.analysis.name == "filters":
        kernels = [layer.get("n_kernels") for layer in m.get("layers", [])]
        return f"n = {m.get('n_layers', len(kernels))} 3x3 conv layers ({', '.join(str(k) for k in kernels)} kernels)"
    return "one analysis record"
