"""The gap between an attack of the harness and AutoAttack (standard) on the same models and images.

For each defense (trained, resumed or reloaded exactly as ``bench run`` does, from the
checkpoint folder) and each eps of the protocol's L_inf grid, runs AutoAttack standard on the
first ``--n`` test images and the attack under test (``pgd`` at the protocol's defaults unless
``--attack``), and prints both robust accuracies and the gap in points. AutoAttack's per-example
results are cached in ``--cache`` (keyed by the digest of the model's weights, defense, seed and n: a model retrained elsewhere is attacked afresh), so that a
change to the attack under test is measured again in seconds. ``--attack-seed`` repeats the tested
attack with other random starts: the gap that counts is the largest over them. Prints one JSON object.

``--components`` runs AutoAttack's four standard components (APGD-CE, APGD-T, FAB-T, Square)
one after another on the images the previous ones left, as the standard version does, and
records which one broke each image: every image the tested attack misses is then named with
the component that broke it. A miss that only FAB-T or Square can explain points at masked
gradients; one that APGD-CE or APGD-T explains, at the tested attack's optimisation.
``--eps`` attacks only the given eps (each on its own: no credit from a smaller ball).

    python benchmarks/autoattack_gap.py --defense baseline --defense pixel_sim
    python benchmarks/autoattack_gap.py --defense baseline --components --eps 0.1 --eps 0.15 \
        --set attacks.pgd.schedule=adaptive --set attacks.pgd.restarts=2 --attack-seed 0 --attack-seed 1
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from bench.attacks.decision import input_gradients_only, seeded_global_rng
from bench.data.base import to_float
from bench.evaluation import evaluate_attack
from bench.pipeline import Settings, load_data, make_attack, make_defense, obtain_model
from bench.protocol import load_protocol
from bench.records.results import load_results


def suite_gap(results, protocol, defense: str, seed: int, weights: str, aa_bits: dict[str, str]) -> dict | None:
    """Per eps: AutoAttack and the records' worst case over the suite on the same first n images;
    None when DIR holds no records of these weights (another model must not be compared)."""
    model = next((m for m in results.models
                  if m.attack_records[0].protocol.hash == protocol.hash and m.attack_records[0].defense.name == defense
                  and m.attack_records[0].seed == seed and m.attack_records[0].model.get("weights_sha256") == weights), None)
    if model is None:
        return None
    rows = {}
    for eps, a in aa_bits.items():
        bits = (model.worst_bits("linf", float(eps)) or "")[: len(a)]
        if len(bits) < len(a):
            continue
        aa, ours = 100 * a.count("1") / len(a), 100 * bits.count("1") / len(bits)
        rows[eps] = {"autoattack": aa, "worst_case": ours, "gap_points": round(ours - aa, 2),
                     "missed_by_suite": sum(1 for i, j in zip(a, bits) if i == "0" and j == "1")}
    attacks = sorted({r.attack.name for r in model.attack_records if r.attack.threat_model == "linf"})
    return {"folder": str(model.folder), "attacks": attacks, "eps": rows,
            "max_gap_points": max((r["gap_points"] for r in rows.values()), default=None)}


COMPONENTS = ("apgd-ce", "apgd-t", "fab-t", "square")


def components_broken_by(model, x: torch.Tensor, y: torch.Tensor, eps_list: list[float], seed: int) -> dict[str, list[str]]:
    """Per eps, per image: "clean" (misclassified unattacked), the first standard AutoAttack
    component that broke it (each run on what the earlier ones left, with the standard
    version's settings), or "" where none did."""
    from pyautoattack import AutoAttack

    out = {}
    with torch.no_grad():
        clean = (model(x).argmax(1) == y).tolist()
    for eps in eps_list:
        labels = ["" if ok else "clean" for ok in clean]
        for component in COMPONENTS:
            left = torch.tensor([i for i, label in enumerate(labels) if label == ""], dtype=torch.long)
            if not len(left):
                break
            adversary = AutoAttack(model, norm="Linf", eps=float(eps), version="custom", attacks=[component], seed=seed, device=x.device)
            adversary.verbose = False
            adversary.apgd_targeted.n_target_classes = 9  # the standard version's settings
            adversary.fab.n_target_classes = 9
            adversary.square.n_queries = 5000
            with seeded_global_rng(seed, x.device), input_gradients_only(model):
                result = adversary.run_standard_evaluation(x[left], y[left], batch_size=250)
            x_adv = result[0] if isinstance(result, tuple) else result
            with torch.no_grad():
                fooled = (model(x_adv.to(x.device)).argmax(1) != y[left]).tolist()
            for i, f in zip(left.tolist(), fooled):
                if f:
                    labels[i] = component
        out[f"{eps:g}"] = labels
    return out


def worst_case_bits(labels: dict[str, list[str]], eps_list: list[float]) -> dict[str, str]:
    """Per eps, '1' where no component broke the image at this eps or a smaller one of the list."""
    bits, alive = {}, None
    for eps in sorted(eps_list):
        now = [label == "" for label in labels[f"{eps:g}"]]
        alive = now if alive is None else [a and b for a, b in zip(alive, now)]
        bits[f"{eps:g}"] = "".join("1" if a else "0" for a in alive)
    return bits


def missed_by_component(labels: dict[str, list[str]], reference: str, ours: str, eps: float, eps_list: list[float]) -> dict[str, int]:
    """component -> images AutoAttack broke (at ``eps`` or a smaller eps of the list) that the tested attack did not."""
    counts: dict[str, int] = {}
    for i, (a, b) in enumerate(zip(reference, ours)):
        if a == "0" and b == "1":
            name = next((labels[f"{e:g}"][i] for e in sorted(eps_list) if e <= eps and labels[f"{e:g}"][i] not in ("", "clean")), "?")
            counts[name] = counts.get(name, 0) + 1
    return counts


def robust_bits(outcome, eps_list: list[float]) -> dict[str, str]:
    """Per eps, '1' where the example survived (as the harness reports it: worst case over eps' <= eps)."""
    return {f"{e:g}": "".join("1" if b else "0" for b in outcome.robust_correct[e].tolist()) for e in eps_list}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--protocol", default="quick")
    ap.add_argument("--defense", action="append", default=None)
    ap.add_argument("--attack", default="pgd", help="the harness attack compared with AutoAttack")
    ap.add_argument("--seed", type=int, default=0, help="the model's training seed (and AutoAttack's)")
    ap.add_argument("--attack-seed", type=int, action="append", default=None,
                    help="seed of the tested attack's random starts; repeat it to see how much borderline examples move (default: --seed)")
    ap.add_argument("--n", type=int, default=200, help="the first n test images")
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="protocol override key=value")
    ap.add_argument("--precision", default="auto", help="of the tested attack's gradient passes: auto, fp32 or bf16")
    ap.add_argument("--eps", type=float, action="append", default=None,
                    help="attack only these L_inf eps (default: the protocol's grid)")
    ap.add_argument("--components", action="store_true",
                    help="run AutoAttack's components one after another and name the one that broke each image the tested attack missed")
    ap.add_argument("--checkpoints", type=Path, default=Path("checkpoints"))
    ap.add_argument("--cache", type=Path, default=Path("checkpoints/autoattack-cache.json"))
    ap.add_argument("--records", type=Path, default=None,
                    help="a results folder: also compare its worst case over the suite (same weights) with AutoAttack")
    args = ap.parse_args()
    protocol = load_protocol(args.protocol, args.overrides)
    data = load_data(protocol)
    settings = Settings(checkpoint_dir=args.checkpoints, progress=False, precision=args.precision)
    device = settings.resolved_device()
    cache = json.loads(args.cache.read_text()) if args.cache.exists() else {}

    def save_cache() -> None:
        args.cache.parent.mkdir(parents=True, exist_ok=True)
        args.cache.write_text(json.dumps(cache))

    records = load_results(args.records) if args.records else None
    grid = [e for e in protocol.eps_grid("linf") if e > 0]
    if args.eps:
        not_positive = [e for e in args.eps if e <= 0]
        if not_positive:
            ap.error(f"--eps takes L_inf radii above 0, got {not_positive}")
        grid = sorted(set(args.eps))
    reference = make_attack(protocol, "autoattack")
    reference.n_examples = args.n
    tested = make_attack(protocol, args.attack)
    out = {"protocol": protocol.name, "hash": protocol.short_hash, "seed": args.seed, "n_examples": args.n,
           "attack": args.attack, "params": tested.params, "precision": settings.resolved_precision(), "defenses": {}}
    for name in args.defense or ["baseline", "pixel_sim"]:
        defense = make_defense(protocol, name)
        ready = obtain_model(protocol, defense, data, args.seed, settings)
        model = ready.pipeline
        x = to_float(data.dataset.test_x[: args.n], device)
        y = data.dataset.test_y[: args.n].to(device)
        key = f"{ready.info['weights_sha256']}/{defense.name}/{args.seed}/{args.n}"  # the trained weights, not the attacks
        if args.eps:  # a worst case over another grid is another result
            key += "/eps=" + ",".join(f"{e:g}" for e in grid)
        t0 = time.perf_counter()
        labels = None
        if args.components:
            ckey = f"{key}/components"
            todo = [e for e in grid if f"{e:g}" not in cache.get(ckey, {})]
            if todo:
                cache.setdefault(ckey, {}).update(components_broken_by(model, x, y, todo, args.seed))
                save_cache()
            labels = cache[ckey]
            reference_bits = worst_case_bits(labels, grid)
        else:
            if key not in cache:
                outcome = evaluate_attack(model, reference, x, y, [0.0, *grid], len(x), args.seed, False, "independent", False)
                cache[key] = robust_bits(outcome, grid)
                save_cache()
            reference_bits = {f"{e:g}": cache[key][f"{e:g}"] for e in grid}
        aa_seconds = time.perf_counter() - t0
        print(name, "autoattack", json.dumps({e: 100 * b.count("1") / len(b) for e, b in reference_bits.items()}),
              f"{aa_seconds:.1f} s", flush=True)
        runs = {}
        suite = suite_gap(records, protocol, defense.name, args.seed, ready.info["weights_sha256"], reference_bits) if records else None
        if records:
            print(name, "leaderboard worst case", json.dumps(suite) if suite else f"no records of these weights under {args.records}",
                  flush=True)
        for attack_seed in args.attack_seed or [args.seed]:
            t0 = time.perf_counter()
            outcome = evaluate_attack(model, tested, x, y, [0.0, *grid], len(x), attack_seed, False, "independent", False,
                                      precision=settings.resolved_precision())
            seconds = time.perf_counter() - t0
            ours = robust_bits(outcome, grid)
            rows = {}
            for e in grid:
                a, b = reference_bits[f"{e:g}"], ours[f"{e:g}"]
                aa, mine = 100 * a.count("1") / len(a), 100 * b.count("1") / len(b)
                missed = sum(1 for i, j in zip(a, b) if i == "0" and j == "1")  # AutoAttack fooled, the attack did not
                rows[f"{e:g}"] = {"autoattack": aa, args.attack: mine, "gap_points": round(mine - aa, 2), "missed_by_attack": missed}
                if labels is not None:
                    rows[f"{e:g}"]["missed_broken_by"] = missed_by_component(labels, a, b, e, grid)
            runs[str(attack_seed)] = {"eps": rows, "max_gap_points": max(r["gap_points"] for r in rows.values()),
                                      "attack_seconds": round(seconds, 1)}
            print(name, "attack seed", attack_seed, json.dumps(runs[str(attack_seed)]), flush=True)
        out["defenses"][name] = {"attack_seeds": runs, "max_gap_points": max(r["max_gap_points"] for r in runs.values()),
                                 "autoattack_seconds": round(aa_seconds, 1), "leaderboard_worst_case": suite}
        print(name, json.dumps(out["defenses"][name]), flush=True)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
