"""The ``robustbench:<name>`` family on checkpoints written here in RobustBench's local layout, with no network."""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import json

import pytest
import torch

import bench.defenses.pretrained  # noqa: F401  (registers the families)
from bench.errors import CheckpointError, ConfigError, UnknownNameError
from bench.catalog import DEFENSES
from bench.pipeline import make_defense
from zoo_helpers import RB_MODEL, float_images, image_dataset, protocol, robustbench_checkpoint

CPU = torch.device("cpu")
pytestmark = pytest.mark.skipif(importlib.util.find_spec("robustbench") is None, reason="robustbench is not installed")


@pytest.fixture(autouse=True)
def no_download(monkeypatch):
    """Any download RobustBench might start fails the test."""
    from bench.zoo import import_robustbench

    import_robustbench()
    import robustbench.utils

    def refuse(*args, **kwargs):
        raise AssertionError(f"RobustBench tried to download {args}")

    monkeypatch.setattr(robustbench.utils, "download_gdrive_new", refuse)
    monkeypatch.setattr(robustbench.utils, "download_gdrive", refuse)


def load(model_dir, dataset, name: str = RB_MODEL, **params):
    defense = make_defense(protocol(robustbench={"model_dir": str(model_dir), **params}), f"robustbench:{name}")
    return defense, defense.pretrained(dataset, CPU)


def test_loads_the_local_layout_and_matches_the_architecture_with_those_weights(tmp_path):
    reference = robustbench_checkpoint(tmp_path)
    dataset = image_dataset()
    defense, (model, source) = load(tmp_path, dataset)
    x = float_images(dataset)
    with torch.no_grad():
        logits, expected = model(x), reference(x)
    assert logits.shape == (len(x), 10)
    torch.testing.assert_close(logits, expected, rtol=0, atol=1e-5)
    assert torch.equal(model.net.linear.weight, reference.linear.weight)  # the saved weights, not a fresh initialisation
    assert not model.training
    assert torch.equal(model.normalize.mean.flatten(), torch.zeros(3)) and torch.equal(model.normalize.std.flatten(), torch.ones(3))
    assert model.taps == {"first_conv": "net.conv1", "last_block": "net.layer4"}
    assert model.get_submodule("net.conv1") is model.net.conv1
    path = tmp_path / "cifar10" / "Linf" / f"{RB_MODEL}.pt"
    assert source["files"] == [{"path": str(path.resolve()), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}]
    assert {k: source[k] for k in ("source", "model_name", "dataset", "threat_model")} == {
        "source": "robustbench", "model_name": RB_MODEL, "dataset": "cifar10", "threat_model": "Linf"}
    assert defense.name == f"robustbench:{RB_MODEL}"
    json.dumps(source)  # both go into every record
    json.dumps(defense.describe())


def test_every_factory_parameter_is_recorded_and_names_are_matched_case_insensitively(tmp_path):
    entry = DEFENSES.get("robustbench")
    defense = entry.factory(RB_MODEL, model_dir=str(tmp_path), threat_model="linf")
    assert set(defense.params) == set(inspect.signature(entry.factory).parameters)
    assert defense.params["threat_model"] == "Linf" and defense.params["dataset"] == "cifar10"


def test_missing_checkpoint_names_the_full_path_and_how_to_get_it(tmp_path):
    model_dir = tmp_path / "zoo"
    with pytest.raises(CheckpointError) as err:
        load(model_dir, image_dataset())
    message = str(err.value)
    assert str((model_dir / "cifar10" / "Linf" / f"{RB_MODEL}.pt").resolve()) in message
    assert "never downloads" in message and "defenses.robustbench.model_dir" in message
    assert f"load_model({RB_MODEL!r}, model_dir='models', dataset='cifar10', threat_model='Linf')" in message


def test_ensemble_members_are_each_expected_in_their_file(tmp_path):
    with pytest.raises(CheckpointError) as err:
        load(tmp_path, image_dataset(), name="Chen2020Adversarial")
    for i in range(3):
        assert str(tmp_path / "cifar10" / "Linf" / f"Chen2020Adversarial.pt_m{i}.pt") in str(err.value)


@pytest.mark.parametrize("shape, classes, said", [((1, 32, 32), 10, "1x32x32 images and 10 classes"),
                                                  ((3, 32, 32), 100, "3x32x32 images and 100 classes")])
def test_data_set_mismatch_is_explained(tmp_path, shape, classes, said):
    with pytest.raises(ConfigError) as err:
        load(tmp_path, image_dataset("other", shape, classes))
    assert "cifar10 (3x32x32 images, 10 classes)" in str(err.value) and said in str(err.value)


def test_unreadable_checkpoint_is_a_checkpoint_error(tmp_path):
    path = tmp_path / "cifar10" / "Linf" / f"{RB_MODEL}.pt"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="RobustBench could not load"):
        load(tmp_path, image_dataset())


def test_unknown_names_and_unloadable_entries_fail_at_construction(tmp_path):
    with pytest.raises(UnknownNameError, match=f"did you mean {RB_MODEL}"):
        make_defense(protocol(), "robustbench:Sehwag2021Proxy_R19")
    with pytest.raises(ConfigError, match="no cifar100 L2 leaderboard"):
        make_defense(protocol(robustbench={"dataset": "cifar100", "threat_model": "L2"}), f"robustbench:{RB_MODEL}")
    with pytest.raises(ConfigError, match="threat_model"):
        make_defense(protocol(robustbench={"threat_model": "l1"}), f"robustbench:{RB_MODEL}")
    with pytest.raises(ConfigError, match="through timm from Hugging Face"):
        make_defense(protocol(), "robustbench:Debenedetti2022Light_XCiT-S12")
