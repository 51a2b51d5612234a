"""What a computation ran on, in words a reader can look up: CPU training and bfloat16 passes
give other results on another kind of CPU or thread count, so records name both."""

from __future__ import annotations

import platform
from functools import cache
from pathlib import Path

import torch


@cache
def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return cpu_model()


def compute_context(device: torch.device) -> dict[str, object]:
    """The torch build, device and thread count a model was trained with (recorded beside its weights)."""
    return {"torch": str(torch.__version__), "device": str(device), "device_name": str(device_name(device)),
            "torch_threads": torch.get_num_threads()}
