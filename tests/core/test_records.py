"""Comparing results folders: volatile fields are ignored, every real difference is named."""

from __future__ import annotations

import json
import shutil

from bench.records.compare import comparable_records, differences


def _write(folder, name, record):
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))


def test_runs_that_differ_only_in_volatile_fields_compare_equal_and_real_differences_are_named(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    ckpt_a, ckpt_b = tmp_path / "ca", tmp_path / "cb"
    base = {"metrics": {"clean_accuracy": 0.9, "robust_accuracy": {"0.1": 0.5}}, "model": {"trained_now": True}}
    _write(a, "p/baseline/seed0/pgd.json", {**base, "created": "x", "timings": {"attack_seconds": 1.0},
                                            "checkpoint": str(ckpt_a.resolve() / "m.pt")})
    _write(b, "p/baseline/seed0/pgd.json", {**base, "created": "y", "timings": {"attack_seconds": 2.0},
                                            "checkpoint": str(ckpt_b.resolve() / "m.pt"), "model": {"trained_now": False}})
    ra, rb = comparable_records(a, ckpt_a), comparable_records(b, ckpt_b)
    assert ra == rb and differences(ra, rb) == []
    _write(b, "p/baseline/seed0/pgd.json", {**base, "metrics": {"clean_accuracy": 0.9, "robust_accuracy": {"0.1": 0.6}},
                                            "checkpoint": str(ckpt_b.resolve() / "m.pt")})
    _write(b, "p/baseline/seed1/pgd.json", base)
    found = differences(ra, comparable_records(b, ckpt_b))
    assert found == ["only in second: p/baseline/seed1/pgd.json",
                     "differs: p/baseline/seed0/pgd.json (metrics.robust_accuracy.0.1)"]


def test_code_version_names_the_commit_of_a_copy_without_git(monkeypatch):
    import importlib
    import subprocess

    environment = importlib.import_module("bench.records.environment")  # the package exports a function of that name

    def no_git(*args, **kwargs):
        raise FileNotFoundError("git")

    monkeypatch.setattr(subprocess, "run", no_git)
    monkeypatch.delenv("BENCH_GIT_COMMIT", raising=False)
    assert "git_commit" not in environment.code_version()
    monkeypatch.setenv("BENCH_GIT_COMMIT", "abc123")
    info = environment.code_version()
    assert info["git_commit"] == "abc123" and info["git_dirty"] is None


# a few records of the shipped reference suffice, and keep the reports these tests write small
KEEP_FEW = shutil.ignore_patterns("analysis_*", "boundary_*", "fmn*", "*_noise.json", "salt_pepper.json", "transfer_*", "pgd_l2.json")


def test_reports_leave_out_older_protocol_versions(tmp_path):
    from pathlib import Path

    from bench.records.results import latest_versions, load_results
    from bench.reporting import write_report

    reference = Path(__file__).resolve().parents[2] / "results" / "reference" / "quick-cf725404da42" / "baseline"
    old = tmp_path / "quick-cf725404da42" / "baseline"
    shutil.copytree(reference, old, ignore=KEEP_FEW)
    new = tmp_path / "quick-000000000000" / "baseline"
    shutil.copytree(old, new)
    for path in new.rglob("*.json"):
        data = json.loads(path.read_text())
        data["protocol"].update(version=99, hash="0" * 64)
        path.write_text(json.dumps(data))
    results = load_results(tmp_path)
    kept, dropped = latest_versions(results)
    assert dropped == ["quick version 1 (cf725404da42)"]
    assert {rec.protocol.short_hash for _, rec in kept.attacks} == {"000000000000"} and len(kept.models) == 1
    summary = write_report(tmp_path, tmp_path / "reports")[1].read_text()
    assert "quick version 1 (cf725404da42)" in summary and "cf725404da42 |" not in summary
    summary = write_report(tmp_path, tmp_path / "all", all_versions=True)[1].read_text()
    assert "cf725404da42" in summary.split("## All figures")[1]


def test_reports_mark_records_of_an_older_shipped_protocol_version(tmp_path):
    from pathlib import Path

    from bench.protocol import load_protocol
    from bench.records.results import load_results, outdated_protocols
    from bench.reporting import write_report

    reference = Path(__file__).resolve().parents[2] / "results" / "reference" / "quick-cf725404da42" / "baseline"
    shutil.copytree(reference, tmp_path / "quick-cf725404da42" / "baseline", ignore=KEEP_FEW)
    current = load_protocol("quick")
    marks = outdated_protocols(load_results(tmp_path))
    assert list(marks) == [("quick", "cf725404da42")]
    assert f"version 1 of the shipped protocol quick; it is now at version {current.version}" in marks[("quick", "cf725404da42")]
    written = write_report(tmp_path, tmp_path / "reports", html=True)
    assert "**Older setup:** quick (cf725404da42)" in written[1].read_text()
    assert "Older setup: these records ran version 1" in (tmp_path / "reports" / "index.html").read_text()
    # beside records of today's version, the page leads with today's and shows the older setup after it
    shutil.copytree(tmp_path / "quick-cf725404da42", tmp_path / "quick-ffffffffffff")
    for path in (tmp_path / "quick-ffffffffffff").rglob("*.json"):
        data = json.loads(path.read_text())
        data["protocol"].update(version=current.version, hash="f" * 64)
        path.write_text(json.dumps(data))
    page = (write_report(tmp_path, tmp_path / "both", html=True, all_versions=True)[-1]).read_text()
    assert page.index('<section id="quick-ffffffffffff"') < page.index('<section id="quick-cf725404da42"')
    shutil.rmtree(tmp_path / "quick-ffffffffffff")
    for path in (tmp_path / "quick-cf725404da42").rglob("*.json"):  # records of the current version: no mark
        data = json.loads(path.read_text())
        data["protocol"]["version"] = current.version
        path.write_text(json.dumps(data))
    assert outdated_protocols(load_results(tmp_path)) == {}
