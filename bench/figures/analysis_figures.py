"""Figures of the analyses (RSA, filter statistics), drawn from their records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.analysis.plots import filters_figure, rsa_figure
from bench.records import AnalysisRecord


def draw_analysis(kind: str, records: dict[Any, AnalysisRecord], out: Path, stem: str) -> list[Path]:
    results = {item.name(): rec.metrics for item, rec in records.items()}  # each analysis's own metrics (free-form)
    first = next(iter(records.values()))
    title = f"{first.protocol.name} ({first.protocol.short_hash}), seed {first.seed}"
    draw = rsa_figure if kind == "rsa" else filters_figure
    return draw(results, out / stem, f"{'RSA' if kind == 'rsa' else 'conv filters'}: {title}")


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

