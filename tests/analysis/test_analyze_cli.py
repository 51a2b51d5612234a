"""``bench analyze`` end to end through a parser built with ``add_parsers``: records, reuse of checkpoints, figures."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from bench.analysis import run as analysis_run
from bench.analysis.cli import add_parsers, default_eps, run
from bench.errors import BenchError
from bench.protocol import load_protocol
from bench.pipeline import load_data

# A model trained in seconds: 1 epoch on 10 % of the training split, width 8.
TINY = ["training.epochs=1", "dataset.val_fraction=0.9", "model.width=8", "attacks.pgd.steps=3", "attacks.pgd.targets=1"]
DEFENSES = ["baseline", "gaussian_blur"]  # the second wraps the first's trained model


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--plugin", action="append", default=[])
    common.add_argument("--debug", action="store_true")
    top = argparse.ArgumentParser(prog="bench")
    add_parsers(top.add_subparsers(dest="command", required=True), common)
    return top


def _argv(kind: str, work: Path, *extra: str) -> list[str]:
    sets = [arg for o in TINY for arg in ("--set", o)]
    defenses = [arg for d in DEFENSES for arg in ("--defense", d)]
    return ["analyze", kind, *defenses, *sets, "--results", str(work / "results"), "--checkpoints", str(work / "ckpt"),
            "--out", str(work / "figures"), "--quiet", *extra]


@pytest.fixture(scope="module")
def analyzed(tmp_path_factory):
    """RSA, then filters, of the baseline and a Gaussian-blur pipeline around it (trained once, then reused)."""
    loaded: dict[str, tuple] = {}

    def load_once(protocol):  # the two runs share one protocol: parse the embedded digits once (~3 s)
        return loaded.setdefault(protocol.hash, load_data(protocol))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(analysis_run, "load_data", load_once)
        work = tmp_path_factory.mktemp("analyze")
        rsa_paths = run(parser().parse_args(_argv("rsa", work, "--n-per-class", "2", "--an-steps", "10",
                                                  "--an-stepsize", "0.1", "--eps", "0.3")))
        filter_paths = run(parser().parse_args(_argv("filters", work, "--debug")))
    assert len(loaded) == 1
    return work, rsa_paths, filter_paths


def test_parser_options_and_defaults():
    args = parser().parse_args(["analyze", "rsa", "--set", "training.epochs=2", "--eps", "0.05", "--an-steps", "7"])
    assert (args.command, args.analysis, args.protocol, args.defense, args.seed) == ("analyze", "rsa", "quick", None, 0)
    assert args.overrides == ["training.epochs=2"] and args.eps == 0.05 and args.an_steps == 7 and args.n_per_class == 10
    assert args.results == Path("results") and args.checkpoints == Path("checkpoints") and args.out == Path("reports/analysis")
    args = parser().parse_args(["analyze", "filters", "--defense", "a", "--defense", "b", "--seed", "3", "--plugin", "m"])
    assert args.defense == ["a", "b"] and args.seed == 3 and args.plugin == ["m"] and not hasattr(args, "eps")
    with pytest.raises(SystemExit):
        parser().parse_args(["analyze"])


def test_default_eps_is_the_middle_of_the_linf_grid():
    assert default_eps(load_protocol("quick")) == 0.15
    assert default_eps(load_protocol("quick", ["threat_models.linf.eps=[0.0, 0.1]"])) == 0.1


def test_unknown_defense_fails_before_any_training(tmp_path):
    argv = ["analyze", "filters", "--defense", "no_such_defense", "--checkpoints", str(tmp_path / "ckpt"), "--quiet"]
    with pytest.raises(BenchError, match="no_such_defense"):
        run(parser().parse_args(argv))
    assert not (tmp_path / "ckpt").exists()


def _records(paths: list[Path]) -> dict[str, dict]:
    return {p.parent.parent.name: json.loads(p.read_text()) for p in paths if p.suffix == ".json"}


def test_records_are_self_describing_and_beside_the_attack_records(analyzed):
    work, rsa_paths, filter_paths = analyzed
    protocol = load_protocol("quick", TINY)
    for paths, kind in ((rsa_paths, "rsa"), (filter_paths, "filters")):
        records = _records(paths)
        assert list(records) == DEFENSES
        for name, rec in records.items():
            path = work / "results" / f"quick-{protocol.hash[:12]}" / name / "seed0" / f"analysis_{kind}.json"
            assert path in paths
            assert rec["kind"] == f"analysis_{kind}" and rec["schema"] == 1 and rec["seed"] == 0
            assert rec["protocol"]["hash"] == protocol.hash and rec["protocol"]["config"]["training"]["epochs"] == 1
            assert rec["defense"]["name"] == name and rec["analysis"]["name"] == kind
            assert rec["dataset"]["name"] == "mnist_digits" and rec["environment"]["device"] == "cpu"
            assert rec["timings"]["analysis_seconds"] > 0
    filters = _records(filter_paths)
    assert not filters["baseline"]["model"]["trained_now"]  # the RSA run trained it; the filter run reused it
    assert filters["gaussian_blur"]["model"]["base_defense"] == "baseline"


def test_filter_records_analyse_the_classifier_inside_the_pipeline(analyzed):
    _, _, filter_paths = analyzed
    records = _records(filter_paths)
    base, blur = records["baseline"], records["gaussian_blur"]
    assert base["model"]["analysed"] == {"module": "Classifier", "path": "(the pipeline itself)", "pipeline": "Classifier"}
    assert blur["model"]["analysed"] == {"module": "Classifier", "path": "model", "pipeline": "TransformedModel"}
    assert [row["name"] for row in base["metrics"]["layers"]] == ["net.stem.0", "net.stage1.0", "net.stage2.0", "net.stage3.0"]
    assert base["metrics"]["skipped"] == []
    assert base["metrics"]["layers"] == blur["metrics"]["layers"]  # the same trained weights
    assert base["metrics"]["first_layer"]["shape"] == [8, 1, 3, 3]


def test_rsa_records_report_the_stimuli(analyzed):
    _, rsa_paths, _ = analyzed
    for name, rec in _records(rsa_paths).items():
        m = rec["metrics"]
        assert m["layers"] == ["pixels", "stem", "stage1", "stage2", "stage3", "output"]
        stimuli = m["stimuli"]
        assert stimuli["ai"]["eps"] == 0.3 and stimuli["ai"]["params"]["steps"] == 3
        assert 0 < stimuli["n_clean"] <= 20 and stimuli["ai"]["attempted"] == stimuli["n_clean"]
        assert stimuli["ai"]["kept"] == m["stimulus_kinds"]["ai"] and stimuli["an"]["n"] == 20 == m["stimulus_kinds"]["an"]
        assert 0 <= stimuli["an"]["mean_confidence"] <= 1
        assert len(m["rdm_spearman"]) == 6 and all(len(row) == 6 for row in m["rdm_spearman"])
        assert set(m["consistency"]) == set(m["layers"])
        assert rec["model"]["analysed"]["taps"]["stem"] == ("net.stem" if name == "baseline" else "model.net.stem")


def test_figures_compare_the_defenses(analyzed):
    work, rsa_paths, filter_paths = analyzed
    for paths, kind in ((rsa_paths, "rsa"), (filter_paths, "filters")):
        figures = [p for p in paths if p.suffix in (".png", ".pdf")]
        assert sorted(p.suffix for p in figures) == [".pdf", ".png"]
        for p in figures:
            assert p.parent.parent == work / "figures" and p.stem == f"{kind}_seed0_baseline+gaussian_blur"
            assert p.stat().st_size > 5000
