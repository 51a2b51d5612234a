"""Planning and running a sweep: jobs, shared models first, progress, the summary table."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.errors import BenchError
from bench.protocol import Protocol
from bench.sweep.executors import Executor
from bench.sweep.grid import Grid
from bench.sweep.jobs import EvaluateJob, JobResult, Target, TrainJob


@dataclass
class Plan:
    jobs: list[EvaluateJob]  # every (variant, seed) of the grid, seed by seed
    todo: list[EvaluateJob]  # those with at least one missing record
    shared: list[TrainJob]  # unfinished models that more than one job in ``todo`` would train
    needs: dict[str, list[str]]  # job label -> labels of the shared models it waits for


@dataclass
class SweepReport:
    total: int
    skipped: list[str] = field(default_factory=list)  # jobs whose records all existed
    results: list[JobResult] = field(default_factory=list)  # one per job that was run (or could not be)
    records: list[Path] = field(default_factory=list)  # every record of the grid that exists now
    table: str = ""  # Markdown summary of those records

    @property
    def failed(self) -> list[JobResult]:
        return [r for r in self.results if not r.ok]

    def failure_summary(self) -> str:
        lines = [f"{len(self.failed)} of {self.total} sweep job(s) failed (rerun the same command to retry them; "
                 "finished records and checkpoints are kept):"]
        return "\n".join(lines + [f"  {r.label}: {r.error.splitlines()[0] if r.error else 'failed'}" for r in self.failed])


def expand(grid: Grid, target: Target) -> list[EvaluateJob]:
    """One job per (defense variant, seed), running all the grid's attacks on one model; seed by
    seed (every variant's first seed before any second), so a sweep stopped part way has every
    variant at least once rather than some with all their seeds and others with none."""
    return [EvaluateJob(v.protocol, v.defense, seed, target, grid.attacks, v.label, v.params_text)
            for seed in grid.seeds for v in grid.variants]


def _trained_models(job: EvaluateJob) -> list[TrainJob]:
    """The models ``job`` trains unless they exist (see ``bench.pipeline.trained_models``)."""
    from bench.pipeline import make_attack, trained_models

    surrogate = any(make_attack(job.protocol, attack).needs_surrogate for attack in job.pending_attacks())
    return [TrainJob(job.protocol, name, seed, job.target) for name, seed in trained_models(job.protocol, job.defense, job.seed, surrogate)]


def plan(grid: Grid, target: Target) -> Plan:
    """Which jobs still have work, and which models several of them would train at once.

    Two jobs training the same checkpoint folder concurrently would race on its files
    (``best.pt`` from one run, ``final.pt`` from the other). Such shared models (the base
    model of input transformations, transfer surrogates) are trained first, each by one
    train job; the evaluate jobs then find them finished and only load them.
    """
    from bench.pipeline import checkpoint_folder, make_defense

    jobs = expand(grid, target)
    todo = [job for job in jobs if job.pending_attacks()]
    users: dict[Path, list[tuple[EvaluateJob, TrainJob]]] = defaultdict(list)
    for job in todo:
        for model in _trained_models(job):
            folder = checkpoint_folder(target.checkpoint_dir, model.protocol, make_defense(model.protocol, model.defense), model.seed)
            users[folder].append((job, model))
    shared, needs = [], defaultdict(list)
    for folder, pairs in users.items():
        if len(pairs) < 2 or (folder / "final.pt").exists():
            continue
        first = pairs[0][1]
        model = TrainJob(first.protocol, first.defense, first.seed, target, tuple(job.label for job, _ in pairs))
        shared.append(model)
        for job, _ in pairs:
            needs[job.label].append(model.label)
    return Plan(jobs, todo, shared, dict(needs))


def _prefetch_downloads(protocols: list[Protocol], echo: Callable[[str], None]) -> None:
    """Download data sets once, here, before workers would all download them into one folder at once."""
    from bench.pipeline import make_dataset

    seen = []
    for protocol in protocols:
        if protocol.dataset.downloads and protocol.dataset not in seen:
            seen.append(protocol.dataset)
            echo(f"fetching data set {protocol.dataset.name} before starting the workers")
            make_dataset(protocol)


def _shared_first(models: list[TrainJob], beside: list[EvaluateJob], executor: Executor, echo: Callable[[str], None],
                  finished: Callable[[JobResult], None]) -> dict[str, str]:
    """Train the shared models, with the jobs that need none of them filling the other workers
    meanwhile (a lone shared model would otherwise leave every worker but one idle); returns
    label -> error of the shared models that failed."""
    failed: dict[str, str] = {}
    if not models:
        return failed
    echo(f"first training {len(models)} model(s) that several jobs share"
         + (f", beside {len(beside)} job(s) that need none of them" if beside else ""))
    shared = {model.label for model in models}
    done = 0
    for result in executor.map([*models, *beside]):
        if result.label not in shared:
            finished(result)
            continue
        done += 1
        echo(f"[shared model {done}/{len(models)}] {result.label}: "
             + (f"trained ({result.seconds:.1f}s)" if result.ok else f"FAILED: {result.error}"))
        if not result.ok:
            failed[result.label] = result.error
    return failed


def run_sweep(grid: Grid, target: Target, executor: Executor, echo: Callable[[str], None] = print) -> SweepReport:
    """Run every job of ``grid`` that has missing records; a failing job is reported, never fatal."""
    the_plan = plan(grid, target)
    report = SweepReport(total=len(the_plan.jobs))
    pending = {job.label for job in the_plan.todo}
    report.skipped = [job.label for job in the_plan.jobs if job.label not in pending]
    echo(f"sweep {grid.source}: {len(the_plan.jobs)} job(s) ({len(grid.variants)} defense variant(s) x {len(grid.seeds)} seed(s), "
         f"{len(grid.attacks)} attack(s) each); {len(report.skipped)} already complete")
    if the_plan.todo:
        _prefetch_downloads([job.protocol for job in the_plan.todo], echo)
        echo(f"running {len(the_plan.todo)} job(s) on {executor.describe(len(the_plan.todo))}")

    def finished(result: JobResult) -> None:
        report.results.append(result)
        status = f"{len(result.written)} record(s) written ({result.seconds:.1f}s)" if result.ok else f"FAILED: {result.error}"
        echo(f"[{len(report.skipped) + len(report.results)}/{report.total}] {result.label}: {status}")

    beside = [job for job in the_plan.todo if not the_plan.needs.get(job.label)] if the_plan.shared else []
    failed_models = _shared_first(the_plan.shared, beside, executor, echo, finished)
    runnable = []
    for job in (job for job in the_plan.todo if job not in beside):
        broken = [label for label in the_plan.needs.get(job.label, []) if label in failed_models]
        if broken:
            finished(JobResult(job.label, False, 0.0, error=f"not run: training the shared model {broken[0]} failed: "
                                                             f"{failed_models[broken[0]]}"))
        else:
            runnable.append(job)
    for result in executor.map(runnable) if runnable else ():
        finished(result)

    params = {path: job.params_text for job in the_plan.jobs for path in job.record_paths()}
    report.records = [path for path in params if path.exists()]
    try:
        report.table = summary_markdown(report.records, params)
    except BenchError as exc:  # an unreadable record must not hide the jobs' outcome
        report.table = f"(no summary table: {exc})\n"
    return report


def summary_markdown(records: list[Path], params: dict[Path, str]) -> str:
    """``bench.reporting``'s summary table over exactly ``records``, variants named by their hyperparameters.

    Worst-case rows are those of the models the sweep touched, over every attack record beside
    theirs: each model's ``summary.json``, read as ``bench report`` reads it (recomputed when stale).
    """
    import pandas as pd

    from bench.reporting.tables import WORST, records_frame, summary_table, to_markdown

    existing = set(records)
    wanted = {path.resolve(): text for path, text in params.items() if path in existing}
    folders = sorted({path.parents[2] for path in records})  # <results>/<protocol>-<hash12>/
    frame = pd.concat([records_frame(folder) for folder in folders] or [pd.DataFrame()], ignore_index=True)
    if frame.empty:
        return "(no attack records)\n"
    attack_rows = frame["attack"] != WORST
    ours = attack_rows & frame["record"].map(lambda r: Path(r).resolve() in wanted)
    models = {(r.protocol_hash, r.defense, r.seed) for r in frame[ours].itertuples()}
    worst_rows = ~attack_rows & pd.Series([key in models for key in zip(frame["protocol_hash"], frame["defense"], frame["seed"])],
                                          index=frame.index)
    suffix = {(r.protocol_hash, r.defense): wanted[Path(r.record).resolve()] for r in frame[ours].itertuples()}
    frame = frame[ours | worst_rows].copy()
    frame["defense"] = [f"{d} [{suffix[(h, d)]}]" if suffix.get((h, d)) else d for h, d in zip(frame["protocol_hash"], frame["defense"])]
    return to_markdown(summary_table(frame))
