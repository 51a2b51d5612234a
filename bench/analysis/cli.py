"""``bench analyze rsa|filters``: the command line of ``bench.analysis.run``.

Analyses of trained models, defenses side by side: each defense's model is trained or
reused exactly as ``bench run`` does, analysed, and written as one record per defense beside
its attack records; one figure compares the defenses.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.analysis.run import RsaOptions, analyze, default_eps
from bench.pipeline import Settings, parse_device
from bench.protocol import load_protocol

__all__ = ["add_parsers", "default_eps", "run"]


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


def run(args: argparse.Namespace) -> list[Path]:
    """``bench analyze`` with parsed arguments: see :func:`bench.analysis.run.analyze`."""
    protocol = load_protocol(args.protocol, args.overrides)
    settings = Settings(args.results, args.checkpoints, parse_device(args.device), False, not args.quiet)
    rsa = RsaOptions(args.n_per_class, args.eps, args.an_steps, args.an_stepsize, args.batch_size) if args.analysis == "rsa" else RsaOptions()
    return analyze(args.analysis, protocol, args.defense, args.seed, settings, Path(args.out), rsa)
