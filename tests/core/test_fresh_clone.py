"""The README's main job on a fresh clone: it trains and attacks (the shipped references are
not mistaken for the user's records), writes a record and a report, and touches no tracked file."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# The README's command with a shorter training and attack, so that the test stays quick.
SHORT = ["--set", "training.epochs=1", "--set", "evaluation.n_examples=60", "--set", "attacks.pgd.steps=3", "--set", "attacks.pgd.targets=1"]


@pytest.mark.slow  # a whole clone, install-free main job and report: about 30 s
@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="needs git and a git checkout")
def test_main_job_on_a_fresh_clone_trains_attacks_reports_and_leaves_git_status_clean(tmp_path):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    env = {**os.environ, "PYTHONPATH": str(clone)}  # the clone's code, not the installed checkout's

    def bench(*args: str) -> str:
        out = subprocess.run([sys.executable, "-m", "bench.cli", *args], cwd=clone, env=env, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        return out.stdout

    assert (clone / "results" / "reference").is_dir()  # the shipped references are there...
    run = bench("run", "--defense", "baseline", "--attack", "pgd", *SHORT)
    assert "training baseline (seed 0)" in run and "epoch 1/1" in run  # ...yet the model is trained
    assert "reusing record" not in run
    (record,) = (clone / "results").glob("quick-*/baseline/seed0/pgd.json")
    assert f"wrote {record.relative_to(clone)}" in run
    report = bench("report")
    assert "wrote reports/summary.md" in report
    summary = (clone / "reports" / "summary.md").read_text()
    assert "baseline" in summary and "pgd" in summary
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=clone, capture_output=True,
                            text=True, check=True).stdout
    assert status == ""
