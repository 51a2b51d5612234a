"""Typed records: the JSON written is the JSON read back, other schemas and broken records are refused with
the file and the field named, and reports take each model's worst case from its ``summary.json``."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
import torch

from bench.cli import main
from bench.errors import BenchError
from bench.evaluation.checks import check
from bench.evaluation.evaluate import AttackOutcome
from bench.pipeline import make_attack, make_defense
from bench.protocol import load_protocol
from bench.records import (AnalysisRecord, AttackRecord, ModelSummary, iter_records, read_record, record_path,
                           write_json_atomic, write_record)
from bench.records.build import analysis_record, attack_record_of, update_model_summary
from bench.records.results import load_results
from bench.records.schema import record_from_dict
from bench.records.summary import summarize
from bench.reporting.html import write_html
from bench.reporting.tables import WORST, records_frame
from fast_protocol import FAST

SHIPPED = Path(__file__).resolve().parents[2] / "results" / "reference"
CPU = torch.device("cpu")
MODEL_INFO = {"name": "small_cnn", "parameters": 1234, "training_key": "k", "checkpoint": "/ckpt", "trained_now": True,
              "training": {"train_seconds": 1.5, "history": [{"epoch": 1, "loss": 0.5}]}}
# per example, "1" = still classified correctly; fgsm and pgd break different examples, so the worst case is below both
BITS = {"fgsm": {"0": "11111110", "0.1": "11110110", "0.3": "11000110"},
        "pgd": {"0": "11111110", "0.1": "01111100", "0.3": "01000000"}}


def _outcome(robust: dict[str, str], minimal: bool = False) -> AttackOutcome:
    eps = [float(e) for e in robust]
    ranks = {e: torch.tensor([1 if b == "1" else 2 for b in bits]) for e, bits in zip(eps, robust.values())}
    return AttackOutcome(
        eps=eps, clean_ranks=ranks[0.0].clone(), ranks=ranks,
        robust_correct={e: torch.tensor([b == "1" for b in bits]) for e, bits in zip(eps, robust.values())},
        independent_accuracy=[bits.count("1") / len(bits) for bits in robust.values()],
        minimal_norms=torch.tensor([0.0, 0.05, float("inf"), 0.2, 0.1, 0.3, 0.0, 0.25]) if minimal else None,
        checks=[check("monotone_in_eps", True, "accuracy never rises with eps", n_eps=len(eps))],
        seconds=0.25, curve="descending")


@pytest.fixture(scope="module")
def setting(digits):
    protocol = load_protocol("quick", FAST)
    return protocol, make_defense(protocol, "baseline"), digits


def _record(setting, attack: str, minimal: bool = False) -> AttackRecord:
    protocol, defense, digits = setting
    model_checks = [check("repeated_passes_agree", True, "two passes agree")]
    return attack_record_of(protocol, defense, 0, make_attack(protocol, attack), digits, MODEL_INFO,
                            _outcome(BITS.get(attack, BITS["pgd"]), minimal), CPU, model_checks, None)


@pytest.fixture
def results(setting, tmp_path) -> Path:
    """A results folder with one model: fgsm and pgd records, and its summary.json."""
    protocol, defense, _ = setting
    root = tmp_path / "results"
    for attack in ("fgsm", "pgd"):
        write_record(record_path(root, protocol.name, protocol.hash, defense.name, 0, attack), _record(setting, attack))
    update_model_summary(record_path(root, protocol.name, protocol.hash, defense.name, 0, "fgsm").parent)
    return root


def _folder(results: Path) -> Path:
    (summary,) = results.rglob("summary.json")
    return summary.parent


def _worst(frame, eps: float = 0.1) -> float:
    (value,) = frame[(frame["attack"] == WORST) & (frame["threat_model"] == "linf") & (frame["eps"] == eps)]["robust_accuracy"]
    return value


# --- round trips ---------------------------------------------------------------------------------------------

def test_a_built_record_round_trips_through_its_file(setting, tmp_path):
    record = _record(setting, "pgd")
    data = record.to_dict()
    assert list(data) == ["schema", "kind", "created", "protocol", "defense", "seed", "attack", "dataset", "model", "code",
                          "environment", "timings", "metrics", "checks"]
    assert list(data["metrics"]) == ["n_examples", "curve", "clean_accuracy", "robust_accuracy", "independent_accuracy", "rank",
                                     "minimal_perturbation", "per_example"]
    assert data["metrics"]["per_example"]["robust"] == BITS["pgd"] and data["metrics"]["minimal_perturbation"] is None
    assert AttackRecord.from_dict(data, "x") == record
    path = tmp_path / "pgd.json"
    write_record(path, record)
    assert path.read_text() == json.dumps(data, indent=1) + "\n"
    assert read_record(path) == record


def test_minimal_analysis_and_summary_records_round_trip(setting, results):
    minimal = _record(setting, "fmn", minimal=True)
    assert minimal.metrics.minimal_perturbation.n_unbroken == 1
    assert AttackRecord.from_dict(minimal.to_dict(), "x") == minimal
    protocol, defense, digits = setting
    analysis = analysis_record(protocol, defense, 0, "rsa", {"layers": 3}, "Zhang et al. 2018", digits, {**MODEL_INFO, "analysed": "x"},
                               CPU, {"train_seconds": 0.0, "analysis_seconds": 2.0}, {"layers": ["a"], "rdm_spearman": [[1.0]]})
    assert analysis.kind == "analysis_rsa" and analysis.to_dict()["kind"] == "analysis_rsa"
    assert record_from_dict(analysis.to_dict(), "x") == analysis
    summary = read_record(_folder(results) / "summary.json")
    assert isinstance(summary, ModelSummary) and summary.attacks == ("fgsm", "pgd")
    assert ModelSummary.from_dict(summary.to_dict(), "x") == summary
    worst = summary.worst_case["linf"]["0.1"]
    assert worst.attacks == ("fgsm", "pgd") and worst.accuracy == 4 / 8  # 4 of the 8 examples survive both attacks
    assert [c.name for c in summary.cross_attack_checks] == ["leaderboard_suite_complete_linf", "iterative_beats_single_step"]
    assert {c.attack for c in summary.attack_checks} == {"fgsm", "pgd"}


@pytest.mark.skipif(not SHIPPED.is_dir(), reason="the repository's reference results are not here")
def test_every_shipped_record_reads_and_writes_back_byte_for_byte():
    paths = sorted(SHIPPED.rglob("*.json"))
    kinds = set()
    for path in paths:
        data = json.loads(path.read_text())
        record = record_from_dict(data, path)
        kinds.add(type(record))
        assert json.dumps(record.to_dict(), indent=1) == json.dumps(data, indent=1), path
    assert kinds == {AttackRecord, AnalysisRecord, ModelSummary}


# --- refused records ---------------------------------------------------------------------------------------------

def test_a_newer_schema_is_refused_with_what_to_do(setting, tmp_path, capsys):
    data = _record(setting, "fgsm").to_dict()
    path = tmp_path / "results" / "quick-x" / "baseline" / "seed0" / "fgsm.json"
    write_json_atomic(path, {**data, "schema": 2})
    message = (f"record {path} was written by a newer version of the harness (schema 2); "
               "this version reads schema 1: upgrade simbench-robustness")
    with pytest.raises(BenchError) as exc:
        read_record(path)
    assert str(exc.value) == message
    assert main(["report", "--results", str(tmp_path / "results"), "--out", str(tmp_path / "reports")]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("change, message", [
    ({"schema": 0}, "written by an older version of the harness (schema 0); this version reads schema 1 only"),
    ({"schema": None}, "has schema None, not a version number"),
    ({"kind": "leaderboard"}, "is of unknown kind 'leaderboard'"),
    ({"kind": None}, "has no kind"),
])
def test_other_schemas_and_unknown_kinds_are_refused(setting, tmp_path, change, message):
    path = tmp_path / "r.json"
    write_json_atomic(path, {**_record(setting, "fgsm").to_dict(), **change})
    with pytest.raises(BenchError, match=re.escape(message)) as exc:
        read_record(path)
    assert str(exc.value).startswith(f"record {path} ")
    # a stray file in a results folder stops a report rather than being skipped silently
    with pytest.raises(BenchError, match=re.escape(message)):
        list(iter_records(tmp_path, "model_summary"))


def test_a_record_without_a_schema_is_refused(tmp_path):
    path = tmp_path / "r.json"
    write_json_atomic(path, {"kind": "attack"})
    with pytest.raises(BenchError, match=f"record {path} has no schema version"):
        read_record(path)


def _without(data: dict, dotted: str) -> dict:
    data = json.loads(json.dumps(data))
    *parents, last = dotted.split(".")
    node = data
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    del node[last]
    return data


@pytest.mark.parametrize("field", ["metrics.robust_accuracy", "attack.threat_model", "protocol.hash", "checks.1.status",
                                   "metrics.per_example.robust", "defense.randomized", "seed"])
def test_a_missing_field_is_named_with_the_file(setting, tmp_path, field):
    path = tmp_path / "fgsm.json"
    write_json_atomic(path, _without(_record(setting, "fgsm").to_dict(), field))
    with pytest.raises(BenchError) as exc:
        read_record(path)
    assert str(exc.value).startswith(f"record {path}: field {field!r} is missing; it is not a valid attack record")


def test_a_wrong_field_is_named_with_its_value(setting, tmp_path):
    data = _record(setting, "fgsm").to_dict()
    data["metrics"]["robust_accuracy"]["0.1"] = "high"
    data["metrics"]["per_example"]["robust"]["0.3"] = "11x"
    path = tmp_path / "fgsm.json"
    write_json_atomic(path, data)
    with pytest.raises(BenchError, match=r"field 'metrics.robust_accuracy.0.1' is 'high', expected a number"):
        read_record(path)
    summary = summarize([_record(setting, "fgsm")]).to_dict()
    summary["worst_case"]["linf"]["0.1"]["n_examples"] = 8.5
    with pytest.raises(BenchError, match=r"record s.json: field 'worst_case.linf.0.1.n_examples' is 8.5, expected an integer; "
                                         r"it is not a valid model summary record"):
        ModelSummary.from_dict(summary, "s.json")


# --- reports read summary.json ---------------------------------------------------------------------------------

def _edit_summary(results: Path, accuracy: float, detail: str) -> None:
    path = _folder(results) / "summary.json"
    data = json.loads(path.read_text())
    data["worst_case"]["linf"]["0.1"]["accuracy"] = accuracy
    data["cross_attack_checks"][0]["detail"] = detail
    write_json_atomic(path, data)


def test_the_report_shows_a_fresh_summary_as_it_is(results, tmp_path):
    _edit_summary(results, 0.123, "DETAIL FROM SUMMARY.JSON")
    loaded = load_results(results)
    assert [m.recomputed for m in loaded.models] == [None]
    assert _worst(records_frame(results)) == 0.123
    page = write_html(results, tmp_path / "reports", [], loaded).read_text()
    assert "DETAIL FROM SUMMARY.JSON" in page and "recomputed from the records" not in page


@pytest.mark.parametrize("make_stale, reason", [
    ("newer_record", "the record(s) of pgd were written after summary.json"),
    ("other_attacks", "summary.json covers fgsm, the records fgsm, pgd"),
    ("missing", "no summary.json"),
])
def test_the_report_recomputes_a_stale_or_missing_summary(results, tmp_path, make_stale, reason):
    folder = _folder(results)
    _edit_summary(results, 0.123, "DETAIL FROM SUMMARY.JSON")
    if make_stale == "newer_record":
        pgd = read_record(folder / "pgd.json")
        write_record(folder / "pgd.json", dataclasses.replace(pgd, created="2999-01-01T00:00:00+00:00"))
    elif make_stale == "other_attacks":
        data = json.loads((folder / "summary.json").read_text())
        write_json_atomic(folder / "summary.json", {**data, "attacks": ["fgsm"]})
    else:
        (folder / "summary.json").unlink()
    loaded = load_results(results)
    (model,) = loaded.models
    assert model.recomputed == reason
    expected = summarize(model.attack_records)
    assert model.summary.worst_case == expected.worst_case and model.summary.cross_attack_checks == expected.cross_attack_checks
    assert _worst(records_frame(loaded)) == expected.worst_case["linf"]["0.1"].accuracy == 4 / 8
    page = write_html(results, tmp_path / "reports", [], loaded).read_text()
    assert "DETAIL FROM SUMMARY.JSON" not in page and f"recomputed from the records: {reason}" in page
    assert (folder / "summary.json").exists() == (make_stale != "missing")  # a report never writes results


def test_a_report_parses_every_record_once(results, tmp_path, monkeypatch):
    import bench.records.store as store
    import bench.reporting.report as report

    reads: list[Path] = []
    load = store._load_json

    def counted(path):
        reads.append(Path(path))
        return load(path)

    monkeypatch.setattr(store, "_load_json", counted)
    monkeypatch.setattr(report.plots, "accuracy_vs_eps", lambda table, out, pdf=False: [])
    monkeypatch.setattr(report.plots, "tradeoff", lambda table, out, eps, pdf=False: [])
    monkeypatch.setattr(report.plots, "details", lambda table, out: [])
    written = report.write_report(results, tmp_path / "reports", html=True)
    assert written[-1].name == "index.html"
    assert sorted(reads) == sorted(results.rglob("*.json")) and len(reads) == 3  # fgsm, pgd, summary.json
