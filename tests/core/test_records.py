"""Comparing results folders: volatile fields are ignored, every real difference is named."""

from __future__ import annotations

import json

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
