"""The ``bench`` command line: list, run, eval, report, compare, sweep, analyze, figures.

Errors a user can cause print one line and exit with status 2; ``--debug`` shows the
traceback instead.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from bench.errors import BenchError
from bench.protocol import DEFAULT_PROTOCOL

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

    p = sub.add_parser(
        "run", parents=[common], help="train (or reuse) a defense and attack it under a protocol",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train a registered defense (or reuse its checkpoint) and attack it with the\n"
                    "protocol's leaderboard suite: one record per attack and seed under\n"
                    "--results. Records already there are reused, so an interrupted or extended\n"
                    "run picks up where it stopped. `bench list` names the defenses, attacks and\n"
                    "protocols.",
        epilog="examples:\n"
               "  # the quick protocol's whole leaderboard suite on neural_sim, every seed\n"
               "  bench run --defense neural_sim\n"
               "  # one seed and one attack first (the rest of the suite can follow later)\n"
               "  bench run --defense gaussian_blur --seed 0 --attack pgd\n"
               "  # then the leaderboard page, reports/index.html\n"
               "  bench report --html")
    p.add_argument("--protocol", default=DEFAULT_PROTOCOL,
                   help=f"a shipped protocol name or a path to a .yaml file (default: {DEFAULT_PROTOCOL})")
    p.add_argument("--defense", default="baseline", help="registered defense name (default: baseline)")
    p.add_argument("--attack", action="append", default=None,
                   help="registered attack name, repeatable; default: the protocol's leaderboard suite; all: every attack it configures")
    p.add_argument("--seed", action="append", type=int, default=None, help="seed, repeatable; default: the protocol's seeds")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                   help="override a protocol value, e.g. --set training.epochs=3 (validated against the protocol)")
    p.add_argument("--results", type=Path, default=Path("results"), help="folder for result records (default: ./results)")
    p.add_argument("--checkpoints", type=Path, default=Path("checkpoints"), help="folder for model checkpoints (default: ./checkpoints)")
    p.add_argument("--device", default=None, help="torch device, e.g. cpu or cuda (default: cuda when available)")
    p.add_argument("--force", action="store_true", help="retrain and re-attack even when a checkpoint or record exists")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--compile", action="store_true", help="torch.compile the attacked model (worth it on a GPU; recorded)")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                   help="of PGD's and FGSM's gradient passes; every success is confirmed in fp32 (default auto: bf16 on a "
                        "GPU or a CPU with AMX or AVX512-BF16; recorded)")

    p = sub.add_parser(
        "eval", parents=[common], help="evaluate a network trained elsewhere (a factory + weights, or TorchScript)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="bench eval (--model FILE.py:FACTORY --weights FILE | --torchscript FILE)\n"
              "                  --name NAME [options]",
        description="Evaluate a network trained elsewhere with the same engine, attack suite and\n"
                    "sanity checks as a registered defense. The network: --model (a factory\n"
                    "returning an nn.Module that maps images in [0, 1] to logits) with --weights\n"
                    "(its state dict), or --torchscript (an archive with its weights). On the\n"
                    "protocol's own images and eps grid (the default) its records land under the\n"
                    "protocol's hash, ranked in the same leaderboard as the defenses.",
        epilog="examples:\n"
               "  # a factory in net.py and its state dict, on the quick protocol's images\n"
               "  bench eval --model net.py:make_net --weights net.pt --name my_net\n"
               "  # a TorchScript archive, L2 attacks\n"
               "  bench eval --torchscript net.ts --name my_net --threat l2\n"
               "  # then your network beside the shipped defenses\n"
               "  bench report --html --with-references")
    network = p.add_mutually_exclusive_group(required=True)
    network.add_argument("--model", default=None, metavar="FILE.py:FACTORY",
                         help="path/to/file.py:factory or package.module:factory returning an nn.Module that maps images in "
                              "[0, 1] to logits; needs --weights")
    network.add_argument("--torchscript", type=Path, default=None, metavar="FILE",
                         help="a TorchScript archive instead of --model/--weights")
    p.add_argument("--weights", type=Path, default=None, metavar="FILE",
                   help="state-dict file for --model (read with weights_only=True)")
    p.add_argument("--random-init", action="store_true", help="evaluate --model as its factory initialises it, without --weights")
    p.add_argument("--data", default=None, help="default: the protocol's own evaluation images (ranked beside its defenses); "
                   "or an .npz with x and y, a folder of class subfolders of images, or a registered data set (its test split)")
    p.add_argument("--n", type=int, default=None, help="evaluate only the first N images")
    p.add_argument("--name", required=True, help="how records and reports name the model (letters, digits, _ . + -)")
    p.add_argument("--data-name", default=None, help="how records name the data (default: the file, folder or data set name)")
    p.add_argument("--protocol", default=DEFAULT_PROTOCOL,
                   help=f"protocol giving data, eps grids and attack parameters (default: {DEFAULT_PROTOCOL})")
    p.add_argument("--threat", "--threat-model", dest="threat_model", default="linf", metavar="THREAT",
                   help="linf, l2 or a noise threat model of the protocol (default: linf)")
    p.add_argument("--attack", action="append", default=None,
                   help="attack name, repeatable (default: the protocol's leaderboard suite)")
    p.add_argument("--eps", action="append", type=float, default=None, help="budget, repeatable (default: the protocol's grid)")
    p.add_argument("--seed", type=int, default=0, help="attack seed (default: 0)")
    p.add_argument("--batch-size", type=int, default=None, help="evaluation batch size (default: the protocol's)")
    p.add_argument("--results", type=Path, default=Path("results"), help="folder for result records (default: ./results)")
    p.add_argument("--checkpoints", type=Path, default=Path("checkpoints"),
                   help="folder for the transfer surrogate's checkpoint (default: ./checkpoints)")
    p.add_argument("--device", default=None, help="torch device, e.g. cpu or cuda (default: cuda when available)")
    p.add_argument("--force", action="store_true", help="re-attack even when records exist, replacing records of other weights")
    p.add_argument("--quiet", action="store_true", help="no progress output")

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
    p.add_argument("--html", action="store_true",
                   help="also write reports/index.html: a static page (no server, no network) that links the figures beside it")
    p.add_argument("--pdf", action="store_true", help="also write each figure as a PDF beside its PNG")
    p.add_argument("--all-versions", action="store_true",
                   help="also report records of older versions of a protocol (by default only each protocol's newest)")
    p.add_argument("--with-references", nargs="?", type=Path, const=Path("results/reference"), default=None, metavar="DIR",
                   help="show the shipped reference results (default DIR: results/reference) beside yours, labelled [reference]")

    p = sub.add_parser(
        "compare", parents=[common], help="two defenses, paired over the same images and seeds: differences with intervals",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="A minus B, per protocol both ran and per eps, paired over the same test\n"
                    "images and seeds: the difference in points with its 95 % confidence interval\n"
                    "and p-value. A side that is flagged or provisional on the leaderboard is\n"
                    "named, and its robust differences are not marked significant.",
        epilog="examples:\n"
               "  bench compare neural_sim baseline --results results/reference\n"
               "  bench compare gaussian_blur baseline --attack pgd_l2 --threat l2")
    p.add_argument("a", help="defense as you ran it (neural_sim) or as the reports label it (the difference is a minus b)")
    p.add_argument("b", help="the defense compared against, e.g. baseline")
    p.add_argument("--results", type=Path, default=Path("results"), help="folder of result records (default: ./results)")
    p.add_argument("--threat", "--threat-model", dest="threat", default="linf", metavar="THREAT",
                   help="threat model: linf, l2 or a noise threat model (default: linf)")
    p.add_argument("--attack", default="worst case",
                   help="an attack's name, or worst_case (also 'worst case'): per example, the worst over the suite (default)")
    p.add_argument("--all-versions", action="store_true",
                   help="also compare on older versions of a protocol (by default only each protocol's newest)")
    p.add_argument("--with-references", nargs="?", type=Path, const=Path("results/reference"), default=None, metavar="DIR",
                   help="also read the shipped references (default DIR: results/reference), labelled [reference]")
    return top


def cmd_compare(args) -> None:
    from bench.errors import ConfigError
    from bench.records.results import latest_versions, load_results
    from bench.reporting.tables import comparison, records_frame

    if not args.results.is_dir():
        raise ConfigError(f"--results {args.results} is not a folder of result records")
    if args.with_references is not None and not args.with_references.is_dir():
        raise ConfigError(f"--with-references {args.with_references} is not a folder of result records")
    results, superseded = load_results(args.results, args.with_references), []
    if not args.all_versions:  # older versions ran other attacks: not the figure a reader compares
        results, superseded = latest_versions(results)
    print(comparison(records_frame(results), args.a, args.b, args.threat, args.attack, results), end="")
    if superseded:
        print("\nLeft out, as older versions of a protocol (`--all-versions` includes them): " + "; ".join(superseded) + ".")


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
    from bench.protocol import check_seed, load_protocol
    from bench.runner import run

    protocol = load_protocol(args.protocol, args.overrides)
    attacks = list(dict.fromkeys(args.attack or protocol.suite()))  # repeated names run once
    if attacks == ["all"]:
        attacks = list(protocol.attacks)
    seeds = [check_seed(seed, "--seed") for seed in args.seed] if args.seed else list(protocol.seeds)
    settings = Settings(args.results, args.checkpoints, parse_device(args.device), args.force, not args.quiet, args.compile,
                        args.precision)
    paths = run(protocol, args.defense, attacks, seeds, settings)
    if not args.quiet:
        print(f"{len(paths)} record(s) under {args.results}; protocol {protocol.name} hash {protocol.hash[:12]}")


def cmd_eval(args) -> None:
    from bench.api import check_model_name, evaluate, load_evaluation_data
    from bench.errors import ConfigError
    from bench.pipeline import parse_device
    from bench.zoo.user import load_user_model

    device = parse_device(args.device)
    check_model_name(args.name, args.results)  # before the model is built or any data read
    if args.model is not None and args.weights is None and not args.random_init:
        raise ConfigError("--model without --weights would evaluate a random initialisation; give --weights FILE, "
                          "or --random-init if that is what you mean")
    if args.random_init and (args.weights is not None or args.model is None):
        raise ConfigError("--random-init goes with --model and without --weights")
    model = load_user_model(args.model, args.weights, args.torchscript)
    source = (f"--torchscript {args.torchscript}" if args.torchscript else
              f"--model {args.model} " + (f"--weights {args.weights}" if args.weights else "--random-init"))
    if args.data is None:
        x = y = None
        name, data_source = None, None
        n = args.n
    else:
        x, y, name, data_source = load_evaluation_data(args.data, args.n)
        n = None
    result = evaluate(model, x, y, args.threat_model, args.eps, args.attack, name=args.name, protocol=args.protocol,
                      seed=args.seed, n=n, batch_size=args.batch_size, device=device, data_name=args.data_name or name or "",
                      data_source=data_source or "", progress=not args.quiet, results=args.results,
                      checkpoints=args.checkpoints, force=args.force, source=source)
    if not args.quiet:
        if result.switched_to_eval:
            print("the model was in train mode: it was evaluated in eval mode (recorded)")
        worst = ", ".join(f"{e:g}: {a:.3f} [{lo:.3f}, {hi:.3f}]" for e, a in result.robust_accuracy.items()
                          for lo, hi in [result.interval(e)])
        print(f"{args.name}: clean {result.clean_accuracy:.3f}; worst case over {', '.join(result.per_attack)} "
              f"(95 % Wilson interval over {result.n_examples} images): {worst}")
        print(f"sanity checks, every attack's and across attacks: "
              f"{'FLAGGED ' + ', '.join(result.flagged) if result.flagged else 'all pass'}")
        print(f"{len(result.paths)} record(s) under {args.results}; protocol {result.protocol.name} hash "
              f"{result.protocol.short_hash}")


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

    for path in write_report(args.results, args.out, html=args.html, all_versions=args.all_versions,
                             references=args.with_references, pdf=args.pdf):
        print(f"wrote {path}")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if getattr(args, "quiet", False):  # --quiet means no output but errors: libraries' warnings included
        warnings.simplefilter("ignore")
    try:
        from bench.registry import load_plugin_module

        for module in args.plugin:
            load_plugin_module(module)
        commands = {"list": cmd_list, "run": cmd_run, "eval": cmd_eval, "report": cmd_report, "figures": cmd_figures,
                    "analyze": cmd_analyze, "sweep": cmd_sweep, "compare": cmd_compare}
        commands[args.command](args)
    except BenchError as exc:
        if args.debug:
            raise
        print("bench: error: " + " ".join(str(exc).split()), file=sys.stderr)  # one line, whatever the message
        return 2
    except KeyboardInterrupt:
        print("bench: interrupted; finished epochs and records are kept, rerun the same command to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
