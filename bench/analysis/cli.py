"""``bench analyze rsa|filters``: analyses of trained models, defenses side by side.

Each defense's model is trained or reused exactly as ``bench run`` does (same checkpoint
key), analysed, and written as one self-describing record per defense beside its attack
records: ``<results>/<protocol>-<hash12>/<defense>/seed<N>/analysis_<rsa|filters>.json``.
One figure compares the defenses, under ``<out>/<protocol>-<hash12>/``.
"""

from __future__ import annotations

import argparse
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bench.analysis import filters as filter_analysis
from bench.analysis import rsa as rsa_analysis
from bench.analysis.plots import filters_figure, rsa_figure
from bench.defenses.base import Defense
from bench.errors import BenchError
from bench.protocol import Protocol, load_protocol
from bench.records import SCHEMA_VERSION, code_version, environment, record_path, write_json_atomic
from bench.runner import Settings, load_data, make_defense, obtain_model, parse_device

ANALYSES = ("rsa", "filters")
REFERENCES = {
    "rsa": "in the spirit of Zhang et al., arXiv 1812.09431 (their exact AI/AN generation settings were not retrievable; "
           "the settings here are the harness's own, recorded in metrics.stimuli)",
    "filters": "Gavrikov & Keuper, CVPR-W 2022, arXiv 2204.02481; normalised entropy as in torchconvquality",
}


