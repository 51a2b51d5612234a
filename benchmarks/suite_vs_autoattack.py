"""The leaderboard suite beside AutoAttack: its worst case, its wall time, and the ratio.

For each defense (trained, resumed or reloaded from ``--checkpoints`` exactly as ``bench run``
does), on the protocol's first ``--n`` test images and its L_inf grid:

* **AutoAttack standard** (``pyautoattack``: APGD-CE, APGD-T, FAB-T, Square; seed = the
  model's seed), each eps attacked on its own; its per-example results and wall time are cached
  in ``--cache`` under the digest of the model's weights, so a change to the suite is measured
  again without rerunning it (``benchmarks/autoattack_gap.py`` shares the cache);
* **the suite**: ``bench run --defense D`` with the protocol's whole leaderboard suite (every
  attack and the convergence rerun) under the faster settings proposed for the next version
  (``FASTER``: the eps grid walked from the largest eps down with warm starts, PGD's targeted
  runs toward the 4 classes MALT puts nearest instead of 9), timed from the trained model to
  the last record (training and the transfer surrogate's training are done, and not timed, before);
* with ``--previous``, the same suite as the protocol ships it (every eps attacked afresh, PGD
  with two cross-entropy runs and APGD-T's 9 targets in logit order), timed the same way: the
  speed-up is measured in the same run. ``--as-shipped`` measures the shipped settings alone.

Prints, per defense, AutoAttack's and the worst case's robust accuracy per eps, the gap in
points (positive: the suite leaves more than AutoAttack), the images AutoAttack broke that the
suite missed, the wall times and their ratios, then one JSON object.

    python benchmarks/suite_vs_autoattack.py --defense baseline --defense pixel_sim \\
        --defense adv_train --defense median_filter --previous
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import torch

from bench import runner
from bench.data.base import to_float
from bench.evaluation import evaluate_attack
from bench.pipeline import Settings, load_data, make_attack, make_defense, obtain_model, obtain_surrogate
from bench.protocol import load_protocol
from bench.records.results import load_results
from autoattack_gap import robust_bits

# the settings proposed for quick's next version, as overrides of the shipped one
FASTER = ["evaluation.curve=descending", "attacks.pgd.targets=4", "attacks.pgd.target_order=malt"]


def autoattack_bits(protocol, model, x, y, grid: list[float], seed: int, key: str, cache: dict, save) -> tuple[dict[str, str], float | None]:
    """AutoAttack standard's per-example outcomes per eps (cached) and its wall time (None if the cache lacks it)."""
    if key not in cache:
        reference = make_attack(protocol, "autoattack")
        reference.n_examples = len(x)
        t0 = time.perf_counter()
        outcome = evaluate_attack(model, reference, x, y, [0.0, *grid], len(x), seed, False, "independent", False)
        cache[key] = robust_bits(outcome, grid)
        cache[key + "#seconds"] = time.perf_counter() - t0
        save()
    return {f"{e:g}": cache[key][f"{e:g}"] for e in grid}, cache.get(key + "#seconds")


def timed_suite(protocol, defense: str, seed: int, settings: Settings) -> tuple[float, dict[str, float], object]:
    """Wall time of the whole leaderboard suite on the trained model, per-attack seconds, and its records."""
    results = Path(tempfile.mkdtemp(prefix="bench-suite-"))
    try:
        run_settings = Settings(results_dir=results, checkpoint_dir=settings.checkpoint_dir, progress=False,
                                precision=settings.precision, device=settings.device)
        t0 = time.perf_counter()
        runner.run(protocol, defense, list(protocol.suite()), [seed], run_settings)
        seconds = time.perf_counter() - t0
        loaded = load_results(results)
        model = loaded.models[0]
        per_attack = {r.attack.name: round(float(r.timings.get("attack_seconds", 0.0)), 1) for r in model.attack_records}
        return seconds, per_attack, model
    finally:
        shutil.rmtree(results, ignore_errors=True)


