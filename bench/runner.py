"""One ``bench run``: protocol -> data -> model (trained or reused) -> defense -> attacks -> records.

Nothing already computed is recomputed: a finished model is reloaded from its checkpoint
folder (keyed by a hash of everything its training depends on), an unfinished one resumes,
and an attack whose record exists for the same protocol hash is skipped unless ``force``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bench.attacks.base import Attack
from bench.data.base import ImageDataset, to_float
from bench.defenses.base import Defense, TrainingContext
from bench.errors import BenchError, ConfigError
from bench.evaluation import AttackOutcome, evaluate_attack
from bench.evaluation.aggregate import model_summary
from bench.evaluation.model_checks import model_checks
from bench.models import build_model
from bench.protocol import Protocol, config_hash
from bench.records import SCHEMA_VERSION, code_version, environment, read_record, record_path, summary_path, write_json_atomic
from bench.registry import ATTACKS, DATASETS, DEFENSES
from bench.training import TrainResult, load_trained, train


@dataclass
class Settings:
    results_dir: Path = Path("results")
    checkpoint_dir: Path = Path("checkpoints")
    device: torch.device | None = None
    force: bool = False
    progress: bool = True
    compile: bool = False  # torch.compile the attacked model (same results; faster on a GPU after warm-up)

    def resolved_device(self) -> torch.device:
        return self.device or torch.device("cuda" if torch.cuda.is_available() else "cpu")


def parse_device(name: str | None) -> torch.device | None:
    """``--device`` as a torch device (None: cuda when available), refused clearly when unusable."""
    if name is None:
        return None
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise BenchError(f"--device {name!r} is not a torch device ({exc}); use cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BenchError("--device cuda was asked for but no CUDA GPU is available; use --device cpu")
    return device


def _create(registry, kind: str, name: str, params: dict[str, Any]):
    entry = registry.get(name)
    try:
        return entry.factory(**params)
    except TypeError as exc:
        raise ConfigError(f"{kind} {name!r} rejected the parameters {params} from the protocol: {exc}") from None


def make_defense(protocol: Protocol, name: str) -> Defense:
    """``name`` is a registered defense, or ``family:spec`` for families of ready-made models
    (e.g. ``robustbench:Carmon2019Unlabeled``): the family factory gets ``spec`` first, then the
    parameters of ``defenses.<family>`` updated by those of ``defenses.<family:spec>``."""
    if ":" in name:
        family, spec = name.split(":", 1)
        params = {**protocol.defense_params(family), **protocol.defense_params(name)}
        entry = DEFENSES.get(family)
        try:
            return entry.factory(spec, **params)
        except TypeError as exc:
            raise ConfigError(f"defense family {family!r} rejected {spec!r} with parameters {params}: {exc}") from None
    return _create(DEFENSES, "defense", name, protocol.defense_params(name))


def make_attack(protocol: Protocol, name: str) -> Attack:
    attack = _create(ATTACKS, "attack", name, dict(protocol["attacks"].get(name) or {}))
    if attack.threat_model not in protocol["threat_models"]:
        valid = ", ".join(protocol["threat_models"])
        raise ConfigError(f"attack {name!r} needs an eps grid for threat model {attack.threat_model!r}, "
                          f"which protocol {protocol.name} does not define (it has: {valid})")
    return attack


def _randomized(protocol: Protocol, defense: Defense) -> bool:
    seen = set()
    while defense is not None and defense.name not in seen:
        if defense.randomized:
            return True
        seen.add(defense.name)
        defense = make_defense(protocol, defense.base) if defense.base else None
    return False


def check_compatible(protocol: Protocol, defense: Defense, attacks: list[Attack]) -> None:
    """Refuse, before any work, combinations whose result would mean nothing."""
    randomized = _randomized(protocol, defense)
    for attack in attacks:
        if randomized and attack.kind == "minimal" and not attack.needs_gradients:
            raise ConfigError(f"attack {attack.name!r} is decision-based: it assumes a deterministic model, but defense "
                              f"{defense.name!r} is randomised (its answers change between queries). Use gradient attacks, "
                              "which the harness runs with EOT on randomised defenses, or noise and transfer attacks.")
        if attack.needs_surrogate and "baseline" not in DEFENSES:
            raise ConfigError(f"attack {attack.name!r} needs the 'baseline' defense to train its surrogate")


def load_data(protocol: Protocol) -> tuple[ImageDataset, torch.Tensor, torch.Tensor]:
    """The data set and its deterministic train/validation split (indices into the training set)."""
    cfg = protocol["dataset"]
    options = {k: v for k, v in cfg.items() if k not in ("name", "val_fraction", "split_seed")}
    dataset = _create(DATASETS, "dataset", cfg["name"], options)
    n = len(dataset.train_y)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(int(cfg.get("split_seed", 0))))
    n_val = int(round(n * float(cfg.get("val_fraction", 0.0))))
    return dataset, order[n_val:].sort().values, order[:n_val].sort().values


def training_key(protocol: Protocol, defense: Defense, seed: int) -> str:
    return config_hash({"training": protocol.training_config(), "defense": defense.describe(), "seed": seed})


def checkpoint_folder(checkpoint_dir: Path, protocol: Protocol, defense: Defense, seed: int) -> Path:
    """Where a model's checkpoints live: keyed by everything its training depends on."""
    key = training_key(protocol, defense, seed)
    return Path(checkpoint_dir) / protocol.name / defense.name.replace(":", "--") / f"seed{seed}-{key[:12]}"


