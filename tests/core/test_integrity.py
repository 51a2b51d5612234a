"""Nothing from outside corrupts a result: bad protocol files, overrides, command-line values, records,
checkpoints, data files, names and grids are each refused in one line (exit 2, no traceback) before
anything already written changes; bad records are moved aside, kept, and recomputed; two processes on
one model never leave records of two networks."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.cli import main
from bench.protocol import load_protocol
from bench.records import iter_records, read_record, write_record
from fast_protocol import TINY

ROOT = Path(__file__).resolve().parents[2]
QUICK = (ROOT / "bench" / "protocols" / "quick.yaml").read_text()


def _sets(overrides):
    return [arg for o in overrides for arg in ("--set", o)]


def _files(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*"))
            if p.is_file() and ".locks" not in p.parts}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One tiny baseline run with FGSM: a results folder with a real record, and its checkpoint."""
    work = tmp_path_factory.mktemp("tiny")
    args = ["run", "--results", str(work / "results"), "--checkpoints", str(work / "ckpt"), "--quiet", "--attack", "fgsm",
            *_sets(TINY)]
    assert main(args) == 0
    (record,) = (work / "results").rglob("fgsm.json")
    (final,) = (work / "ckpt").rglob("final.pt")
    return work, args, record, final


# -- the table: (what, how to make the bad input in folder f, the command, a fragment of the one-line error)

def _protocol_file(f: Path, edit) -> str:
    config = yaml.safe_load(QUICK)
    edit(config)
    (f / "p.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return str(f / "p.yaml")


def _rename(section: str | None, old: str, new: str):
    def edit(config):
        node = config if section is None else config
        for part in (section.split(".") if section else []):
            node = node[part]
        node[new] = node.pop(old)
    return edit


def _set(path: str, value):
    def edit(config):
        node = config
        *parts, leaf = path.split(".")
        for part in parts:
            node = node[part]
        node[leaf] = value
    return edit


def _record_edit(change):
    def make(f: Path, tiny) -> list[str]:
        work, _, record, _ = tiny
        results = f / "results"
        shutil.copytree(work / "results", results)
        target = results / record.relative_to(work / "results")
        change(target)
        return ["report", "--results", str(results), "--out", str(f / "reports")]
    return make


def _json_edit(edit):
    def change(path: Path):
        data = json.loads(path.read_text())
        edit(data)
        path.write_text(json.dumps(data))
    return change


def _protocol_case(edit, *extra):
    return lambda f, tiny: ["run", "--protocol", _protocol_file(f, edit), "--results", str(f / "r"), *extra]


def _run(*args):
    return lambda f, tiny: ["run", "--results", str(f / "r"), "--checkpoints", str(f / "c"), *args]


def _eval(*args, weights=True):
    def make(f: Path, tiny) -> list[str]:
        (f / "net.py").write_text("from torch import nn\n\ndef make():\n    return nn.Sequential(nn.Flatten(), nn.Linear(784, 10))\n")
        torch.save(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10)).state_dict(), f / "w.pt")
        return ["eval", "--model", f"{f / 'net.py'}:make", *(["--weights", str(f / "w.pt")] if weights else []),
                "--results", str(f / "r"), "--attack", "fgsm", *[a.format(f=f) for a in args]]
    return make


