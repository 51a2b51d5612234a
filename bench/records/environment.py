"""What produced a result: code version, library versions, hardware."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import torch

from bench.hardware import device_name

_PACKAGES = ("torch", "torchvision", "numpy", "foolbox", "pandas", "mlxtend")
_DISTRIBUTION = "simbench-robustness"


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def code_version() -> dict[str, Any]:
    """Package version, plus the git commit and dirty flag when run from a checkout. A copy of the
    code without its git folder (shipped to a cluster or a GPU machine) may name its commit in
    ``BENCH_GIT_COMMIT``; the dirty flag is then unknown (None)."""
    root = Path(__file__).resolve().parents[2]
    info: dict[str, Any] = {"package": _DISTRIBUTION, "version": _version(_DISTRIBUTION)}
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        if commit.returncode == 0:
            status = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "bench", "regularizers"],
                                    capture_output=True, text=True, timeout=5)
            info["git_commit"] = commit.stdout.strip()
            info["git_dirty"] = bool(status.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    if "git_commit" not in info and os.environ.get("BENCH_GIT_COMMIT"):
        info["git_commit"], info["git_dirty"] = os.environ["BENCH_GIT_COMMIT"], None
    return info


def environment(device: torch.device) -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "libraries": {name: _version(name) for name in _PACKAGES},
        "device": str(device),
        "device_name": device_name(device),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.version.cuda,
    }