def obtain_model(protocol: Protocol, defense: Defense, data, seed: int, settings: Settings,
                 _chain: tuple[str, ...] = ()) -> tuple[nn.Module, dict[str, Any]]:
    """The defended pipeline for ``seed``: trained now, resumed, or reloaded from its checkpoint."""
    if defense.base is not None:
        chain = _chain + (defense.name,)
        if defense.base in chain:
            raise ConfigError(f"defense bases form a cycle: {' -> '.join(chain + (defense.base,))}; a base must end in a trained defense")
        base_model, info = obtain_model(protocol, make_defense(protocol, defense.base), data, seed, settings, chain)
        return defense.wrap(base_model), {**info, "base_defense": defense.base}
    dataset, train_idx, val_idx = data
    device = settings.resolved_device()
    ready = defense.pretrained(dataset, device)
    if ready is not None:
        model, source = ready
        info = {"name": defense.name, "parameters": sum(p.numel() for p in model.parameters()), "pretrained": source,
                "trained_now": False, "training": {"train_seconds": 0.0, "history": []}}
        return defense.wrap(model.to(device).eval()), info
    key = training_key(protocol, defense, seed)
    folder = checkpoint_folder(settings.checkpoint_dir, protocol, defense, seed)
    torch.manual_seed(seed)
    model = build_model(protocol["model"], dataset.channels, dataset.num_classes, dataset.channel_stats())
    defense.prepare(model)
    result: TrainResult | None = None if settings.force else load_trained(model, folder, device)
    trained_now = result is None
    if result is None:
        if settings.force:
            for stale in ("last.pt", "best.pt"):
                (folder / stale).unlink(missing_ok=True)
        ctx = TrainingContext(dataset, train_idx, device, seed, protocol.config, model)
        if settings.progress:
            print(f"training {defense.name} (seed {seed}) on {dataset.name}; checkpoints in {folder}")
        result = train(model, defense.objective(ctx), ctx, val_idx, protocol["training"], folder, settings.progress)
    elif settings.progress:
        print(f"reusing trained {defense.name} (seed {seed}) from {folder}")
    info = {
        "name": protocol["model"]["name"],
        "parameters": sum(p.numel() for p in model.parameters()),
        "training_key": key,
        "checkpoint": str(folder / "final.pt"),
        "trained_now": trained_now,
        "training": result.summary,
    }
    return defense.wrap(result.model), info


SURROGATE_SEED_OFFSET = 1000  # transfer surrogates are baselines of another seed, never the target itself


def build_record(protocol: Protocol, defense: Defense, seed: int, attack: Attack, dataset: ImageDataset,
                 model_info: dict[str, Any], outcome: AttackOutcome, device: torch.device,
                 extra_checks: list[dict[str, Any]], surrogate_info: dict[str, Any] | None) -> dict[str, Any]:
    bits = lambda mask: "".join("1" if v else "0" for v in mask.tolist())  # noqa: E731
    eps_key = lambda eps: f"{eps:g}"  # noqa: E731
    attack_info = {**attack.describe(), "eps": outcome.eps}
    if surrogate_info is not None:
        attack_info["surrogate"] = surrogate_info
    return {
        "schema": SCHEMA_VERSION,
        "kind": "attack",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "protocol": {"name": protocol.name, "version": protocol.version, "hash": protocol.hash, "source": protocol.source, "config": protocol.config},
        "defense": defense.describe(),
        "seed": seed,
        "attack": attack_info,
        "dataset": dataset.describe(),
        "model": model_info,
        "code": code_version(),
        "environment": environment(device),
        "timings": {"train_seconds": model_info["training"]["train_seconds"], "attack_seconds": outcome.seconds,
                    "compiled": outcome.compiled},
        "metrics": {
            "n_examples": outcome.n,
            "curve": outcome.curve,
            "clean_accuracy": outcome.clean_accuracy(),
            "robust_accuracy": {eps_key(e): a for e, a in outcome.robust_accuracy().items()},
            "independent_accuracy": {eps_key(e): a for e, a in zip(outcome.eps, outcome.independent_accuracy)},
            "rank": outcome.rank_metrics(),
            "minimal_perturbation": outcome.minimal_perturbation(dataset.test_x[0].numel()),
            "per_example": {"clean": bits(outcome.clean_correct), "robust": {eps_key(e): bits(c) for e, c in outcome.robust_correct.items()}},
        },
        "checks": outcome.checks + extra_checks,
    }


