"""Executors: where sweep jobs run. One small interface, so another engine is one class away.

``Executor.map(jobs)`` runs every job and yields its :class:`JobResult` as soon as it
finishes (completion order, for live progress). A job never raises (see ``jobs``); an
executor turns the failures that happen around a job (a worker process killed, a Ray task
lost) into failed results too, so the sweep always gets one result per job.

Register another engine with ``@register_executor("name")`` on an :class:`Executor`
subclass; grid files and ``--executor`` then accept its name.
"""

from __future__ import annotations

import importlib.util
import logging
import multiprocessing
import os
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, ClassVar

from bench.errors import BenchError, ConfigError
from bench.sweep.jobs import Job, JobResult, torch_threads

EXECUTORS: dict[str, type[Executor]] = {}


def register_executor(name: str) -> Callable[[type[Executor]], type[Executor]]:
    """Class decorator: make an executor available under ``name`` (grid files, ``--executor``)."""

    def decorator(cls: type[Executor]) -> type[Executor]:
        cls.name = name
        EXECUTORS[name] = cls
        return cls

    return decorator


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, e.g. a container's or a batch slot's share)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def execute(job: Job, threads: int | None) -> JobResult:
    """What every executor runs for one job, in whatever process it lands."""
    with torch_threads(threads):
        return job.run()


def _lost(job: Job, what: str, exc: BaseException) -> JobResult:
    return JobResult(job.label, False, 0.0, error=f"{what}: {type(exc).__name__}: {exc}")


class Executor(ABC):
    """Runs jobs with ``workers`` at a time and ``threads`` torch threads each (None: the executor decides)."""

    name: ClassVar[str]

    def __init__(self, workers: int | None = None, threads: int | None = None):
        for option, value in (("workers", workers), ("threads", threads)):
            if value is not None and value < 1:
                raise ConfigError(f"{option} must be a positive integer, got {value}")
        self.workers = workers
        self.threads = threads

    @abstractmethod
    def map(self, jobs: Sequence[Job]) -> Iterator[JobResult]:
        """Run ``jobs``; yield one result per job as each finishes."""

    def describe(self, n_jobs: int) -> str:
        """One line for the progress output: where ``n_jobs`` jobs would run."""
        return self.name

    def close(self) -> None:
        """Release what the executor started (worker processes, a cluster)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


@register_executor("serial")
class SerialExecutor(Executor):
    """In this process, one job after another: for debugging (breakpoints, --debug tracebacks)."""

    def map(self, jobs: Sequence[Job]) -> Iterator[JobResult]:
        for job in jobs:
            yield execute(job, self.threads)

    def describe(self, n_jobs: int) -> str:
        threads = f"{self.threads} torch thread(s)" if self.threads else "this process's torch threads"
        return f"serial (in this process, {threads})"


@register_executor("local")
class LocalExecutor(Executor):
    """A pool of fresh worker processes on this machine (the default).

    Processes are started with ``spawn``: a forked child would inherit the parent's torch
    thread pools and locks, which can deadlock. Each job gets cores // workers torch
    threads, so the workers together never oversubscribe the cores (on a shared 2-core
    machine two threads per process made training several times slower).
    """

    def __init__(self, workers: int | None = None, threads: int | None = None):
        super().__init__(workers, threads)
        self._pool: ProcessPoolExecutor | None = None

    def _shape(self, n_jobs: int) -> tuple[int, int]:
        workers = max(1, min(self.workers or usable_cores(), n_jobs))
        return workers, self.threads or max(1, usable_cores() // workers)

    def describe(self, n_jobs: int) -> str:
        workers, threads = self._shape(n_jobs)
        return f"local ({workers} worker process(es) x {threads} torch thread(s))"

    def map(self, jobs: Sequence[Job]) -> Iterator[JobResult]:
        if not jobs:
            return
        _, threads = self._shape(len(jobs))
        if self._pool is None:  # kept for later map calls: starting a worker costs seconds of imports
            self._pool = ProcessPoolExecutor(max_workers=self.workers or usable_cores(),
                                             mp_context=multiprocessing.get_context("spawn"))
        futures: dict[Future, Job] = {}
        broken = False
        try:
            futures = {self._pool.submit(execute, job, threads): job for job in jobs}
            for future in as_completed(futures):
                try:
                    result = future.result()
                except BrokenProcessPool as exc:
                    # A worker died (killed, out of memory, a crash in native code). The pool then fails
                    # every job it had not finished, as it cannot tell which one killed the worker.
                    broken = True
                    result = _lost(futures[future], "worker process died, taking this unfinished job with it", exc)
                except Exception as exc:  # e.g. the job or its result could not be pickled
                    result = _lost(futures[future], "worker could not run the job", exc)
                yield result
        finally:
            for future in futures:
                future.cancel()
            if broken:  # a broken pool refuses new work: the next map starts a fresh one
                self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


@register_executor("ray")
class RayExecutor(Executor):
    """Ray tasks, on a local Ray instance or a cluster.

    Connects to the Ray instance this process already started (``ray.init`` before the
    sweep), else to the cluster named by ``RAY_ADDRESS``, else starts a local one (and stops
    it again when done). Each job is one task reserving ``threads`` CPUs, with at most
    ``workers`` in flight (default: the cluster's CPUs // threads). On a cluster, every node
    needs this package installed and the results and checkpoint folders on a shared filesystem.
    """

    def __init__(self, workers: int | None = None, threads: int | None = None):
        super().__init__(workers, threads)
        if importlib.util.find_spec("ray") is None:
            raise BenchError("executor 'ray' needs the ray package: pip install ray")
        self._started = False

    def _connect(self):
        import ray

        if not ray.is_initialized():
            ray.init(address=os.environ.get("RAY_ADDRESS") or None, include_dashboard=False, logging_level=logging.WARNING)
            self._started = True
        return ray

    def _shape(self, n_jobs: int, cpus: int) -> tuple[int, int]:
        threads = min(self.threads or max(1, cpus // max(1, min(self.workers or cpus, n_jobs))), cpus)
        return max(1, min(self.workers or cpus // threads, n_jobs)), threads

    def describe(self, n_jobs: int) -> str:
        ray = self._connect()
        cpus = int(ray.cluster_resources().get("CPU", 1))
        workers, threads = self._shape(n_jobs, cpus)
        return f"ray ({cpus} CPU(s) in the cluster; {workers} task(s) at a time x {threads} torch thread(s))"

    def map(self, jobs: Sequence[Job]) -> Iterator[JobResult]:
        if not jobs:
            return
        ray = self._connect()
        workers, threads = self._shape(len(jobs), int(ray.cluster_resources().get("CPU", 1)))
        task = ray.remote(num_cpus=threads, max_retries=0)(execute)
        queue = list(jobs)
        in_flight: dict[Any, Job] = {}
        try:
            while queue or in_flight:
                while queue and len(in_flight) < workers:
                    job = queue.pop(0)
                    in_flight[task.remote(job, threads)] = job
                (ref,), _ = ray.wait(list(in_flight), num_returns=1)
                job = in_flight.pop(ref)
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayError as exc:  # the task or its worker was lost
                    result = _lost(job, "ray task failed", exc)
                yield result
        finally:
            for ref in in_flight:
                ray.cancel(ref, force=True)

    def close(self) -> None:
        if self._started:
            import ray

            ray.shutdown()
            self._started = False


def make_executor(name: str, workers: int | None = None, threads: int | None = None) -> Executor:
    if name not in EXECUTORS:
        raise ConfigError(f"unknown executor {name!r}; valid executors: {', '.join(EXECUTORS)}")
    return EXECUTORS[name](workers, threads)
