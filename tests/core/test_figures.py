"""Paper figures: planning, running what is missing, drawing, captions."""

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
    assert "li2019: 2 figure(s) on protocol quick; 12 run(s) missing" in out
    assert "bench run --defense neural_sim --attack fmn --seed 0 --set defenses.neural_sim.control=shuffled" in out
    assert not (tmp_path / "r").exists()


def test_brama2020_runs_what_is_missing_and_draws(tmp_path, capsys):
    protocol = _tiny_protocol(tmp_path)
    args = ["figures", "brama2020", "--protocol", str(protocol), "--results", str(tmp_path / "r"),
            "--checkpoints", str(tmp_path / "c"), "--out", str(tmp_path / "fig"), "--quiet"]
    assert main(args) == 0
    out = tmp_path / "fig" / "brama2020"
    assert (out / "rank_metrics.png").stat().st_size > 10_000 and (out / "rank_metrics.pdf").exists()
    captions = (out / "CAPTIONS.md").read_text()
    assert "heat_blur" in captions and "in the spirit of" in captions and "Protocol" in captions
    n = read_record(next((tmp_path / "r").rglob("pgd.json"))).metrics.n_examples
    assert f"n = {n} test images per record" in captions and "seed 0" in captions
    assert "95 % Wilson interval" in captions and "MRR" in captions and "without an interval" in captions
    assert len(list((tmp_path / "r").rglob("pgd.json"))) == 3
    capsys.readouterr()
    assert main(args[:2] + ["--dry-run"] + args[2:]) == 0
    assert "0 run(s) missing" in capsys.readouterr().out