def add_parsers(subparsers: argparse._SubParsersAction, common_parent: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Register ``analyze`` with its sub-commands ``rsa`` and ``filters`` on the top-level ``subparsers``."""
    analyze = subparsers.add_parser("analyze", help="analyse trained models (RSA of adversarial images, conv-filter statistics)",
                                    description=__doc__.split("\n\n")[0])
    kinds = analyze.add_subparsers(dest="analysis", required=True)
    shared = argparse.ArgumentParser(add_help=False)
    shared.add_argument("--protocol", default="quick", help="a shipped protocol name or a path to a .yaml file (default: quick)")
    shared.add_argument("--defense", action="append", default=None,
                        help="registered defense name, repeatable: defenses are compared side by side (default: baseline)")
    shared.add_argument("--seed", type=int, default=0, help="training seed of the models analysed (default: 0)")
    shared.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                        help="override a protocol value, e.g. --set training.epochs=3 (validated against the protocol)")
    shared.add_argument("--results", type=Path, default=Path("results"), help="folder for result records (default: ./results)")
    shared.add_argument("--checkpoints", type=Path, default=Path("checkpoints"),
                        help="folder for model checkpoints (default: ./checkpoints)")
    shared.add_argument("--out", type=Path, default=Path("reports/analysis"), help="folder for figures (default: ./reports/analysis)")
    shared.add_argument("--device", default=None, help="torch device, e.g. cpu or cuda (default: cuda when available)")
    shared.add_argument("--quiet", action="store_true", help="no progress output")

    p = kinds.add_parser("rsa", parents=[common_parent, shared], help="representational similarity of clean, AI and AN images")
    p.add_argument("--n-per-class", type=int, default=10, help="clean images (and AN images) per class (default: 10)")
    p.add_argument("--eps", type=float, default=None,
                   help="L_inf budget of the AI images (default: the middle nonzero eps of the protocol's linf grid)")
    p.add_argument("--an-steps", type=int, default=100, help="gradient-ascent steps of the AN images (default: 100)")
    p.add_argument("--an-stepsize", type=float, default=0.01, help="signed step size of the AN ascent (default: 0.01)")
    p.add_argument("--batch-size", type=int, default=None, help="batch size (default: the protocol's evaluation batch size)")

    kinds.add_parser("filters", parents=[common_parent, shared], help="sparsity, variance entropy, orthogonality of 3x3 conv filters")
    return analyze


def default_eps(protocol: Protocol) -> float:
    """The middle nonzero eps of the protocol's L_inf grid (upper middle for an even count): a 'small' budget."""
    grid = [e for e in protocol["threat_models"].get("linf", {}).get("eps", []) if e > 0]
    if not grid:
        raise BenchError(f"protocol {protocol.name} has no nonzero linf eps; pass --eps")
    return float(sorted(grid)[len(grid) // 2])


def _check_positive(name: str, value: float | int) -> None:
    if value <= 0:
        raise BenchError(f"{name} must be positive, got {value}")


def analysis_record_path(results_dir: Path, protocol: Protocol, defense: str, seed: int, analysis: str) -> Path:
    """Beside the model's attack records: ``.../<defense>/seed<N>/analysis_<kind>.json``."""
    return record_path(results_dir, protocol.name, protocol.hash, defense, seed, f"analysis_{analysis}")


Analysed = tuple[dict[str, Any], dict[str, Any], dict[str, Any]]  # (params, metrics, what was analysed)


def _analyse_rsa(args: argparse.Namespace, protocol: Protocol, pipeline: nn.Module, data, batch_size: int) -> Analysed:
    dataset = data[0]
    eps = default_eps(protocol) if args.eps is None else args.eps
    pgd_keys = ("steps", "rel_stepsize", "restarts", "random_start")
    pgd = {k: v for k, v in (protocol["attacks"].get("pgd") or {}).items() if k in pgd_keys}
    params = {"n_per_class": args.n_per_class, "eps": eps, "pgd": pgd, "an_steps": args.an_steps,
              "an_stepsize": args.an_stepsize, "batch_size": batch_size, "seed": args.seed,
              "pool": "the whole test set, scanned in order until every class has n_per_class clean images"}
    # Not the protocol's first evaluation.n_examples images: a test set stored sorted by class
    # (the embedded digits are) would leave whole classes out of the stimulus set.
    metrics = rsa_analysis.analyze(pipeline, dataset.test_x, dataset.test_y, dataset.num_classes,
                                   n_per_class=args.n_per_class, eps=eps, pgd_params=pgd, an_steps=args.an_steps,
                                   an_stepsize=args.an_stepsize, seed=args.seed, batch_size=batch_size)
    analysed = {"module": type(pipeline).__name__, "path": "(the pipeline itself)", "taps": dict(getattr(pipeline, "taps", {}) or {})}
    return params, metrics, analysed


def _analyse_filters(pipeline: nn.Module) -> Analysed:
    model, path = filter_analysis.unwrap_classifier(pipeline)
    metrics = filter_analysis.model_filter_quality(model)
    analysed = {"module": type(model).__name__, "path": path or "(the pipeline itself)", "pipeline": type(pipeline).__name__}
    return {"sparsity_eps": filter_analysis.SPARSITY_EPS, "kernel_size": [3, 3]}, metrics, analysed


def build_analysis_record(analysis: str, protocol: Protocol, defense: Defense, seed: int, dataset, model_info: dict[str, Any],
                          analysed: dict[str, Any], params: dict[str, Any], metrics: dict[str, Any], device: torch.device,
                          seconds: float) -> dict[str, Any]:
    """A record as self-describing as an attack record: protocol, defense, seed, model, code, environment."""
    return {
        "schema": SCHEMA_VERSION,
        "kind": f"analysis_{analysis}",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "protocol": {"name": protocol.name, "version": protocol.version, "hash": protocol.hash, "source": protocol.source,
                     "config": protocol.config},
        "defense": defense.describe(),
        "seed": seed,
        "analysis": {"name": analysis, "params": params, "reference": REFERENCES[analysis]},
        "dataset": dataset.describe(),
        "model": {**model_info, "analysed": analysed},
        "code": code_version(),
        "environment": environment(device),
        "timings": {"train_seconds": model_info["training"]["train_seconds"], "analysis_seconds": seconds},
        "metrics": metrics,
    }


def run(args: argparse.Namespace) -> list[Path]:
    """Analyse each ``--defense`` (trained or reused), write its record, then the comparison figure; returns the paths."""
    if args.analysis not in ANALYSES:
        raise BenchError(f"unknown analysis {args.analysis!r}; valid: {', '.join(ANALYSES)}")
    protocol = load_protocol(args.protocol, args.overrides)
    names = list(dict.fromkeys(args.defense or ["baseline"]))
    defenses = [make_defense(protocol, name) for name in names]  # validate every name before any work
    if args.analysis == "rsa":
        for option in ("n_per_class", "an_steps", "an_stepsize", "eps", "batch_size"):
            if getattr(args, option) is not None:
                _check_positive(f"--{option.replace('_', '-')}", getattr(args, option))
    progress = not args.quiet
    settings = Settings(args.results, args.checkpoints, parse_device(args.device), False, progress)
    device = settings.resolved_device()
    data = load_data(protocol)
    batch_size = int(getattr(args, "batch_size", None) or protocol["evaluation"]["batch_size"])
    paths: list[Path] = []
    results: dict[str, dict[str, Any]] = {}
    for defense in defenses:
        pipeline, model_info = obtain_model(protocol, defense, data, args.seed, settings)
        pipeline.eval()
        t0 = time.perf_counter()
        if args.analysis == "rsa":
            params, metrics, analysed = _analyse_rsa(args, protocol, pipeline, data, batch_size)
        else:
            params, metrics, analysed = _analyse_filters(pipeline)
        record = build_analysis_record(args.analysis, protocol, defense, args.seed, data[0], model_info, analysed, params,
                                       metrics, device, time.perf_counter() - t0)
        path = analysis_record_path(args.results, protocol, defense.name, args.seed, args.analysis)
        write_json_atomic(path, record)
        paths.append(path)
        label = defense.name
        if args.analysis == "filters" and defense.base is not None:
            label += f" (= {defense.base}'s filters)"
        results[label] = metrics
        if progress:
            print(f"{defense.name} seed {args.seed}: {_summary_line(args.analysis, metrics)}")
            print(f"wrote {path}")
    title = f"{protocol.name} ({protocol.hash[:12]}), seed {args.seed}"
    stem = Path(args.out) / f"{protocol.name}-{protocol.hash[:12]}" / f"{args.analysis}_seed{args.seed}_{'+'.join(names)}"
    figure = rsa_figure if args.analysis == "rsa" else filters_figure
    for path in figure(results, stem, f"{args.analysis.upper() if args.analysis == 'rsa' else 'conv filters'}: {title}"):
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
