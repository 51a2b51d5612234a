"""Bring your own model: ``bench.evaluate`` and ``bench eval`` on a network the project has never seen."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from bench.api import evaluate
from bench.cli import main
from bench.errors import BenchError
from bench.records import iter_records
from bench.records.compare import comparable_records, differences

README = Path(__file__).resolve().parents[2] / "README.md"
NET = '''
from torch import nn


def make():
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 14 * 14, 10))


def make_wider():
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 14 * 14, 10))


def not_a_model():
    return 3
'''


@pytest.fixture(scope="module")
def user_model(digits, tmp_path_factory):
    """A network defined in a module of its own, trained briefly, its weights and 120 test images on disk."""
    folder = tmp_path_factory.mktemp("user")
    (folder / "user_net.py").write_text(NET)
    sys.path.insert(0, str(folder))
    try:
        import user_net
    finally:
        sys.path.remove(str(folder))
    torch.manual_seed(0)
    model = user_net.make()
    x, y = digits.train_x[:1500].float() / 255, digits.train_y[:1500]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for i in range(0, len(y), 50):
        loss = torch.nn.functional.cross_entropy(model(x[i:i + 50]), y[i:i + 50])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    torch.save(model.state_dict(), folder / "weights.pt")
    np.savez(folder / "digits.npz", x=digits.test_x[:120].numpy(), y=digits.test_y[:120].numpy())
    return folder, model, digits.test_x[:120], digits.test_y[:120]


@pytest.mark.slow
def test_api_and_cli_evaluate_an_unseen_network_with_identical_records(user_model, tmp_path):
    folder, model, x, y = user_model
    assert model.training  # as a user leaves it after training
    result = evaluate(model, x, y, threat_model="linf", eps=[0.1, 0.2], attacks=["fgsm", "pgd"], name="user_net",
                      data_name="digits", data_source="digits.npz")
    assert result.switched_to_eval and not model.training
    assert 0.8 < result.clean_accuracy <= 1 and result.robust_accuracy[0.0] == pytest.approx(result.clean_accuracy)
    assert result.robust_accuracy[0.2] <= min(result.per_attack["pgd"][0.2], result.per_attack["fgsm"][0.2]) + 1e-9
    low, high = result.interval(0.1)
    assert low <= result.robust_accuracy[0.1] <= high and 0 < high - low < 0.3
    assert {c["name"] for c in result.checks} >= {"gradients_informative", "unbounded_attack_succeeds", "eps_zero_matches_clean"}
    api_paths = result.to_record(tmp_path / "api")
    (pgd,) = [rec for _, rec in iter_records(tmp_path / "api") if rec.attack.name == "pgd"]
    assert pgd.model["was_in_train_mode"] is True and pgd.model["evaluated_in_eval_mode"] is True
    assert pgd.protocol.config["threat_models"]["linf"]["eps"] == [0.0, 0.1, 0.2] and pgd.metrics.n_examples == 120

    status = main(["eval", "--model", f"{folder / 'user_net.py'}:make", "--weights", str(folder / "weights.pt"),
                   "--data", str(folder / "digits.npz"), "--name", "user_net", "--attack", "fgsm", "--attack", "pgd",
                   "--eps", "0.1", "--eps", "0.2", "--results", str(tmp_path / "cli"), "--quiet"])
    assert status == 0
    a, b = comparable_records(tmp_path / "api", tmp_path), comparable_records(tmp_path / "cli", tmp_path)
    assert len(a) == len(api_paths) == 3 and differences(a, b) == []  # fgsm, pgd, summary
    assert main(["report", "--results", str(tmp_path / "cli"), "--out", str(tmp_path / "reports")]) == 0
    assert "| user_net |" in (tmp_path / "reports" / "leaderboard.md").read_text()


def test_a_factory_in_a_module_beside_the_working_directory(user_model, tmp_path, monkeypatch):
    folder = user_model[0]
    monkeypatch.chdir(folder)  # like --plugin: the current directory is searched first
    status = main(["eval", "--model", "user_net:make", "--weights", "weights.pt", "--data", "digits.npz", "--n", "40",
                   "--name", "from_module", "--attack", "fgsm", "--eps", "0.1", "--results", str(tmp_path), "--quiet"])
    assert status == 0 and len(list(tmp_path.rglob("from_module/seed0/fgsm.json"))) == 1


def test_torchscript_archive_is_evaluated_like_the_module(user_model, tmp_path, capsys):
    folder, model, x, y = user_model
    torch.jit.save(torch.jit.trace(model.eval(), x[:2].float() / 255), str(folder / "net.ts"))
    status = main(["eval", "--torchscript", str(folder / "net.ts"), "--data", str(folder / "digits.npz"), "--name", "ts",
                   "--attack", "fgsm", "--eps", "0.1", "--results", str(tmp_path)])
    assert status == 0
    out = capsys.readouterr().out
    assert re.search(r"ts: clean 0\.\d+; worst case over fgsm \(95 % Wilson interval over 120 images\)", out)


def test_image_folder_and_registered_data_set(user_model, tmp_path):
    from PIL import Image

    folder, model, x, y = user_model
    for i, (image, label) in enumerate(zip(x[:20], y[:20])):
        (tmp_path / "imgs" / f"class{int(label)}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(image[0].numpy()).save(tmp_path / "imgs" / f"class{int(label)}" / f"{i}.png")
    from bench.api import load_evaluation_data

    xs, ys, name, source = load_evaluation_data(str(tmp_path / "imgs"))
    assert xs.shape[1:] == (1, 28, 28) and len(ys) == 20 and name == "imgs" and "classes: class" in source
    order = sorted(range(20), key=lambda i: (f"class{int(y[i])}", f"{i}.png"))
    present = sorted({int(v) for v in y[:20]})
    assert [present[int(v)] for v in ys] == [int(y[i]) for i in order]  # folder order, labels by sorted class name
    xd, yd, name, _ = load_evaluation_data("mnist_digits", n=50)
    assert name == "mnist_digits" and xd.shape == (50, 1, 28, 28) and xd.dtype == torch.uint8


@pytest.mark.parametrize(
    "images, labels, fragment",
    [
        (lambda x: x.float() / 127.5 - 1, None, "images must lie in [0, 1], got values from -1 to 1: put the normalisation inside"),
        (lambda x: x.float().repeat(1, 3, 1, 1) / 255, None, "the model does not accept images of shape [3, 28, 28]"),
        (None, lambda y: y + 5, "labels go up to 14, but the model returns 10 logits per image"),
        (None, lambda y: y[:10], "labels must have one entry per image: 120 images, 10 labels"),
        (lambda x: x.float() * float("nan"), None, "images contain NaN"),
    ],
)
def test_bad_inputs_are_refused_with_what_was_expected(user_model, images, labels, fragment):
    _, model, x, y = user_model
    with pytest.raises(BenchError) as info:
        evaluate(model, images(x) if images else x, labels(y) if labels else y, eps=[0.1], attacks=["fgsm"])
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--model", "{f}/user_net.py:make_wider", "--weights", "{f}/weights.pt"], "does not match the model's architecture"),
        (["--model", "{f}/user_net.py:make", "--weights", "{f}/corrupt.pt"], "cannot read"),
        (["--model", "{f}/user_net.py:missing", "--random-init"], "has no function 'missing'; it has: make, make_wider, not_a_model"),
        (["--model", "{f}/user_net.py:not_a_model", "--random-init"], "returned int, not a torch.nn.Module"),
        (["--model", "{f}/user_net.py", "--random-init"], "must look like path/to/file.py:factory"),
        (["--torchscript", "{f}/corrupt.pt"], "cannot read"),
        (["--model", "{f}/user_net.py:make", "--random-init", "--data-file", "{f}/corrupt.npz"], "cannot read"),
        (["--model", "{f}/user_net.py:make", "--random-init", "--data-file", "{f}/no_y.npz"], "needs arrays 'x' and 'y'; missing y"),
    ],
)
def test_bad_files_get_one_line_errors(user_model, tmp_path, capsys, args, fragment):
    folder = user_model[0]
    (folder / "corrupt.pt").write_bytes(b"not a checkpoint")
    (folder / "corrupt.npz").write_bytes(b"not an npz")
    np.savez(folder / "no_y.npz", x=np.zeros((2, 28, 28), np.uint8))
    args = [a.format(f=folder) for a in args]
    data = str(folder / "digits.npz")
    if "--data-file" in args:
        i = args.index("--data-file")
        data = args.pop(i + 1)
        args.pop(i)
    status = main(["eval", *args, "--data", data, "--name", "x", "--attack", "fgsm", "--eps", "0.1",
                   "--results", str(tmp_path)])
    err = capsys.readouterr().err
    assert status == 2 and fragment in err and len(err.strip().splitlines()) == 1, err


def test_readme_evaluate_example_runs_verbatim(tmp_path):
    match = re.search(r"<!-- example: evaluate.py -->\n```python\n(.*?)```\n<!-- end example -->", README.read_text(), re.S)
    assert match, "README example evaluate.py not found"
    (tmp_path / "example.py").write_text(match.group(1))
    out = subprocess.run([sys.executable, "example.py"], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert re.search(r"clean 0\.\d{3}, robust at eps 0\.1: 0\.\d{3} \[0\.\d{3}, 0\.\d{3}\]", out.stdout)
    assert len(list((tmp_path / "results").rglob("my_mlp/seed0/pgd.json"))) == 1
    assert textwrap.dedent(match.group(1)).count("evaluate(") == 1
