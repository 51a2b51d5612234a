"""Paper figures: planning, running what is missing, drawing, captions."""

import shutil
from pathlib import Path

import yaml

from bench.cli import main
from bench.protocol import load_protocol
from bench.records import read_record
from fast_protocol import TINY


def _tiny_protocol(tmp_path):
    """The quick protocol with the TINY overrides, as a file: figures take a protocol, not overrides."""
    config = load_protocol("quick", [*TINY, "attacks.pgd.steps=2"]).raw_config()
    config["name"] = "tiny"
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_dry_run_lists_missing_runs_without_running(tmp_path, capsys):
    assert main(["figures", "li2019", "--dry-run", "--results", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    # 12 records per seed, for the 3 seeds a figure's intervals rest on
    assert "li2019: 2 figure(s) on protocol quick; 36 run(s) missing" in out
    assert "bench run --defense neural_sim --attack fmn --seed 0 --set defenses.neural_sim.control=shuffled" in out
    assert "bench run --defense pixel_sim --attack gaussian_noise --seed 2" in out
    assert not (tmp_path / "r").exists()


def test_brama2020_runs_what_is_missing_and_draws(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("bench.figures.base.FIGURE_SEEDS", (0, 1))  # two seeds: the path of several, at less cost
    protocol = _tiny_protocol(tmp_path)
    args = ["figures", "brama2020", "--protocol", str(protocol), "--results", str(tmp_path / "r"),
            "--checkpoints", str(tmp_path / "c"), "--out", str(tmp_path / "fig"), "--quiet"]
    assert main(args) == 0
    out = tmp_path / "fig" / "brama2020"
    assert (out / "rank_metrics.png").stat().st_size > 10_000 and (out / "rank_metrics.pdf").exists()
    captions = (out / "CAPTIONS.md").read_text()
    assert "heat_blur" in captions and "in the spirit of" in captions and "Protocol" in captions
    n = read_record(next((tmp_path / "r").rglob("pgd.json"))).metrics.n_examples
    assert f"n = {n} test images per record" in captions and "2 seeds (0, 1): 2 models per defense" in captions
    assert "protocol tiny" in captions and "an earlier version" not in captions
    assert "bootstrap over the seeds, then the images" in captions and "MRR" in captions and "range over the seeds" in captions
    assert len(list((tmp_path / "r").rglob("pgd.json"))) == 6
    capsys.readouterr()
    assert main(args[:2] + ["--dry-run"] + args[2:]) == 0
    assert "0 run(s) missing" in capsys.readouterr().out


REFERENCE = Path(__file__).resolve().parents[2] / "results" / "reference"


def test_figures_are_drawn_from_the_version_with_the_most_seeds_without_running(tmp_path, capsys):
    """The shipped references hold quick version 7's PGD records of 3 seeds: brama2020 is drawn from them, nothing runs."""
    source = REFERENCE / "quick-5fd98ff3e061"
    results = tmp_path / "r"
    for defense in ("baseline", "heat_blur", "gaussian_blur"):
        for seed in (0, 1, 2):
            target = results / source.name / defense / f"seed{seed}"
            target.mkdir(parents=True)
            shutil.copy(source / defense / f"seed{seed}" / "pgd.json", target / "pgd.json")
    args = ["figures", "brama2020", "--results", str(results), "--out", str(tmp_path / "fig"), "--quiet"]
    assert main(args + ["--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "0 run(s) missing" in out and "rank_metrics: from the records of quick version 7 (5fd98ff3e061), 3 seed(s) (0, 1, 2)" in out
    assert main(args) == 0
    captions = (tmp_path / "fig" / "brama2020" / "CAPTIONS.md").read_text()
    assert "protocol quick version 7 (5fd98ff3e061)" in captions and "3 seeds (0, 1, 2)" in captions
    assert (tmp_path / "fig" / "brama2020" / "rank_metrics.png").stat().st_size > 10_000
    assert sorted(p.name for p in results.iterdir()) == [source.name]  # nothing ran: no other version written


def test_a_controls_records_are_found_under_the_same_versions_config():
    """An override (the shuffled-target control) is applied to the older version's own config: its records' hash."""
    from bench.figures.base import Run, sources

    found = {s.hash[:12]: s for s in sources("quick", REFERENCE)}
    assert not found["cf725404da42"].current and found["cf725404da42"].version == 1
    control = Run("neural_sim", "fmn", overrides=("defenses.neural_sim.control=shuffled",), variant="shuffled target")
    assert found["cf725404da42"].hash_of(control)[:12] == "5c499a49367b"
    assert found["cf725404da42"].seeds_of(REFERENCE, control) == {0}
    assert control.name() == "neural_sim (shuffled target)"


def test_median_interval_over_seeds_brackets_the_mean_of_the_medians():
    from bench.figures.plotting import median_interval, median_interval_over_seeds
    from bench.records import read_record

    records = [read_record(REFERENCE / "quick-cf725404da42" / d / "seed0" / "fmn.json") for d in ("baseline", "pixel_sim")]
    assert median_interval_over_seeds(records[:1]) == median_interval(records[0])
    low, high = median_interval_over_seeds(records)
    mean = sum(r.metrics.minimal_perturbation.median for r in records) / 2
    assert low <= mean <= high
