"""Which jobs run when: shared models first, skipped jobs never submitted (a recording executor, no training)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from bench.sweep import EXECUTORS, Executor, JobResult, Target, load_grid, plan, run_sweep
from bench.sweep.jobs import Job, TrainJob
from sweep_helpers import TINY, write_grid


class Recording(Executor):
    """Runs nothing: records each ``map`` call's job labels and answers ok (or failed for ``fail``)."""

    name = "recording"

    def __init__(self, fail: tuple[str, ...] = ()):
        super().__init__()
        self.calls: list[list[Job]] = []
        self.fail = fail

    def map(self, jobs: Sequence[Job]) -> Iterator[JobResult]:
        self.calls.append(list(jobs))
        for job in jobs:
            failed = any(f in job.label for f in self.fail)
            yield JobResult(job.label, not failed, 0.0, error="loss became nan" if failed else "")


def _grid(tmp_path, **fields):
    defaults = {"protocol": "quick", "overrides": TINY, "seeds": [0, 1]}
    return load_grid(write_grid(tmp_path / "grid.yaml", **{**defaults, **fields}), list(EXECUTORS))


def test_base_models_and_transfer_surrogates_are_trained_once_before_their_users(tmp_path):
    grid = _grid(tmp_path, defenses={"baseline": None, "gaussian_blur": {"sigma": [1.0, 2.0]}}, attacks=["fgsm", "transfer_fgsm"])
    target = Target(tmp_path / "r", tmp_path / "c")
    executor = Recording()
    report = run_sweep(grid, target, executor, echo=lambda line: None)
    first, second = executor.calls
    assert all(isinstance(job, TrainJob) for job in first)
    # baseline seed s is the job's own model and both blur variants' base; seed s + 1000 is everyone's surrogate
    assert sorted((job.defense, job.seed) for job in first) == [("baseline", 0), ("baseline", 1), ("baseline", 1000), ("baseline", 1001)]
    assert [len(job.users) for job in first] == [3, 3, 3, 3]
    assert len({(job.defense, job.seed) for job in first}) == len(first)
    assert [job.label for job in second] == ["baseline seed 0", "gaussian_blur[sigma=1.0] seed 0", "gaussian_blur[sigma=2.0] seed 0",
                                              "baseline seed 1", "gaussian_blur[sigma=1.0] seed 1", "gaussian_blur[sigma=2.0] seed 1"]
    assert not report.failed and report.total == 6


def test_a_model_used_by_one_job_or_already_trained_is_not_shared(tmp_path):
    grid = _grid(tmp_path, defenses=["baseline", "pixel_sim"], attacks=["fgsm"])
    target = Target(tmp_path / "r", tmp_path / "c")
    assert plan(grid, target).shared == []  # every job trains only its own model
    grid = _grid(tmp_path, defenses=["baseline", "gaussian_blur"], attacks=["fgsm"], seeds=[0])
    shared = plan(grid, target).shared
    assert [(m.defense, m.seed) for m in shared] == [("baseline", 0)]
    # once final.pt exists the jobs only load it: nothing to train first
    from bench.pipeline import checkpoint_folder, make_defense

    model = shared[0]
    final = checkpoint_folder(target.checkpoint_dir, model.protocol, make_defense(model.protocol, "baseline"), 0) / "final.pt"
    final.parent.mkdir(parents=True)
    final.write_bytes(b"")
    assert plan(grid, target).shared == []


def test_jobs_that_need_no_shared_model_fill_the_workers_while_it_trains(tmp_path):
    grid = _grid(tmp_path, defenses=["baseline", "gaussian_blur", "pixel_sim", "neural_sim"], attacks=["fgsm"], seeds=[0])
    executor = Recording()
    lines: list[str] = []
    report = run_sweep(grid, Target(tmp_path / "r", tmp_path / "c"), executor, echo=lines.append)
    first, second = executor.calls
    assert [job.label for job in first] == ["baseline seed 0 (model shared by baseline seed 0, gaussian_blur seed 0)",
                                            "pixel_sim seed 0", "neural_sim seed 0"]
    assert [job.label for job in second] == ["baseline seed 0", "gaussian_blur seed 0"]
    assert "first training 1 model(s) that several jobs share, beside 2 job(s) that need none of them" in lines
    assert sorted(r.label for r in report.results) == ["baseline seed 0", "gaussian_blur seed 0", "neural_sim seed 0", "pixel_sim seed 0"]
    assert not report.failed and [line.split("]")[0] for line in lines if line.startswith("[") and "shared" not in line] == \
        ["[1/4", "[2/4", "[3/4", "[4/4"]


def test_jobs_of_a_failed_shared_model_are_reported_and_not_run(tmp_path):
    grid = _grid(tmp_path, defenses=["baseline", "gaussian_blur", "pixel_sim"], attacks=["fgsm"], seeds=[0])
    executor = Recording(fail=("baseline seed 0 (model shared",))
    lines: list[str] = []
    report = run_sweep(grid, Target(tmp_path / "r", tmp_path / "c"), executor, echo=lines.append)
    # pixel_sim needs no shared model: it runs beside the baseline's training, and nothing is left to run after
    assert [job.label for job in executor.calls[0]] == ["baseline seed 0 (model shared by baseline seed 0, gaussian_blur seed 0)",
                                                        "pixel_sim seed 0"]
    assert len(executor.calls) == 1
    assert sorted(r.label for r in report.failed) == ["baseline seed 0", "gaussian_blur seed 0"]
    assert all("not run: training the shared model baseline seed 0" in r.error and "loss became nan" in r.error
               for r in report.failed)
    assert any(line.startswith("[shared model 1/1]") and "FAILED: loss became nan" in line for line in lines)
    assert "2 of 3 sweep job(s) failed" in report.failure_summary()


def test_jobs_with_all_records_are_not_submitted(tmp_path):
    from bench.records import write_json_atomic

    grid = _grid(tmp_path, defenses=["baseline"], attacks=["fgsm", "pgd"])
    target = Target(tmp_path / "r", tmp_path / "c")
    jobs = plan(grid, target).jobs
    for path in jobs[0].record_paths():  # seed 0 complete
        write_json_atomic(path, {"schema": 1, "kind": "other"})
    write_json_atomic(jobs[1].record_paths()[0], {"schema": 1, "kind": "other"})  # seed 1 half done
    executor = Recording()
    report = run_sweep(grid, target, executor, echo=lambda line: None)
    assert [[job.label for job in call] for call in executor.calls] == [["baseline seed 1"]]
    assert report.skipped == ["baseline seed 0"] and jobs[1].pending_attacks() == ["pgd"]


def test_a_killed_worker_fails_its_jobs_and_the_pool_is_renewed(tmp_path):
    from bench.sweep.executors import LocalExecutor
    from sweep_helpers import exit_and_noop_jobs

    crash, noop = exit_and_noop_jobs(tmp_path)
    with LocalExecutor(workers=1, threads=1) as executor:
        results = list(executor.map([crash]))
        assert [(r.label, r.ok) for r in results] == [("exit 0", False)]
        assert "worker process died" in results[0].error
        assert [(r.label, r.ok) for r in executor.map([noop])] == [("noop 1", True)]
