"""Shared set-up of the benchmarks: a small CNN trained briefly on the embedded digits."""

from __future__ import annotations

import platform
import time

import torch

from bench.data.embedded import mnist_digits
from bench.defenses.base import CrossEntropy, TrainingContext
from bench.pipeline import build_model
from bench.protocol import TrainingSpec
from bench.training import train


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else (platform.processor() or platform.machine())


def trained_small_cnn(device: torch.device, epochs: int = 2, workdir=None):
    """(model in eval mode, test images float [N,1,28,28], labels): the model the quick protocol trains."""
    import tempfile
    from pathlib import Path

    data = mnist_digits()
    torch.manual_seed(0)
    model = build_model({"name": "small_cnn"}, 1, 10, data.channel_stats())
    idx = torch.randperm(len(data.train_y), generator=torch.Generator().manual_seed(0))
    ctx = TrainingContext(data, idx[400:], device, 0)
    cfg = TrainingSpec(epochs=epochs, batch_size=64, lr=0.05, momentum=0.9, schedule="cosine")
    folder = Path(workdir or tempfile.mkdtemp(prefix="bench-benchmark-"))
    model = train(model, CrossEntropy(), ctx, idx[:400], cfg, folder, progress=False).model.eval()
    return model, data.test_x.float().div(255).to(device), data.test_y.to(device)


def timed(fn, repeats: int = 3) -> float:
    """Median wall time of ``fn()`` over ``repeats`` runs (after one warm-up)."""
    fn()
    times = []
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def attacked_model_and_images(protocol_name: str, defense: str, seed: int, n: int, checkpoints):
    """(protocol, the defense's attack view in eval mode, its first ``n`` test images float in [0, 1], labels, device):
    the model trained, resumed or reloaded from ``checkpoints`` exactly as ``bench run`` does."""
    from bench.data.base import to_float
    from bench.defenses.base import attack_view
    from bench.pipeline import Settings, load_data, make_defense, obtain_model
    from bench.protocol import load_protocol

    protocol = load_protocol(protocol_name)
    data = load_data(protocol)
    settings = Settings(checkpoint_dir=checkpoints, progress=False, precision="fp32")
    device = settings.resolved_device()
    ready = obtain_model(protocol, make_defense(protocol, defense), data, seed, settings)
    x = to_float(data.dataset.test_x[:n], device)
    return protocol, attack_view(ready.pipeline).eval(), x, data.dataset.test_y[:n].to(device), device
