"""Helpers of the sweep tests: tiny-model overrides, the reference grid, grid files, record
comparison, and jobs for executor tests (here, so that spawned workers can import them)."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

import yaml

from bench.protocol import load_protocol
from bench.records.compare import comparable, comparable_records  # noqa: F401 (used by the tests)
from bench.sweep.jobs import Job, Target

# The quick protocol made tiny: one epoch of a width-8 CNN, 32 test images, 2 PGD steps, one targeted run.
TINY = ["training.epochs=1", "evaluation.n_examples=32", "attacks.pgd.steps=2", "attacks.pgd.targets=1", "model.width=8"]
# 2 defenses (pixel_sim through the hyperparameter form) x 2 seeds x 2 attacks = 4 jobs, 8 records.
GRID = {"protocol": "quick", "overrides": TINY, "defenses": {"baseline": None, "pixel_sim": {"n_images": [100]}},
        "seeds": [0, 1], "attacks": ["fgsm", "pgd"]}


def write_grid(path: Path, **fields: Any) -> Path:
    path.write_text(yaml.safe_dump(fields, sort_keys=False))
    return path


def records(results: Path, checkpoints: Path) -> dict[str, Any]:
    """Every JSON file under ``results`` (relative path -> comparable content)."""
    return comparable_records(results, checkpoints)


def mtimes(*folders: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for folder in folders for p in folder.rglob("*") if p.is_file()}


def bench(*argv: str) -> tuple[int, str, str]:
    """``bench.cli.main`` in this process; returns (status, stdout, stderr)."""
    from bench.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(list(argv))
    return status, out.getvalue(), err.getvalue()


class ExitJob(Job):
    """Kills its worker process, as the kernel's out-of-memory killer would."""

    @property
    def label(self) -> str:
        return f"exit {self.seed}"

    def work(self):
        import os

        os._exit(3)


class NoopJob(Job):
    @property
    def label(self) -> str:
        return f"noop {self.seed}"

    def work(self):
        return []


def exit_and_noop_jobs(tmp: Path) -> tuple[Job, Job]:
    """Jobs for executor tests that need neither data nor a model (importable by spawned workers)."""
    protocol, target = load_protocol("quick"), Target(tmp / "r", tmp / "c")
    return ExitJob(protocol, "none", 0, target), NoopJob(protocol, "none", 1, target)
