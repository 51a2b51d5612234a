"""``bench run --defense robustbench:<name>`` end to end, on a CIFAR-10 copy and a checkpoint written here."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import yaml

import bench.defenses.pretrained  # noqa: F401  (registers the families)
from bench.cli import main
from zoo_helpers import RB_MODEL, robustbench_checkpoint

pytestmark = pytest.mark.skipif(importlib.util.find_spec("robustbench") is None, reason="robustbench is not installed")

PER_BATCH = 20


def write_cifar10(root: Path) -> None:
    """The ``cifar-10-batches-py`` folder as distributed (Python-2 style pickles with byte keys), 20 images per file."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (PER_BATCH, 3072), dtype=np.uint8),
                 b"labels": rng.integers(0, 10, PER_BATCH).tolist()}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))


def write_protocol(path: Path, data_root: Path) -> None:
    path.write_text(yaml.safe_dump({
        "name": "zoo_cifar10",
        "version": 1,
        "description": "A tiny CIFAR-10 copy for published CIFAR-10 models.",
        "dataset": {"name": "cifar10", "root": str(data_root), "val_fraction": 0.0, "split_seed": 0},
        "model": {"name": "resnet18", "normalization": "none"},
        "training": {"epochs": 1, "batch_size": 8, "lr": 0.01},
        "evaluation": {"n_examples": 8, "batch_size": 8},
        "threat_models": {"linf": {"eps": [0.0, 0.03]}},
        "attacks": {"fgsm": {}},
        "seeds": [0],
        "defenses": {"robustbench": {"model_dir": "models"}},
    }))


def test_run_attacks_a_robustbench_model_and_records_where_it_came_from(tmp_path):
    write_cifar10(tmp_path / "data")
    write_protocol(tmp_path / "zoo.yaml", tmp_path / "data")
    robustbench_checkpoint(tmp_path / "zoo")
    checkpoint = tmp_path / "zoo" / "cifar10" / "Linf" / f"{RB_MODEL}.pt"
    args = ["run", "--defense", f"robustbench:{RB_MODEL}", "--attack", "fgsm", "--protocol", str(tmp_path / "zoo.yaml"),
            "--set", f"defenses.robustbench.model_dir={tmp_path / 'zoo'}", "--results", str(tmp_path / "results"),
            "--checkpoints", str(tmp_path / "checkpoints"), "--device", "cpu", "--quiet"]
    assert main(args) == 0
    (path,) = (tmp_path / "results").glob(f"zoo_cifar10-*/robustbench--{RB_MODEL}/seed0/fgsm.json")
    record = json.loads(path.read_text())
    assert record["defense"]["name"] == f"robustbench:{RB_MODEL}"
    assert record["defense"]["params"]["model_dir"] == str(tmp_path / "zoo")
    model = record["model"]
    assert model["trained_now"] is False and model["training"]["train_seconds"] == 0.0
    assert model["pretrained"]["files"] == [{"path": str(checkpoint.resolve()),
                                             "sha256": hashlib.sha256(checkpoint.read_bytes()).hexdigest()}]
    assert model["parameters"] == 11173962  # robustbench's CIFAR ResNet-18
    assert record["metrics"]["n_examples"] == 8 and set(record["metrics"]["robust_accuracy"]) == {"0", "0.03"}
    assert record["dataset"]["source"] == str((tmp_path / "data" / "cifar-10-batches-py").resolve())
    assert not (tmp_path / "checkpoints").exists()  # nothing was trained
