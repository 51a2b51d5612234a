"""Sweep jobs: self-contained, picklable units of work that any executor can run anywhere.

A job carries its resolved protocol (not the grid), absolute paths and the plugin modules to
import, so a fresh worker process, or a Ray worker on another machine sharing the
filesystem, runs it without the driver's state. ``run`` never raises for a failing job: a
:class:`~bench.errors.BenchError` becomes a failed :class:`JobResult` carrying its message,
and so does any other exception (with its traceback, as that is a harness bug), so one bad
job cannot stop the others.
"""

from __future__ import annotations

import sys
import time
import traceback
from abc import ABC, abstractmethod
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from bench.errors import BenchError
from bench.protocol import Protocol
from bench.records import record_path

if TYPE_CHECKING:  # bench.pipeline imports torch and every component: workers import it when they run a job
    from bench.pipeline import Settings


@dataclass(frozen=True)
class Target:
    """Where every job of a sweep reads and writes, and what it needs loaded first."""

    results_dir: Path
    checkpoint_dir: Path
    device: str | None = None
    plugins: tuple[str, ...] = ()
    plugin_path: str | None = None  # the driver's working directory: --plugin modules beside it import in workers too
    verbose: bool = False  # the runner's own progress output, from every worker

    def settings(self) -> Settings:
        from bench.pipeline import Settings, parse_device

        return Settings(self.results_dir, self.checkpoint_dir, parse_device(self.device), False, self.verbose)

    def load_plugins(self) -> None:
        from bench.registry import load_plugin_module

        if self.plugin_path and self.plugin_path not in sys.path:
            sys.path.insert(0, self.plugin_path)
        for module in self.plugins:
            load_plugin_module(module)


@dataclass(frozen=True)
class JobResult:
    label: str
    ok: bool
    seconds: float
    written: tuple[str, ...] = ()  # records this job wrote (not those it found)
    error: str = ""
    traceback: str = ""


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run with ``threads`` intra-op torch threads, restoring the previous count (serial runs share the process)."""
    if threads is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass(frozen=True)
class Job(ABC):
    protocol: Protocol
    defense: str
    seed: int
    target: Target

    @property
    @abstractmethod
    def label(self) -> str:
        """How progress lines name this job."""

    @abstractmethod
    def work(self) -> list[Path]:
        """Do the job; return the records it wrote."""

    def run(self) -> JobResult:
        t0 = time.perf_counter()
        try:
            self.target.load_plugins()
            written = self.work()
        except BenchError as exc:
            return JobResult(self.label, False, time.perf_counter() - t0, error=str(exc))
        except Exception as exc:  # a harness bug: keep the other jobs going, show where it happened
            return JobResult(self.label, False, time.perf_counter() - t0, error=f"internal error {type(exc).__name__}: {exc}",
                             traceback=traceback.format_exc())
        return JobResult(self.label, True, time.perf_counter() - t0, tuple(str(p) for p in written))


@dataclass(frozen=True)
class EvaluateJob(Job):
    """One (defense variant, seed): train or reuse its model once, then run every attack on it."""

    attacks: tuple[str, ...] = ()
    variant: str = ""  # the variant's label, e.g. pixel_sim[alpha=4.0]
    params_text: str = ""  # its swept hyperparameters, e.g. alpha=4.0 (empty without)

    @property
    def label(self) -> str:
        return f"{self.variant or self.defense} seed {self.seed}"

    def record_paths(self) -> list[Path]:
        return [record_path(self.target.results_dir, self.protocol.name, self.protocol.hash, self.defense, self.seed, attack)
                for attack in self.attacks]

    def pending_attacks(self) -> list[str]:
        """The attacks whose record does not exist yet: a cheap check, no model or data is touched."""
        return [attack for attack, path in zip(self.attacks, self.record_paths()) if not path.exists()]

    def work(self) -> list[Path]:
        from bench.runner import run

        existed = {path for path in self.record_paths() if path.exists()}
        paths = run(self.protocol, self.defense, list(self.attacks), [self.seed], self.target.settings())
        return [path for path in paths if path not in existed]


@dataclass(frozen=True)
class TrainJob(Job):
    """Train (or finish training) one model that several evaluate jobs share, before they start."""

    users: tuple[str, ...] = field(default=())  # labels of the jobs that need this model

    @property
    def label(self) -> str:
        return f"{self.defense} seed {self.seed} (model shared by {', '.join(self.users)})"

    def work(self) -> list[Path]:
        from bench.pipeline import load_data, make_defense, obtain_model

        obtain_model(self.protocol, make_defense(self.protocol, self.defense), load_data(self.protocol), self.seed,
                     self.target.settings())
        return []