def compare(reference: dict[str, str], model, grid: list[float]) -> dict[str, dict]:
    rows = {}
    for e in grid:
        a = reference[f"{e:g}"]
        b = (model.worst_bits("linf", e) or "")[: len(a)]
        aa, ours = 100 * a.count("1") / len(a), 100 * b.count("1") / max(len(b), 1)
        rows[f"{e:g}"] = {"autoattack": aa, "worst_case": ours, "gap_points": round(ours - aa, 2),
                          "missed": sum(1 for i, j in zip(a, b) if i == "0" and j == "1"),
                          "beyond_autoattack": sum(1 for i, j in zip(a, b) if i == "1" and j == "0")}
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--protocol", default="quick")
    ap.add_argument("--defense", action="append", default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n", type=int, default=None, help="the first n test images (default: the protocol's n_examples)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="protocol override key=value")
    ap.add_argument("--previous", action="store_true", help="also time the suite as the protocol ships it")
    ap.add_argument("--as-shipped", action="store_true", help="measure the suite as the protocol ships it, not the faster settings")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--checkpoints", type=Path, default=Path("checkpoints"))
    ap.add_argument("--cache", type=Path, default=Path("checkpoints/autoattack-cache.json"))
    args = ap.parse_args()
    shipped = load_protocol(args.protocol, args.overrides)
    n = args.n or shipped.evaluation.n_examples
    sized = [*args.overrides, f"evaluation.n_examples={n}"]
    protocol = load_protocol(args.protocol, sized if args.as_shipped else [*FASTER, *sized])
    previous = load_protocol(args.protocol, sized) if args.previous and not args.as_shipped else None
    data = load_data(protocol)
    settings = Settings(checkpoint_dir=args.checkpoints, progress=False, precision=args.precision)
    device = settings.resolved_device()
    cache = json.loads(args.cache.read_text()) if args.cache.exists() else {}

    def save() -> None:
        args.cache.parent.mkdir(parents=True, exist_ok=True)
        args.cache.write_text(json.dumps(cache))

    grid = [e for e in protocol.eps_grid("linf") if e > 0]
    x = to_float(data.dataset.test_x[:n], device)
    y = data.dataset.test_y[:n].to(device)
    out = {"protocol": protocol.name, "version": protocol.version, "hash": protocol.short_hash, "seed": args.seed, "n_examples": n,
           "suite": list(protocol.suite()), "precision": settings.resolved_precision(), "threads": torch.get_num_threads(),
           "defenses": {}}
    for name in args.defense or ["baseline", "pixel_sim", "adv_train", "median_filter"]:
        ready = obtain_model(protocol, make_defense(protocol, name), data, args.seed, settings)  # trained before the clock
        obtain_surrogate(protocol, data, args.seed, settings)
        key = f"{ready.info['weights_sha256']}/{name}/{args.seed}/{n}"
        reference, aa_seconds = autoattack_bits(protocol, ready.pipeline, x, y, grid, args.seed, key, cache, save)
        seconds, per_attack, model = timed_suite(protocol, name, args.seed, settings)
        rows = compare(reference, model, grid)
        row = {"eps": rows, "max_gap_points": max(r["gap_points"] for r in rows.values()),
               "suite_seconds": round(seconds, 1), "attack_seconds": per_attack,
               "autoattack_seconds": None if aa_seconds is None else round(aa_seconds, 1),
               "autoattack_over_suite": None if aa_seconds is None else round(aa_seconds / seconds, 2)}
        if previous is not None:
            before, before_attacks, before_model = timed_suite(previous, name, args.seed, settings)
            before_rows = compare(reference, before_model, grid)
            row["previous"] = {"suite_seconds": round(before, 1), "attack_seconds": before_attacks,
                               "max_gap_points": max(r["gap_points"] for r in before_rows.values()),
                               "worst_case": {e: r["worst_case"] for e, r in before_rows.items()}}
            row["speedup_over_previous"] = round(before / seconds, 2)
        out["defenses"][name] = row
        print(name, " ".join(f"eps {e}: AA {r['autoattack']:.1f} suite {r['worst_case']:.1f} ({r['gap_points']:+.1f})"
                             for e, r in rows.items()),
              f"| suite {seconds:.0f} s, AutoAttack {aa_seconds or float('nan'):.0f} s"
              + (f", previous suite {row['previous']['suite_seconds']:.0f} s (x{row['speedup_over_previous']})" if previous else ""),
              flush=True)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
