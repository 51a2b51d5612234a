"""Data sets, protocols and checkpoints made in the tests, in the exact formats the zoo reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from bench.data.base import ImageDataset
from bench.protocol import Protocol, load_protocol, parse

RB_MODEL = "Sehwag2021Proxy_R18"  # cifar10 Linf entry: robustbench's ResNet18, one plain .pt file


def image_dataset(name: str = "cifar10", shape: tuple[int, int, int] = (3, 32, 32), classes: int = 10, n: int = 8,
                  seed: int = 0) -> ImageDataset:
    """Random uint8 images of ``shape`` with labels 0..classes-1."""
    g = torch.Generator().manual_seed(seed)
    images = lambda: torch.randint(0, 256, (n, *shape), generator=g, dtype=torch.uint8)  # noqa: E731
    labels = lambda: torch.randint(0, classes, (n,), generator=g)  # noqa: E731
    return ImageDataset(name, images(), labels(), images(), labels(), classes, "made in the test")


def protocol(**defenses: dict[str, Any]) -> Protocol:
    """The quick protocol with only these ``defenses`` sections (what ``make_defense`` reads)."""
    return parse({**load_protocol("quick").raw_config(), "defenses": defenses}, "test")


def randomized(net: nn.Module, seed: int) -> nn.Module:
    """``net`` with seeded random weights and batch-norm statistics, so that loading them is visible in the outputs.

    Weights are scaled by 1/sqrt(fan-in) and variances lie in [0.5, 1.5], so activations stay of order one.
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in net.state_dict().values():
            if tensor.is_floating_point():
                scale = tensor[0].numel() ** -0.5 if tensor.dim() > 1 else 0.1
                tensor.copy_(torch.randn(tensor.shape, generator=g) * scale)
        for module in net.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.running_var.copy_(torch.rand(module.running_var.shape, generator=g) + 0.5)
                module.weight.add_(1.0)
    return net.eval()


def robustbench_checkpoint(model_dir: Path, seed: int = 0) -> nn.Module:
    """Write RB_MODEL's weights where and as RobustBench keeps them; the network they belong to.

    ``{model_dir}/cifar10/Linf/<name>.pt`` holding ``{"state_dict": ...}`` with ``module.`` before
    every key, as DataParallel training leaves it and ``robustbench.utils.load_model`` strips it.
    """
    from bench.zoo import import_robustbench

    import_robustbench()
    from robustbench.model_zoo import model_dicts
    from robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel

    entry = model_dicts[BenchmarkDataset.cifar_10][ThreatModel.Linf][RB_MODEL]
    net = randomized(entry["model"](), seed)
    path = model_dir / "cifar10" / "Linf" / f"{RB_MODEL}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": {f"module.{k}": v for k, v in net.state_dict().items()}}, path)
    return net


def float_images(dataset: ImageDataset) -> torch.Tensor:
    return dataset.test_x.float() / 255