def _write(name: str, content: bytes | str):
    def make(f: Path) -> None:
        (f / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    return make


def _wrong_checkpoint(f: Path, tiny) -> list[str]:
    work, args, _, final = tiny
    shutil.copytree(work / "ckpt", f / "ckpt")
    copy = f / "ckpt" / final.relative_to(work / "ckpt")
    state = torch.load(copy, weights_only=True)
    state["model"] = {k: torch.zeros(1) for k in state["model"]}  # a valid dict, of other shapes
    torch.save(state, copy)
    return ["run", "--results", str(f / "results"), "--checkpoints", str(f / "ckpt"), "--quiet", "--attack", "fgsm", *_sets(TINY)]


def _grid(text: str):
    def make(f: Path, tiny) -> list[str]:
        (f / "grid.yaml").write_text(text)
        return ["sweep", str(f / "grid.yaml"), "--results", str(f / "r"), "--dry-run"]
    return make


CASES = [
    # protocol files
    ("unknown top-level key", _protocol_case(lambda c: c.update(bogus=1)), "unknown key(s) protocol"),
    ("misspelled leaderboard", _protocol_case(_rename(None, "leaderboard", "leaderbord")), "did you mean 'leaderboard'?"),
    ("misspelled defenses", _protocol_case(_rename(None, "defenses", "defences")), "did you mean 'defenses'?"),
    ("misspelled training key", _protocol_case(_rename("training", "epochs", "epoch")), "did you mean 'epochs'?"),
    ("misspelled evaluation key", _protocol_case(_rename("evaluation", "curve", "curv")), "did you mean 'curve'?"),
    ("misspelled eps key", _protocol_case(_rename("threat_models.linf", "eps", "esp")), "did you mean 'eps'?"),
    ("misspelled convergence key", _protocol_case(_rename("leaderboard.convergence", "steps_factor", "step_factor")),
     "did you mean 'steps_factor'?"),
    ("version 0", _protocol_case(_set("version", 0)), "version must be an integer >= 1"),
    ("negative seed", _protocol_case(_set("seeds", [-1])), "each of seeds = -1 is invalid"),
    ("name with a path", _protocol_case(_set("name", "../up")), "name '../up' is not accepted"),
    ("unsorted eps", _protocol_case(_set("threat_models.linf.eps", [0.0, 0.2, 0.1])), "sorted ascending"),
    ("negative model width", _protocol_case(_set("model.width", -3)), "the model section small_cnn {'width': -3} does not build"),
    ("non-numeric alpha of another defense", _protocol_case(_set("defenses.pixel_sim.alpha", "x")),
     "parameter 'alpha' = 'x' is invalid"),
    ("zero PGD steps", _protocol_case(_set("attacks.pgd.steps", 0)), "parameter 'steps' = 0 is invalid"),
    ("not YAML", lambda f, t: ["run", "--protocol", str(_write("p.yaml", "a: [1, 2\n")(f) or f / "p.yaml"),
                               "--results", str(f / "r")], "is not valid YAML"),
    ("a list, not a mapping", lambda f, t: ["run", "--protocol", str(_write("p.yaml", "- 1\n")(f) or f / "p.yaml"),
                                            "--results", str(f / "r")], "must be a mapping at the top level"),
    # overrides
    ("override width 0", _run("--set", "model.width=0"), "does not build"),
    ("override negative lr", _run("--set", "training.lr=-1e-3"), "training.lr = -0.001 is invalid"),
    ("override unknown key", _run("--set", "training.optimiser=sgd"), "unknown protocol key 'training.optimiser'"),
    ("override oversized n_examples", _run("--set", "evaluation.n_examples=1000000"), "exceeds the 1000 test images"),
    ("override name traversal", _run("--set", "name=.."), "name '..' is not accepted"),
    ("override wrong type", _run("--set", "training.epochs=x"), "training.epochs is an integer"),
    ("override without =", _run("--set", "training.epochs"), "must look like key=value"),
    # command-line values
    ("negative seed", _run("--seed", "-1"), "--seed = -1 is invalid"),
    ("unknown defense", _run("--defense", "nope"), "unknown defense 'nope'"),
    ("unknown attack", _run("--attack", "nope"), "unknown attack 'nope'"),
    ("eval eps above 1", _eval("--eps", "2", "--name", "net"), "outside the valid range of threat model 'linf'"),
    ("eval name with a pipe", _eval("--name", "a|b"), "name 'a|b' is not accepted"),
    ("eval name with HTML", _eval("--name", "<b>x</b>"), "is not accepted"),
    ("eval name of a defense", _eval("--name", "baseline"), "is a registered defense's"),
    ("eval without weights", _eval("--name", "net", weights=False), "would evaluate a random initialisation"),
    ("eval n 0", _eval("--name", "net", "--n", "0"), "n must be an integer >= 1"),
    # records
    ("truncated record", _record_edit(lambda p: p.write_text(p.read_text()[:200])), "is unreadable"),
    ("clean accuracy 1.7", _record_edit(_json_edit(lambda d: d["metrics"].update(clean_accuracy=1.7))),
     "metrics.clean_accuracy is 1.7, expected an accuracy in [0, 1]"),
    ("NaN accuracy", _record_edit(lambda p: p.write_text(p.read_text().replace('"clean_accuracy": ', '"clean_accuracy": NaN, "x": ', 1))),
     "expected an accuracy in [0, 1]"),
    ("eps key abc", _record_edit(_json_edit(lambda d: d["metrics"]["robust_accuracy"].update(abc=0.5))), "eps key 'abc'"),
    ("negative n", _record_edit(_json_edit(lambda d: d["metrics"].update(n_examples=-5))), "expected at least 1"),
    ("outcomes disagree", _record_edit(_json_edit(lambda d: d["metrics"]["per_example"].update(
        clean="1" * len(d["metrics"]["per_example"]["clean"])))), "per-example outcomes give"),
    ("foreign protocol hash", _record_edit(_json_edit(lambda d: d["protocol"].update(hash="0" * 64))),
     "but lies in the folder"),
    ("newer schema", _record_edit(_json_edit(lambda d: d.update(schema=99))), "newer version of the harness"),
    # checkpoints and weights
    ("checkpoint of other shapes", _wrong_checkpoint, "does not fit this protocol's model"),
    ("corrupt weights file", _eval("--name", "net", "--weights", "{f}/bad.pt"), "cannot read"),
    # data files
    ("text file as .npz", lambda f, t: _eval("--name", "net", "--data", str(_write("x.npz", "hello")(f) or f / "x.npz"))(f, t),
     "cannot read"),
    ("npz without y", lambda f, t: (np.savez(f / "noy.npz", x=np.zeros((2, 28, 28), np.uint8)),
                                    _eval("--name", "net", "--data", str(f / "noy.npz"))(f, t))[1], "missing y"),
    ("missing data file", _eval("--name", "net", "--data", "{f}/none.npz"), "does not exist"),
    # sweep grids
    ("grid with an unknown key", _grid("protocol: quick\ndefenses: [baseline]\nsedes: [0]\n"), "sedes"),
    ("grid with a negative seed", _grid("protocol: quick\ndefenses: [baseline]\nseeds: [-1]\n"), "each of seeds = -1 is invalid"),
]


@pytest.mark.parametrize("what, make, fragment", CASES, ids=[c[0] for c in CASES])
def test_every_bad_input_is_one_line_exit_2_and_changes_nothing(what, make, fragment, tiny_run, tmp_path, capsys):
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    args = make(tmp_path, tiny_run)
    before = _files(tmp_path)
    status = main(args)
    err = capsys.readouterr().err
    assert status == 2, (what, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bench: error: ") and "Traceback" not in err, (what, err)
    assert fragment in err, (what, err)
    after = _files(tmp_path)
    assert {k: v for k, v in after.items() if k in before} == before, what  # nothing already written changed
    assert not [k for k in after if k not in before and k.endswith((".json", ".pt"))], what  # and nothing written


def test_the_table_covers_forty_bad_inputs():
    assert len(CASES) >= 40


@pytest.mark.parametrize("change, reason", [
    (lambda p: p.write_text(p.read_text()[:100]), "unreadable"),
    (_json_edit(lambda d: d["metrics"].update(clean_accuracy=1.7)), "clean_accuracy is 1.7"),
    ("foreign", "but lies in the folder"),
])
def test_a_bad_record_is_moved_aside_kept_and_recomputed(change, reason, tiny_run, tmp_path, capsys):
    work, args, record, _ = tiny_run
    results = tmp_path / "results"
    shutil.copytree(work / "results", results)
    target = results / record.relative_to(work / "results")
    original = read_record(target)
    if change == "foreign":  # a record of another protocol hash copied into this model's folder
        data = json.loads(target.read_text())
        data["protocol"]["hash"] = "f" * 64
        target.write_text(json.dumps(data))
    else:
        change(target)
    bad = target.read_bytes()
    run = [a if a != str(work / "results") else str(results) for a in args]
    assert main(run) == 0
    err = capsys.readouterr().err
    assert f"record {target} cannot be trusted" in err and reason in err and "recomputing it" in err
    (aside,) = target.parent.glob("fgsm.json.rejected-*")
    assert aside.read_bytes() == bad  # kept as it was
    again = read_record(target)
    assert again.metrics == original.metrics  # the same weights and seed give the same record
    assert len([p for p, _ in iter_records(results)]) == 1


# -- property-based: overrides and record round trips

NUMERIC_OVERRIDES = {"training.epochs": st.integers(1, 50), "training.lr": st.floats(1e-6, 10, allow_nan=False),
                     "training.momentum": st.floats(0, 0.999), "evaluation.n_examples": st.integers(1, 1000),
                     "training.batch_size": st.integers(1, 512)}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(sorted(NUMERIC_OVERRIDES)), data=st.data(), scientific=st.booleans())
def test_numeric_overrides_round_trip_as_numbers(key, data, scientific):
    value = data.draw(NUMERIC_OVERRIDES[key])
    text = f"{value:e}" if scientific and isinstance(value, float) else repr(value)
    protocol = load_protocol("quick", [f"{key}={text}"])
    section, leaf = key.split(".")
    got = protocol.config[section][leaf]
    assert got == pytest.approx(float(text)) and isinstance(got, (int, float)) and not isinstance(got, bool)
    assert protocol.hash != load_protocol("quick").hash or got == yaml.safe_load(QUICK)[section][leaf]


@settings(max_examples=25, deadline=None)
@given(key=st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12))
def test_unknown_training_keys_are_always_refused(key):
    from bench.errors import ConfigError

    if key in ("epochs", "batch_size", "lr", "optimizer", "momentum", "weight_decay", "schedule", "augment", "grad_clip"):
        return
    with pytest.raises(ConfigError):
        load_protocol("quick", [f"training.{key}=1"])


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flips=st.lists(st.integers(0, 19), max_size=20, unique=True))
def test_records_round_trip_and_reject_inconsistent_outcomes(tiny_run, tmp_path_factory, flips):
    from bench.errors import BenchError

    work, _, record, _ = tiny_run
    rec = read_record(record)
    folder = tmp_path_factory.mktemp("rt") / record.relative_to(work / "results").parent
    copy = folder / record.name
    write_record(copy, rec)
    assert read_record(copy) == rec  # what is written reads back as the same typed record
    data = json.loads(copy.read_text())
    bits = list(data["metrics"]["per_example"]["clean"])
    for i in flips:
        if i < len(bits):
            bits[i] = "1" if bits[i] == "0" else "0"
    data["metrics"]["per_example"]["clean"] = "".join(bits)
    copy.write_text(json.dumps(data))
    if "".join(bits).count("1") != rec.metrics.per_example.clean.count("1"):  # the accuracy no longer agrees
        with pytest.raises(BenchError, match="per-example outcomes give"):
            read_record(copy)
    else:  # as many right as before: consistent, and read as written
        assert read_record(copy).metrics.per_example.clean == "".join(bits)


