"""The ``torchvision:<arch>`` and ``timm:<arch>`` families on state-dict files written here, and the generic taps."""

from __future__ import annotations

import hashlib
import inspect

import pytest
import torch
import torchvision
from torch import nn

import bench.defenses.pretrained  # noqa: F401  (registers the families)
from bench.defenses.pretrained import find_taps
from bench.zoo.weights import read_state_dict
from bench.errors import CheckpointError, ConfigError, UnknownNameError
from bench.catalog import DEFENSES
from bench.pipeline import make_defense
from zoo_helpers import float_images, image_dataset, protocol, randomized

CPU = torch.device("cpu")


def load(family: str, arch: str, dataset, **params):
    defense = make_defense(protocol(**{family: params}), f"{family}:{arch}")
    return defense, defense.pretrained(dataset, CPU)


@pytest.fixture(scope="module")
def resnet18_file(tmp_path_factory):
    """A torchvision ResNet-18 (10 classes) with random weights, and its state dict saved with torch.save."""
    net = randomized(torchvision.models.resnet18(num_classes=10), seed=0)
    path = tmp_path_factory.mktemp("weights") / "resnet18.pt"
    torch.save(net.state_dict(), path)
    return path, net


def test_torchvision_round_trip(resnet18_file):
    path, net = resnet18_file
    dataset = image_dataset()
    defense, (model, source) = load("torchvision", "resnet18", dataset, checkpoint=str(path))
    x = float_images(dataset)
    with torch.no_grad():
        torch.testing.assert_close(model(x), net(x), rtol=0, atol=1e-5)
    assert torch.equal(model.net.fc.weight, net.fc.weight)  # the random weights, not a fresh initialisation
    assert not model.training
    assert model.taps == {"first_conv": "net.conv1", "last_block": "net.layer4"}
    assert source["source"] == "torchvision" and source["num_classes"] == 10 and source["normalization"] is None
    assert source["files"] == [{"path": str(path.resolve()), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}]
    assert defense.name == "torchvision:resnet18"
    assert set(defense.params) == set(inspect.signature(DEFENSES.get("torchvision").factory).parameters)


@pytest.mark.parametrize("layout", ["state_dict", "under_model_key", "data_parallel"])
def test_state_dict_layouts(tmp_path, layout):
    state = {"conv.weight": torch.randn(2, 3, 3, 3), "conv.bias": torch.randn(2)}
    saved = {"state_dict": {"state_dict": state, "epoch": 3}, "under_model_key": {"model": state, "optimizer": {}},
             "data_parallel": {f"module.{k}": v for k, v in state.items()}}[layout]
    torch.save(saved, tmp_path / "w.pt")
    read = read_state_dict(tmp_path / "w.pt")
    assert read.keys() == state.keys() and all(torch.equal(read[k], state[k]) for k in state)


def test_normalisation_is_inside_the_model(resnet18_file):
    path, net = resnet18_file
    mean, std = [0.4, 0.5, 0.6], [0.2, 0.25, 0.3]
    dataset = image_dataset()
    _, (model, source) = load("torchvision", "resnet18", dataset, checkpoint=str(path), mean=mean, std=std)
    x = float_images(dataset)
    normalized = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(model(x), net(normalized), rtol=0, atol=1e-5)
    assert source["normalization"] == {"mean": mean, "std": std}


def test_checkpoint_problems_are_explained(tmp_path, resnet18_file):
    dataset = image_dataset()
    with pytest.raises(ConfigError, match="defenses.torchvision.checkpoint=FILE"):
        make_defense(protocol(), "torchvision:resnet18")
    with pytest.raises(CheckpointError, match=str(tmp_path / "absent.pt")):
        make_defense(protocol(torchvision={"checkpoint": str(tmp_path / "absent.pt")}), "torchvision:resnet18")
    state = resnet18_file[1].state_dict()
    torch.save({k: v for k, v in state.items() if not k.startswith("fc.")}, tmp_path / "headless.pt")
    with pytest.raises(CheckpointError, match="(?s)does not fit torchvision's resnet18 with 10 classes.*fc.weight"):
        load("torchvision", "resnet18", dataset, checkpoint=str(tmp_path / "headless.pt"))
    torch.save(resnet18_file[1], tmp_path / "module.pt")  # a pickled module, not a state dict
    with pytest.raises(CheckpointError, match="weights_only=True"):
        load("torchvision", "resnet18", dataset, checkpoint=str(tmp_path / "module.pt"))
    torch.save({"epoch": 3}, tmp_path / "no_weights.pt")
    with pytest.raises(CheckpointError, match="expected a state dict"):
        load("torchvision", "resnet18", dataset, checkpoint=str(tmp_path / "no_weights.pt"))


