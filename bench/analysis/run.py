"""Analyses of trained models, defenses side by side: ``bench analyze`` and ``bench figures`` run them here.

Each defense's model comes from ``bench.pipeline`` exactly as for ``bench run`` (same
checkpoint key), is analysed, and is written as one self-describing record per defense beside
its attack records: ``<results>/<protocol>-<hash12>/<defense>/seed<N>/analysis_<rsa|filters>.json``.
One figure compares the defenses, under ``<out>/<protocol>-<hash12>/``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from bench.analysis import filters as filter_analysis
from bench.analysis import rsa as rsa_analysis
from bench.analysis.plots import filters_figure, rsa_figure
from bench.errors import BenchError
from bench.pipeline import DataSplit, Settings, check_protocol, load_data, make_defense, obtain_model
from bench.protocol import Protocol
from bench.records import record_path, write_record
from bench.records.build import analysis_record

ANALYSES = ("rsa", "filters")
REFERENCES = {
    "rsa": "in the spirit of Zhang et al., arXiv 1812.09431 (their exact AI/AN generation settings were not retrievable; "
           "the settings here are the harness's own, recorded in metrics.stimuli)",
    "filters": "Gavrikov & Keuper, CVPR-W 2022, arXiv 2204.02481; normalised entropy as in torchconvquality",
}


@dataclass(frozen=True)
class RsaOptions:
    """How the RSA stimuli are made (see docs/methods.md#91-representational-similarity-analysis)."""

    n_per_class: int = 10
    eps: float | None = None  # None: the middle nonzero eps of the protocol's linf grid
    an_steps: int = 100
    an_stepsize: float = 0.01
    batch_size: int | None = None  # None: the protocol's evaluation batch size

    def check(self) -> None:
        for name in ("n_per_class", "an_steps", "an_stepsize", "eps", "batch_size"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise BenchError(f"--{name.replace('_', '-')} must be positive, got {value}")


def default_eps(protocol: Protocol) -> float:
    """The middle nonzero eps of the protocol's L_inf grid (upper middle for an even count): a 'small' budget."""
    grid = [e for e in protocol.threat_models.get("linf", ()) if e > 0]
    if not grid:
        raise BenchError(f"protocol {protocol.name} has no nonzero linf eps; pass --eps")
    return float(sorted(grid)[len(grid) // 2])


def analysis_record_path(results_dir: Path, protocol: Protocol, defense: str, seed: int, analysis: str) -> Path:
    """Beside the model's attack records: ``.../<defense>/seed<N>/analysis_<kind>.json``."""
    return record_path(results_dir, protocol.name, protocol.hash, defense, seed, f"analysis_{analysis}")


Analysed = tuple[dict[str, Any], dict[str, Any], dict[str, Any]]  # (params, metrics, what was analysed)


def _analyse_rsa(options: RsaOptions, seed: int, protocol: Protocol, pipeline: nn.Module, data: DataSplit,
                 batch_size: int) -> Analysed:
    dataset = data.dataset
    eps = default_eps(protocol) if options.eps is None else options.eps
    pgd_keys = ("steps", "rel_stepsize", "restarts", "random_start")
    pgd = {k: v for k, v in protocol.attack_params("pgd").items() if k in pgd_keys}
    params = {"n_per_class": options.n_per_class, "eps": eps, "pgd": pgd, "an_steps": options.an_steps,
              "an_stepsize": options.an_stepsize, "batch_size": batch_size, "seed": seed,
              "pool": "the whole test set, scanned in order until every class has n_per_class clean images"}
    # Not the protocol's first evaluation.n_examples images: a test set stored sorted by class
    # (the embedded digits are) would leave whole classes out of the stimulus set.
    metrics = rsa_analysis.analyze(pipeline, dataset.test_x, dataset.test_y, dataset.num_classes,
                                   n_per_class=options.n_per_class, eps=eps, pgd_params=pgd, an_steps=options.an_steps,
                                   an_stepsize=options.an_stepsize, seed=seed, batch_size=batch_size)
    analysed = {"module": type(pipeline).__name__, "path": "(the pipeline itself)", "taps": dict(getattr(pipeline, "taps", {}) or {})}
    return params, metrics, analysed


def _analyse_filters(pipeline: nn.Module) -> Analysed:
    model, path = filter_analysis.unwrap_classifier(pipeline)
    metrics = filter_analysis.model_filter_quality(model)
    analysed = {"module": type(model).__name__, "path": path or "(the pipeline itself)", "pipeline": type(pipeline).__name__}
    return {"sparsity_eps": filter_analysis.SPARSITY_EPS, "kernel_size": [3, 3]}, metrics, analysed


def analyze(kind: str, protocol: Protocol, defense_names: list[str], seed: int, settings: Settings, out: Path,
            rsa: RsaOptions = RsaOptions()) -> list[Path]:
    """Analyse each defense (trained or reused), write its record, then the comparison figure; returns the paths."""
    if kind not in ANALYSES:
        raise BenchError(f"unknown analysis {kind!r}; valid: {', '.join(ANALYSES)}")
    check_protocol(protocol)
    names = list(dict.fromkeys(defense_names or ["baseline"]))
    defenses = [make_defense(protocol, name) for name in names]  # validate every name before any work
    if kind == "rsa":
        rsa.check()
    progress = settings.progress
    device = settings.resolved_device()
    data = load_data(protocol)
    batch_size = rsa.batch_size if kind == "rsa" and rsa.batch_size else protocol.evaluation.batch_size
    paths: list[Path] = []
    results: dict[str, dict[str, Any]] = {}
    for defense in defenses:
        ready = obtain_model(protocol, defense, data, seed, settings)
        t0 = time.perf_counter()
        if kind == "rsa":
            params, metrics, analysed = _analyse_rsa(rsa, seed, protocol, ready.pipeline, data, batch_size)
        else:
            params, metrics, analysed = _analyse_filters(ready.pipeline)
        seconds = time.perf_counter() - t0
        record = analysis_record(protocol, defense, seed, kind, params, REFERENCES[kind], data.dataset,
                                 {**ready.info, "analysed": analysed}, device,
                                 {"train_seconds": ready.train_seconds, "analysis_seconds": seconds}, metrics)
        path = analysis_record_path(settings.results_dir, protocol, defense.name, seed, kind)
        write_record(path, record)
        paths.append(path)
        label = defense.name
        if kind == "filters" and defense.base is not None:
            label += f" (= {defense.base}'s filters)"
        results[label] = metrics
        if progress:
            print(f"{defense.name} seed {seed}: {_summary_line(kind, metrics)}")
            print(f"wrote {path}")
    title = f"{protocol.name} ({protocol.short_hash}), seed {seed}"
    stem = Path(out) / f"{protocol.name}-{protocol.short_hash}" / f"{kind}_seed{seed}_{'+'.join(names)}"
    figure = rsa_figure if kind == "rsa" else filters_figure
    for path in figure(results, stem, f"{kind.upper() if kind == 'rsa' else 'conv filters'}: {title}"):
        paths.append(path)
        if progress:
            print(f"wrote {path}")
    return paths


def _summary_line(analysis: str, metrics: dict[str, Any]) -> str:
    if analysis == "rsa":
        s = metrics["stimuli"]
        conf = s["an"]["mean_confidence"]
        return (f"{s['n_clean']} clean, {s['ai']['kept']}/{s['ai']['attempted']} AI images at eps {s['ai']['eps']:g}, "
                f"{s['an']['n']} AN images (mean target confidence {conf:.3f})")
    skipped = ", ".join(f"{row['name']} ({'x'.join(map(str, row['kernel_size']))})" for row in metrics["skipped"]) or "none"
    mean = metrics["model_mean"]
    fmt = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    return (f"{metrics['n_layers']} 3x3 conv layers (skipped: {skipped}); mean sparsity {fmt(mean['sparsity'])}, "
            f"entropy {fmt(mean['variance_entropy'])}, orthogonality {fmt(mean['orthogonality'])}")
