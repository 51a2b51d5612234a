"""Real sweeps of tiny models: executors agree (serial, local and Ray), reruns do nothing, failures stay
local, work resumes. One module, so that the reference sweeps are run once (pytest-xdist's loadfile)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from sweep_helpers import GRID, bench, comparable, mtimes, records, write_grid

HERE = Path(__file__).resolve().parent


@pytest.mark.slow  # a second run of the reference sweep
def test_serial_and_local_executors_write_identical_records(reference_sweeps, serial_sweep):
    serial, local = serial_sweep, reference_sweeps["local"]
    a, b = records(serial["results"], serial["checkpoints"]), records(local["results"], local["checkpoints"])
    attack_records = [name for name in a if not name.endswith("summary.json")]
    assert len(attack_records) == 8 and len(a) == 12  # 4 jobs x (fgsm, pgd) + one summary.json per job
    assert sorted(a) == sorted(b)
    for name in a:
        assert a[name] == b[name], name
    # the comparison has teeth: seeds and defenses give different models, hence different outcomes
    pgd = {name.split("/", 1)[1]: rec for name, rec in a.items() if name.endswith("pgd.json")}
    assert len({rec["protocol"]["hash"] for rec in pgd.values()}) == 2  # baseline's and pixel_sim[n_images=100]'s
    assert len({json.dumps(rec["metrics"]["per_example"], sort_keys=True) for rec in pgd.values()}) == 4
    assert all(rec["metrics"]["n_examples"] == 32 and rec["protocol"]["config"]["model"]["width"] == 8 for rec in pgd.values())
    assert {rec["defense"]["params"].get("n_images") for rec in pgd.values()} == {None, 100}


def test_progress_lines_and_summary_table(reference_sweeps):
    out = reference_sweeps["local"]["out"]
    assert "4 job(s) (2 defense variant(s) x 2 seed(s), 2 attack(s) each); 0 already complete" in out
    assert "local (2 worker process(es) x 1 torch thread(s))" in out
    done = [line for line in out.splitlines() if line.startswith("[")]
    assert [line.split("]")[0] for line in done] == ["[1/4", "[2/4", "[3/4", "[4/4"]
    assert all("2 record(s) written" in line for line in done)
    table = [line for line in out.splitlines() if line.startswith("| quick")]
    # 2 variants x (fgsm, pgd, worst case) x 6 eps, each the mean over the 2 seeds
    assert len(table) == 36 and all(" | 2 | 32 | " in line for line in table)
    assert sum("| pixel_sim [n_images=100] | pgd (linf) |" in line for line in table) == 6
    assert sum("| baseline | **worst case** (linf) |" in line for line in table) == 6
    assert "4 job(s): 0 already complete, 4 run, 0 failed; 8 record(s)" in out


def test_rerun_trains_nothing_and_writes_nothing(reference_sweeps):
    local = reference_sweeps["local"]
    before = mtimes(local["results"], local["checkpoints"])
    status, out, _ = bench("sweep", str(reference_sweeps["grid"]), "--results", str(local["results"]),
                           "--checkpoints", str(local["checkpoints"]))
    assert status == 0
    assert "0 already complete" not in out and "4 already complete" in out and "running" not in out
    assert not [line for line in out.splitlines() if line.startswith("[")]
    assert mtimes(local["results"], local["checkpoints"]) == before
    assert "4 job(s): 4 already complete, 0 run, 0 failed; 8 record(s)" in out


def test_a_failing_job_is_reported_and_interrupted_work_resumes(reference_sweeps, tmp_path, monkeypatch):
    reference = reference_sweeps["local"]
    results, checkpoints = tmp_path / "results", tmp_path / "checkpoints"
    shutil.copytree(reference["results"], results)
    shutil.copytree(reference["checkpoints"], checkpoints)
    (pixel0,) = (checkpoints / "quick" / "pixel_sim").glob("seed0-*")
    (pixel0 / "final.pt").unlink()  # killed after the last epoch's last.pt, before final.pt
    lost = next(results.glob("quick-*/pixel_sim/seed0/fgsm.json"))
    original = json.loads((reference["results"] / lost.relative_to(results)).read_text())
    lost.unlink()
    untouched = {p: t for p, t in mtimes(results, checkpoints).items() if not (p.is_relative_to(pixel0) or p.parent == lost.parent)}
    last_pt = (pixel0 / "last.pt").stat().st_mtime_ns

    monkeypatch.chdir(HERE)  # --plugin sweep_plugin: a module in the working directory, as for `bench run`
    grid = write_grid(tmp_path / "grid.yaml", **{**GRID, "seeds": [0], "defenses": {**GRID["defenses"], "sweep_nan_loss": None}})
    status, out, err = bench("sweep", str(grid), "--plugin", "sweep_plugin", "--executor", "local", "--workers", "2",
                             "--results", str(results), "--checkpoints", str(checkpoints))

    # the plugin's defense failed in its worker as a BenchError (not as an unknown name), and was reported
    assert status == 2
    assert "1 of 3 sweep job(s) failed" in err and "sweep_nan_loss seed 0: training loss became nan" in err
    assert "3 job(s) (3 defense variant(s) x 1 seed(s), 2 attack(s) each); 1 already complete" in out
    assert "sweep_nan_loss seed 0: FAILED: training loss became nan" in out
    # the other job went on: its model was finished from last.pt (no epoch trained again) and its lost record redone
    assert "pixel_sim[n_images=100] seed 0: 1 record(s) written" in out
    assert (pixel0 / "final.pt").exists() and (pixel0 / "last.pt").stat().st_mtime_ns == last_pt
    assert comparable(json.loads(lost.read_text()), checkpoints) == comparable(original, reference["checkpoints"])
    assert {p: t for p, t in mtimes(results, checkpoints).items() if p in untouched} == untouched
    # the summary table covers the grid's records: 2 defenses x 3 rows x 6 eps, from one seed
    assert sum(line.startswith("| quick") and " | 1 | 32 | " in line for line in out.splitlines()) == 36


@pytest.fixture(scope="module")
def ray():
    """A local Ray instance started in this process; the executor uses it and leaves it running."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_ray_writes_the_same_records_as_local(reference_sweeps, ray, tmp_path):
    """The Ray executor on a real local Ray instance writes the same records as the local process pool."""
    grid = write_grid(tmp_path / "grid.yaml", **{**GRID, "defenses": {"pixel_sim": {"n_images": [100]}}, "executor": "ray"})
    results, checkpoints = tmp_path / "results", tmp_path / "checkpoints"
    status, out, err = bench("sweep", str(grid), "--threads", "1", "--results", str(results), "--checkpoints", str(checkpoints))
    assert status == 0, err
    assert "ray (2 CPU(s) in the cluster; 2 task(s) at a time x 1 torch thread(s))" in out
    assert "2 job(s): 0 already complete, 2 run, 0 failed; 4 record(s)" in out
    assert ray.is_initialized()  # not the executor's to stop
    local = reference_sweeps["local"]
    expected = {name: rec for name, rec in records(local["results"], local["checkpoints"]).items() if "/pixel_sim/" in name}
    assert len(expected) == 6 and records(results, checkpoints) == expected
