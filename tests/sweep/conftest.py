"""Fixtures of the sweep tests: the reference sweeps (the same grid through the serial and the
local executor), run once per session."""

from __future__ import annotations

import pytest

from sweep_helpers import GRID, bench, write_grid


def _sweep(root, grid, executor):
    results, checkpoints = root / executor / "results", root / executor / "checkpoints"
    status, out, err = bench("sweep", str(grid), "--executor", executor, "--workers", "2", "--threads", "1",
                             "--results", str(results), "--checkpoints", str(checkpoints))
    assert status == 0, err
    return {"results": results, "checkpoints": checkpoints, "out": out}


@pytest.fixture(scope="session")
def reference_sweeps(tmp_path_factory):
    """The grid run through the local executor (2 worker processes), into its own folders."""
    root = tmp_path_factory.mktemp("sweeps")
    grid = write_grid(root / "grid.yaml", **GRID)
    return {"grid": grid, "root": root, "local": _sweep(root, grid, "local")}


@pytest.fixture(scope="session")
def serial_sweep(reference_sweeps):
    """The same grid through the serial executor (--threads 1 for both: serial jobs then compute
    exactly as a local worker on 2 cores does)."""
    return _sweep(reference_sweeps["root"], reference_sweeps["grid"], "serial")