def write_model_summary(record_file: Path) -> dict[str, Any]:
    """Recompute the per-model worst case and cross-attack checks from every record beside ``record_file``."""
    records = [r for r in (read_record(p) for p in sorted(record_file.parent.glob("*.json"))) if r.get("kind") == "attack"]
    first = records[0]
    summary = {
        "schema": SCHEMA_VERSION,
        "kind": "model_summary",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "protocol": {"name": first["protocol"]["name"], "hash": first["protocol"]["hash"]},
        "defense": first["defense"],
        "seed": first["seed"],
        "attacks": sorted(r["attack"]["name"] for r in records),
        **model_summary(records),
    }
    write_json_atomic(summary_path(record_file), summary)
    return summary


def run(protocol: Protocol, defense_name: str, attack_names: list[str], seeds: list[int], settings: Settings) -> list[Path]:
    """Train (or reuse) and attack ``defense_name`` for each seed; returns the records written or reused."""
    defense = make_defense(protocol, defense_name)
    attacks = [make_attack(protocol, name) for name in attack_names]  # validate every name before any work
    check_compatible(protocol, defense, attacks)
    device = settings.resolved_device()
    paths: list[Path] = []
    data = None
    for seed in seeds:
        todo = []
        for attack in attacks:
            path = record_path(settings.results_dir, protocol.name, protocol.hash, defense.name, seed, attack.name)
            paths.append(path)
            if path.exists() and not settings.force:
                if settings.progress:
                    print(f"reusing record {path}")
            else:
                todo.append((attack, path))
        if not todo:
            continue
        data = data or load_data(protocol)
        dataset = data[0]
        model, model_info = obtain_model(protocol, defense, data, seed, settings)
        model.eval()
        n = min(int(protocol["evaluation"]["n_examples"]), len(dataset.test_y))
        batch_size = int(protocol["evaluation"]["batch_size"])
        x, y = to_float(dataset.test_x[:n], device), dataset.test_y[:n].to(device)
        pipeline_checks = model_checks(model, x, y, dataset.num_classes, batch_size, seed)
        surrogate, surrogate_info = None, None
        for attack, path in todo:
            if attack.needs_surrogate and surrogate is None:
                surrogate_seed = seed + SURROGATE_SEED_OFFSET
                surrogate, info = obtain_model(protocol, make_defense(protocol, "baseline"), data, surrogate_seed, settings)
                surrogate_info = {"defense": "baseline", "seed": surrogate_seed, "checkpoint": info["checkpoint"]}
            attack.surrogate = surrogate.eval() if attack.needs_surrogate else None
            eps_grid = list(protocol["threat_models"][attack.threat_model]["eps"])
            m = min(int(attack.params.get("n_examples") or n), n)
            t0 = time.perf_counter()
            outcome = evaluate_attack(model, attack, x[:m], y[:m], eps_grid, batch_size, seed, settings.progress,
                                      protocol["evaluation"].get("curve", "independent"), _randomized(protocol, defense),
                                      compile=settings.compile)
            record = build_record(protocol, defense, seed, attack, dataset, model_info, outcome, device, pipeline_checks,
                                  surrogate_info if attack.needs_surrogate else None)
            write_json_atomic(path, record)
            if settings.progress:
                accs = ", ".join(f"{k}: {v:.3f}" for k, v in record["metrics"]["robust_accuracy"].items())
                flags = [c["name"] for c in record["checks"] if c["status"] != "pass"]
                print(f"{defense.name} seed {seed} {attack.name}: clean {outcome.clean_accuracy():.3f} | robust @eps {accs} "
                      f"| {time.perf_counter() - t0:.1f}s | checks: {'FLAGGED ' + ', '.join(flags) if flags else 'all pass'}")
                print(f"wrote {path}")
        summary = write_model_summary(todo[0][1])
        if settings.progress:
            for threat, by_eps in summary["worst_case"].items():
                print(f"worst case over {len(summary['attacks'])} attack(s), {threat}: "
                      + ", ".join(f"{eps}: {v['accuracy']:.3f}" for eps, v in by_eps.items()))
            for c in summary["cross_attack_checks"]:
                print(f"check {c['name']}: {c['status']} ({c['detail']})")
    return paths
