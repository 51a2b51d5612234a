"""Grid files: expansion into variants and jobs, and validation before any work (no training here)."""

from __future__ import annotations

import pytest

from bench.errors import ConfigError
from bench.protocol import load_protocol
from bench.sweep import EXECUTORS, Target, load_grid
from bench.sweep.grid import format_value
from bench.sweep.sweep import expand
from sweep_helpers import GRID, TINY, bench, write_grid


def _load(tmp_path, **fields):
    return load_grid(write_grid(tmp_path / "grid.yaml", **fields), list(EXECUTORS))


def test_mapping_form_expands_every_combination_into_protocol_overrides(tmp_path):
    grid = _load(tmp_path, protocol="quick", overrides=TINY, seeds=[3, 4],
                 defenses={"baseline": None, "pixel_sim": {"alpha": [1.0, 4.0], "n_images": [100, 200]}})
    assert [v.label for v in grid.variants] == [
        "baseline", "pixel_sim[alpha=1.0, n_images=100]", "pixel_sim[alpha=1.0, n_images=200]",
        "pixel_sim[alpha=4.0, n_images=100]", "pixel_sim[alpha=4.0, n_images=200]"]
    last = grid.variants[-1].protocol
    assert last.defense_params("pixel_sim")["alpha"] == 4.0 and last.defense_params("pixel_sim")["n_images"] == 200
    assert last.config["model"]["width"] == 8  # the grid's overrides apply to every variant
    # each variant is exactly what `bench run --set ...` resolves, hence the same record folder
    assert last.hash == load_protocol("quick", [*TINY, "defenses.pixel_sim.alpha=4.0", "defenses.pixel_sim.n_images=200"]).hash
    assert len({v.protocol.hash for v in grid.variants}) == 5
    assert grid.variants[0].protocol.hash == load_protocol("quick", TINY).hash
    # defaults: the protocol's leaderboard suite, the local executor
    assert grid.attacks == load_protocol("quick").suite() and grid.executor == "local" and grid.workers is None
    jobs = expand(grid, Target(tmp_path / "r", tmp_path / "c"))
    assert [j.label for j in jobs][:3] == ["baseline seed 3", "pixel_sim[alpha=1.0, n_images=100] seed 3",
                                          "pixel_sim[alpha=1.0, n_images=200] seed 3"]  # seed by seed
    assert [j.label for j in jobs][5] == "baseline seed 4"
    assert len(jobs) == 10 and all(j.attacks == grid.attacks for j in jobs)


def test_list_form_and_defaults_from_the_protocol(tmp_path):
    grid = _load(tmp_path, protocol="quick", defenses=["baseline", "gaussian_blur"], attacks=["pgd"], executor="serial", workers=3)
    assert [v.label for v in grid.variants] == ["baseline", "gaussian_blur"]
    assert grid.seeds == tuple(load_protocol("quick").seeds) and grid.attacks == ("pgd",)
    assert grid.executor == "serial" and grid.workers == 3


def test_protocol_path_is_relative_to_the_grid_file(tmp_path):
    from importlib import resources

    (tmp_path / "protocols").mkdir()
    (tmp_path / "protocols" / "mine.yaml").write_text((resources.files("bench") / "protocols" / "quick.yaml").read_text())
    (tmp_path / "grids").mkdir()
    grid = load_grid(write_grid(tmp_path / "grids" / "g.yaml", protocol="../protocols/mine.yaml", defenses=["baseline"]),
                     list(EXECUTORS))
    assert grid.protocol == str((tmp_path / "protocols" / "mine.yaml").resolve())
    assert grid.variants[0].protocol.source == grid.protocol


@pytest.mark.parametrize("value", [1.0e-5, 4, 0.5, True, None, "blur_background", [1, 2.5], {"a": [1, "x"]}, "1e-05", "yes"])
def test_override_values_survive_the_round_trip(value):
    import yaml

    assert yaml.safe_load(format_value(value)) == value


def test_small_floats_reach_the_protocol_as_floats(tmp_path):
    grid = _load(tmp_path, protocol="quick", defenses={"pixel_sim": {"alpha": [1.0e-5]}})
    assert grid.variants[0].protocol.defense_params("pixel_sim")["alpha"] == 1.0e-5