def test_data_the_network_cannot_take_is_a_config_error(tmp_path, resnet18_file):
    path, net = resnet18_file
    with pytest.raises(ConfigError, match=r"cannot classify the protocol's data set gray \(1x32x32 images\)"):
        load("torchvision", "resnet18", image_dataset("gray", (1, 32, 32)), checkpoint=str(path))
    state = {**net.state_dict(), "fc.weight": torch.randn(100, 512), "fc.bias": torch.randn(100)}
    torch.save(state, tmp_path / "w100.pt")
    with pytest.raises(ConfigError, match=r"outputs of shape \(2, 100\).*10 classes"):
        load("torchvision", "resnet18", image_dataset(), checkpoint=str(tmp_path / "w100.pt"), num_classes=100)


def test_bad_parameters_and_names_are_rejected(resnet18_file):
    ok = {"checkpoint": str(resnet18_file[0])}
    with pytest.raises(UnknownNameError, match="did you mean resnet18"):
        make_defense(protocol(torchvision=ok), "torchvision:resnet19")
    with pytest.raises(ConfigError, match="both 'mean' and 'std'"):
        make_defense(protocol(torchvision={**ok, "mean": [0.5]}), "torchvision:resnet18")
    with pytest.raises(ConfigError, match="'std' must be a list of finite numbers > 0"):
        make_defense(protocol(torchvision={**ok, "mean": [0.5], "std": [0.0]}), "torchvision:resnet18")
    defense = make_defense(protocol(torchvision={**ok, "mean": [0.5, 0.5], "std": [0.2, 0.2]}), "torchvision:resnet18")
    with pytest.raises(ConfigError, match="'mean' has 2 values; the data set has 3 channel"):
        defense.pretrained(image_dataset(), CPU)


def test_timm_round_trip_with_the_data_sets_channels(tmp_path):
    timm = pytest.importorskip("timm")
    net = randomized(timm.create_model("test_efficientnet", pretrained=False, num_classes=10, in_chans=1), seed=0)
    torch.save(net.state_dict(), tmp_path / "w.pt")
    dataset = image_dataset("digits", (1, 28, 28))
    defense, (model, source) = load("timm", "test_efficientnet", dataset, checkpoint=str(tmp_path / "w.pt"))
    x = float_images(dataset)
    with torch.no_grad():
        torch.testing.assert_close(model(x), net(x), rtol=0, atol=1e-5)
    assert source["source"] == "timm" and defense.name == "timm:test_efficientnet"
    assert set(model.taps) == {"first_conv", "last_block"}
    with pytest.raises(UnknownNameError, match="unknown timm model"):
        make_defense(protocol(timm={"checkpoint": str(tmp_path / "w.pt")}), "timm:no_such_model")


class Stage(nn.Sequential):
    def __init__(self, c_in: int, c_out: int):
        super().__init__(nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(), nn.Conv2d(c_out, c_out, 3, padding=1), nn.ReLU())


class Body(nn.Module):
    """Registers its stages in reverse order: the taps must follow the forward pass, not registration."""

    def __init__(self):
        super().__init__()
        self.late = Stage(8, 8)
        self.early = Stage(3, 8)

    def forward(self, x):
        return self.late(self.early(x))


def test_taps_follow_the_forward_pass_through_wrappers():
    net = nn.Sequential(Body(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))
    order: list[str] = []
    hooks = [m.register_forward_hook(lambda mod, a, o, name=name: order.append(name))
             for name, m in net.named_modules() if isinstance(m, nn.Conv2d)]
    net(torch.zeros(1, 3, 8, 8))
    for hook in hooks:
        hook.remove()
    assert find_taps(net, order) == {"first_conv": "0.early.0", "last_block": "0.late"}
    assert find_taps(nn.Linear(3, 2), []) == {}
