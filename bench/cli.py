"""The ``bench`` command line: list, run, report.

Errors a user can cause print one line and exit with status 2; ``--debug`` shows the
traceback instead.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.errors import BenchError

LIST_KINDS = ("defenses", "attacks", "datasets", "models", "protocols")


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                        help="import MODULE first so that its registered defenses/attacks/... exist (repeatable)")
    common.add_argument("--debug", action="store_true", help="show tracebacks")
    return common


def parser() -> argparse.ArgumentParser:
    common = _common()
    top = argparse.ArgumentParser(prog="bench", description="Benchmark harness for the adversarial robustness of image classifiers.")
    sub = top.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", parents=[common], help="list registered components with a one-line description")
    p.add_argument("kind", nargs="?", choices=LIST_KINDS, help="what to list (default: everything)")

    p = sub.add_parser("run", parents=[common], help="train (or reuse) a defense and attack it under a protocol")
    p.add_argument("--protocol", default="quick", help="a shipped protocol name or a path to a .yaml file (default: quick)")
    p.add_argument("--defense", default="baseline", help="registered defense name (default: baseline)")
    p.add_argument("--attack", action="append", default=None,
                   help="registered attack name, repeatable; default: every attack the protocol configures")
    p.add_argument("--seed", action="append", type=int, default=None, help="seed, repeatable; default: the protocol's seeds")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                   help="override a protocol value, e.g. --set training.epochs=3 (validated against the protocol)")
    p.add_argument("--results", type=Path, default=Path("results"), help="folder for result records (default: ./results)")
    p.add_argument("--checkpoints", type=Path, default=Path("checkpoints"), help="folder for model checkpoints (default: ./checkpoints)")
    p.add_argument("--device", default=None, help="torch device, e.g. cpu or cuda (default: cuda when available)")
    p.add_argument("--force", action="store_true", help="retrain and re-attack even when a checkpoint or record exists")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--compile", action="store_true", help="torch.compile the attacked model (worth it on a GPU; recorded)")

    p = sub.add_parser("figures", parents=[common], help="regenerate a seed paper's figures, running what the records lack")
    p.add_argument("paper", help="li2019, attias2024, zhang2018, gavrikov2022 or brama2020")
    p.add_argument("--protocol", default="quick", help="protocol the runs use (default: quick)")
    p.add_argument("--dry-run", action="store_true", help="only list the runs that are missing")
    p.add_argument("--results", type=Path, default=Path("results"), help="folder for result records (default: ./results)")
    p.add_argument("--checkpoints", type=Path, default=Path("checkpoints"), help="folder for model checkpoints (default: ./checkpoints)")
    p.add_argument("--out", type=Path, default=Path("reports/figures"), help="output folder (default: ./reports/figures)")
    p.add_argument("--device", default=None, help="torch device (default: cuda when available)")
    p.add_argument("--quiet", action="store_true", help="no progress output")

    from bench.analysis.cli import add_parsers

    add_parsers(sub, common)
    from bench.sweep.cli import add_parser as add_sweep_parser
    add_sweep_parser(sub, common)

    p = sub.add_parser("report", parents=[common], help="aggregate result records into tables and figures")
    p.add_argument("--results", type=Path, default=Path("results"), help="folder of result records (default: ./results)")
    p.add_argument("--out", type=Path, default=Path("reports"), help="output folder (default: ./reports)")
    p.add_argument("--html", action="store_true", help="also write reports/index.html: a static, self-contained page")
    return top


def cmd_list(args) -> None:
    from bench.catalog import REGISTRIES as registries
    from bench.protocol import builtin_protocols

    for kind in [args.kind] if args.kind else LIST_KINDS:
        print(f"{kind}:")
        if kind == "protocols":
            entries = list(builtin_protocols().items())
        else:
            entries = [(e.name, e.description) for e in registries[kind]]
        width = max((len(name) for name, _ in entries), default=0)
        for name, description in entries:
            print(f"  {name.ljust(width)}  {description}")


def cmd_run(args) -> None:
    from bench.pipeline import Settings, parse_device
    from bench.protocol import load_protocol
    from bench.runner import run

    protocol = load_protocol(args.protocol, args.overrides)
    attacks = list(dict.fromkeys(args.attack or protocol.attacks))  # repeated names run once
    if attacks == ["all"]:
        attacks = list(protocol.attacks)
    seeds = args.seed or list(protocol.seeds)
    settings = Settings(args.results, args.checkpoints, parse_device(args.device), args.force, not args.quiet, args.compile)
    paths = run(protocol, args.defense, attacks, seeds, settings)
    if not args.quiet:
        print(f"{len(paths)} record(s) under {args.results}; protocol {protocol.name} hash {protocol.hash[:12]}")


def cmd_figures(args) -> None:
    from bench.figures import make_figures
    from bench.pipeline import Settings, parse_device

    settings = Settings(args.results, args.checkpoints, parse_device(args.device), False, not args.quiet)
    for line in make_figures(args.paper, args.protocol, settings, args.out, args.dry_run):
        print(line)


def cmd_analyze(args) -> None:
    from bench.analysis.cli import run as run_analysis

    run_analysis(args)


def cmd_sweep(args) -> None:
    from bench.sweep.cli import run as run_sweep

    report = run_sweep(args)
    if report is not None and report.failed:
        raise BenchError(report.failure_summary())


def cmd_report(args) -> None:
    from bench.reporting import write_report

    for path in write_report(args.results, args.out, html=args.html):
        print(f"wrote {path}")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        from bench.registry import load_plugin_module

        for module in args.plugin:
            load_plugin_module(module)
        commands = {"list": cmd_list, "run": cmd_run, "report": cmd_report, "figures": cmd_figures, "analyze": cmd_analyze,
                    "sweep": cmd_sweep}
        commands[args.command](args)
    except BenchError as exc:
        if args.debug:
            raise
        print(f"bench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench: interrupted; finished epochs and records are kept, rerun the same command to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