@pytest.mark.parametrize("fields, message", [
    ({"protocol": "quick", "defenses": ["baseline"], "defences": ["x"]}, "unknown key(s) 'defences'; valid keys: protocol, defenses"),
    ({"defenses": ["baseline"]}, "missing required key(s) protocol"),
    ({"protocol": "quick", "defenses": ["baseline", "no_such_defense"]}, "unknown defense 'no_such_defense'; valid defenses:"),
    ({"protocol": "quick", "defenses": ["baseline"], "attacks": ["pgd", "no_such_attack"]}, "unknown attack 'no_such_attack'"),
    ({"protocol": "no_such_protocol", "defenses": ["baseline"]}, "unknown protocol 'no_such_protocol'"),
    ({"protocol": "quick", "defenses": {"pixel_sim": {"alpah": [1.0]}}}, "pixel_sim[alpah=1.0]: defense 'pixel_sim' does not take the parameters"),
    ({"protocol": "quick", "defenses": {"pixel_sim": {"alpha": ["high"]}}}, "defenses.pixel_sim.alpha is a number"),
    ({"protocol": "quick", "defenses": {"pixel_sim": {"alpha": 4.0}}}, "defenses.pixel_sim.alpha must be a non-empty list"),
    ({"protocol": "quick", "defenses": {"pixel_sim": {"alpha": [4.0, 4]}}}, "defenses.pixel_sim.alpha lists 4 more than once"),
    ({"protocol": "quick", "defenses": ["baseline", "baseline"]}, "'baseline' is listed more than once"),
    ({"protocol": "quick", "defenses": []}, "defenses is empty"),
    ({"protocol": "quick", "defenses": ["baseline"], "seeds": [0, 0]}, "seeds: 0 is listed more than once"),
    ({"protocol": "quick", "defenses": ["baseline"], "seeds": ["a"]}, "each of seeds = 'a' is invalid; accepted: an integer from 0 to"),
    ({"protocol": "quick", "defenses": ["baseline"], "seeds": [-1]}, "each of seeds = -1 is invalid; accepted: an integer from 0 to"),
    ({"protocol": "quick", "defenses": ["baseline"], "overrides": ["training.epochz=1"]}, "unknown protocol key 'training.epochz'"),
    ({"protocol": "quick", "defenses": ["baseline"], "executor": "slurm"}, "unknown executor 'slurm'; valid executors: serial, local, ray"),
    ({"protocol": "quick", "defenses": ["baseline"], "workers": 0}, "workers = 0 is invalid; accepted: an integer >= 1"),
    ({"protocol": "quick", "defenses": ["baseline"], "attacks": ["autoattack_l2"], "overrides": ["threat_models={linf: {eps: [0.1]}}"]},
     "needs an eps grid for threat model 'l2'"),
])
def test_invalid_grids_are_refused_with_a_clear_message(tmp_path, fields, message):
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, **fields)
    assert message in str(info.value)


def test_every_problem_is_reported_at_once(tmp_path):
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, protocol="quick", defenses=["baseline", "nope"], attacks=["pgd", "nah"], seeds=[1, 1], typo=1)
    text = str(info.value)
    assert "has 4 problem(s)" in text
    assert all(part in text for part in ("'typo'", "unknown defense 'nope'", "unknown attack 'nah'", "seeds: 1"))


def test_defenses_that_resolve_to_one_results_folder_are_refused(tmp_path, monkeypatch):
    """Two variants writing one <protocol>-<hash>/<defense>/seed<N> folder would race on summary.json."""
    from bench.defenses import Defense
    from bench.catalog import DEFENSES
    from bench.registry import Entry

    DEFENSES.names()  # load the built-in components before adding to them
    monkeypatch.setitem(DEFENSES._entries, "baseline_alias", Entry("baseline_alias", lambda: Defense("baseline"), "alias", __name__))
    with pytest.raises(ConfigError, match="baseline_alias resolves to the same protocol as baseline"):
        _load(tmp_path, protocol="quick", defenses=["baseline", "baseline_alias"])


def test_cli_refuses_a_bad_grid_before_any_work(tmp_path):
    grid = write_grid(tmp_path / "grid.yaml", protocol="quick", defenses=["baseline", "nope"])
    status, out, err = bench("sweep", str(grid), "--results", str(tmp_path / "r"), "--checkpoints", str(tmp_path / "c"))
    assert status == 2 and "unknown defense 'nope'" in err and out == ""
    assert not (tmp_path / "r").exists() and not (tmp_path / "c").exists()
    status, _, err = bench("sweep", str(tmp_path / "missing.yaml"))
    assert status == 2 and "grid file" in err and "does not exist" in err
    status, _, err = bench("sweep", str(write_grid(tmp_path / "ok.yaml", **GRID)), "--executor", "nope")
    assert status == 2 and "unknown executor 'nope'" in err


def test_dry_run_lists_jobs_and_runs_nothing(tmp_path):
    grid = write_grid(tmp_path / "grid.yaml", **GRID)
    status, out, _ = bench("sweep", str(grid), "--dry-run", "--results", str(tmp_path / "r"), "--checkpoints", str(tmp_path / "c"))
    assert status == 0
    assert "4 job(s), 4 with missing records" in out
    assert "pixel_sim[n_images=100] seed 1: to run (fgsm, pgd)" in out
    assert not (tmp_path / "r").exists() and not (tmp_path / "c").exists()


@pytest.mark.parametrize("name", ["reference-quick.yaml", "reference-fashion.yaml", "all-defenses-3-seeds.yaml"])
def test_the_shipped_grid_files_are_valid_and_cover_every_built_in_defense(name):
    from pathlib import Path

    from bench.catalog import DEFENSES

    grid = load_grid(Path(__file__).resolve().parents[2] / "sweeps" / name, list(EXECUTORS))
    families = {"robustbench", "torchvision", "timm"}  # need user-supplied weights
    built_in = {e.name for e in DEFENSES if e.module.startswith("bench.")}
    assert {v.defense for v in grid.variants} == built_in - families
