"""Fixtures of the sweep tests: the reference sweeps (the same grid through the serial and the
local executor), run once per session."""

from __future__ import annotations

import pytest

from sweep_helpers import GRID, bench, write_grid


@pytest.fixture(scope="session")
def reference_sweeps(tmp_path_factory):
    """The grid run through the serial executor and through the local one, each into its own folders
    (--threads 1 for both: serial jobs then compute exactly as a local worker on 2 cores does)."""
    root = tmp_path_factory.mktemp("sweeps")
    grid = write_grid(root / "grid.yaml", **GRID)
    runs = {}
    for executor in ("serial", "local"):
        results, checkpoints = root / executor / "results", root / executor / "checkpoints"
        status, out, err = bench("sweep", str(grid), "--executor", executor, "--workers", "2", "--threads", "1",
                                 "--results", str(results), "--checkpoints", str(checkpoints))
        assert status == 0, err
        runs[executor] = {"results": results, "checkpoints": checkpoints, "out": out}
    return {"grid": grid, **runs}
