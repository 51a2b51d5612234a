"""The Ray executor on a real local Ray instance writes the same records as the local process pool."""

from __future__ import annotations

import pytest

from sweep_helpers import GRID, bench, records, write_grid

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def ray_instance():
    """A local Ray instance started in this process; the executor uses it and leaves it running."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_writes_the_same_records_as_local(reference_sweeps, ray_instance, tmp_path):
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