# -- two processes on one model

@pytest.mark.slow
def test_two_processes_on_one_model_never_leave_two_networks(tmp_path):
    """The concurrency case, ten times: two `bench run` of one defense and seed, started together on one
    results and checkpoints folder with different thread counts and attacks."""
    sets = _sets(TINY)
    for rep in range(10):
        results, checkpoints = tmp_path / f"r{rep}", tmp_path / f"c{rep}"
        procs = []
        for threads, attack in ((1, "pgd"), (2, "fgsm")):
            env = {**__import__("os").environ, "OMP_NUM_THREADS": str(threads)}
            procs.append(subprocess.Popen([sys.executable, "-m", "bench.cli", "run", "--results", str(results), "--checkpoints",
                                           str(checkpoints), "--attack", attack, "--quiet", *sets],
                                          cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        outs = [p.communicate(timeout=600) for p in procs]
        assert [p.returncode for p in procs] == [0, 0], outs
        digests = {rec.model["weights_sha256"] for _, rec in iter_records(results)}
        (final,) = checkpoints.rglob("final.pt")
        from bench.models.digest import weights_digest

        assert len(digests) == 1, (rep, digests)  # one network per model folder
        assert digests == {rec.model["weights_sha256"] for _, rec in iter_records(results)}
        state = torch.load(final, weights_only=True)["model"]
        assert weights_digest(state) == next(iter(digests)), rep  # the checkpoint is the network the records measured
