"""A network trained elsewhere is a first-class citizen: real architectures (BatchNorm, residual
blocks) through every path (state dict, TorchScript, Python), one weights digest, the protocol's
own data and hash, and no silent wrong evaluation."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import bench.api
from bench.errors import BenchError, ConfigError
import bench.pipeline.models
from bench.api import evaluate
from bench.cli import main
from bench.models.digest import weights_digest
from bench.protocol import load_protocol
from bench.records import iter_records
from bench.records.compare import comparable_records, differences

ROOT = Path(__file__).resolve().parents[2]

RESNET = '''
import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, ResNet


def make_resnet():
    """torchvision's ResNet (BatchNorm, residual blocks; one basic block per stage: a ResNet-10) for 1x28x28 digits."""
    net = ResNet(BasicBlock, [1, 1, 1, 1], num_classes=10)
    net.conv1 = nn.Conv2d(1, 64, 3, 2, 1, bias=False)
    return net


def make_small():
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(8 * 14 * 14, 10))
'''


def _import(folder: Path, name: str):
    sys.path.insert(0, str(folder))
    try:
        return __import__(name)
    finally:
        sys.path.remove(str(folder))


def _sha(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def user_nets(digits, tmp_path_factory):
    """A ResNet-18 and a small BatchNorm CNN in a module of their own, trained a few steps on the
    training digits (so that BatchNorm's running statistics moved), weights and TorchScript on disk."""
    folder = tmp_path_factory.mktemp("nets")
    (folder / "nets.py").write_text(RESNET)
    nets = _import(folder, "nets")
    x, y = digits.train_x[:128].float() / 255, digits.train_y[:128]
    out = {}
    for name in ("make_resnet", "make_small"):
        torch.manual_seed(0)
        model = getattr(nets, name)()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        for i in range(0, len(y), 32):
            loss = nn.functional.cross_entropy(model(x[i:i + 32]), y[i:i + 32])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        torch.save(model.state_dict(), folder / f"{name}.pt")
        torch.jit.save(torch.jit.trace(model.eval(), x[:2]), str(folder / f"{name}.ts"))
        out[name] = model
    return folder, out


def test_one_weights_digest_for_every_state_dict():
    assert bench.pipeline.models.weights_digest is weights_digest and not hasattr(bench.api, "state_digest")
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Linear(3, 3))
    digest = weights_digest(net)
    assert digest == weights_digest(net.state_dict()) and len(digest) == 64
    net[1].running_mean += 1  # a buffer, not a parameter: other weights
    assert weights_digest(net) != digest
    assert net.state_dict()["1.num_batches_tracked"].dim() == 0  # the 0-dim buffer every BatchNorm has
    halves = {weights_digest(net.half()), weights_digest(net.bfloat16()), weights_digest(net.float())}
    assert len(halves) == 3  # the dtype is part of the digest
    linear = nn.Linear(3, 4)
    shared = {"w": linear.weight.t(), "b": linear.bias, "tied": linear.bias}  # non-contiguous, and one tensor twice
    assert weights_digest(shared) == weights_digest({k: v.contiguous() for k, v in shared.items()})


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                                                          reason="no CUDA GPU here"))])
def test_resnet_through_state_dict_torchscript_and_python_gives_identical_records(user_nets, tmp_path, device):
    folder, models = user_nets
    common = ["--name", "resnet", "--n", "24", "--attack", "fgsm", "--eps", "0.1", "--device", device, "--quiet"]
    assert main(["eval", "--model", f"{folder / 'nets.py'}:make_resnet", "--weights", str(folder / "make_resnet.pt"),
                 *common, "--results", str(tmp_path / "state_dict")]) == 0
    assert main(["eval", "--torchscript", str(folder / "make_resnet.ts"), *common, "--results", str(tmp_path / "ts")]) == 0
    model = _import(folder, "nets").make_resnet()
    model.load_state_dict(torch.load(folder / "make_resnet.pt", weights_only=True))
    result = evaluate(model, name="resnet", n=24, attacks=["fgsm"], eps=[0.1], device=device, results=tmp_path / "api")
    a, b, c = (comparable_records(tmp_path / k, tmp_path) for k in ("state_dict", "ts", "api"))
    assert len(a) == 2 and differences(a, c) == []  # fgsm.json, summary.json
    # the archive was traced in eval mode, the factory's module arrives in train mode: the records say so, nothing else differs
    assert [d.split(" (")[1] for d in differences(a, b)] == ["model.was_in_train_mode)"]
    (rec,) = [r for _, r in iter_records(tmp_path / "state_dict")]
    assert rec.model["weights_sha256"] == weights_digest(models["make_resnet"])  # trained weights, BatchNorm buffers included
    assert rec.model["obtained_with"].startswith("--model ") and rec.defense.user_model
    assert rec.dataset["name"] == "mnist_digits" and rec.metrics.n_examples == 24  # the protocol's own images
    assert result.clean_accuracy == rec.metrics.clean_accuracy


def test_on_the_protocols_own_data_the_records_land_under_its_hash(user_nets, tmp_path):
    folder, models = user_nets
    result = evaluate(models["make_small"], name="small_bn", attacks=["fgsm"], results=tmp_path)
    quick = load_protocol("quick")
    assert result.protocol.hash == quick.hash and result.n_examples == quick.evaluation.n_examples
    assert (tmp_path / f"quick-{quick.short_hash}" / "small_bn" / "seed0" / "fgsm.json").is_file()
    # own images with another eps grid: a derived protocol, recorded and hashed apart
    other = evaluate(models["make_small"], name="small_bn", attacks=["fgsm"], eps=[0.1], n=50)
    assert other.protocol.hash != quick.hash and other.protocol.eps_grid("linf") == [0.0, 0.1]


def test_transfer_attacks_need_the_protocols_own_data(user_nets, digits):
    _, models = user_nets
    with pytest.raises(ConfigError, match="transfers from a surrogate trained on the protocol's data"):
        evaluate(models["make_small"], digits.test_x[:20], digits.test_y[:20], attacks=["transfer_pgd"])
    # the default suite on images of one's own: the protocol's leaderboard suite without its transfer attacks,
    # and the derived protocol's leaderboard says so, so that the suite check can pass
    proto = bench.api.resolve_protocol("quick", "linf", [0.1], 20, None, own_data=False)
    assert "transfer_pgd" not in proto.leaderboard.attacks and "pgd" in proto.leaderboard.attacks


def _eval(folder: Path, results: Path, *extra: str) -> list[str]:
    return ["eval", "--model", f"{folder / 'nets.py'}:make_small", "--n", "20", "--attack", "fgsm", "--eps", "0.1",
            "--results", str(results), "--quiet", *extra]


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--name", "net"], "--model without --weights would evaluate a random initialisation"),
        (["--name", "net", "--weights", "{f}/make_small.pt", "--eps", "2"], "eps 2.0 is outside the valid range of threat model 'linf'"),
        (["--name", "net", "--weights", "{f}/make_small.pt", "--threat-model", "l2", "--attack", "pgd_l2", "--eps", "29"],
         "outside the valid range of threat model 'l2': accepted: finite numbers from 0 to 28"),
        (["--name", "baseline", "--weights", "{f}/make_small.pt"], "name 'baseline' is a registered defense's"),
        (["--name", "pixel_sim", "--weights", "{f}/make_small.pt"], "name 'pixel_sim' is a registered defense's"),
        (["--name", "a|b", "--weights", "{f}/make_small.pt"], "name 'a|b' is not accepted"),
        (["--name", "two\nlines", "--weights", "{f}/make_small.pt"], "is not accepted: use 1 to 80 letters"),
        (["--name", "../up", "--weights", "{f}/make_small.pt"], "name '../up' is not accepted"),
        (["--name", "<b>x</b>", "--weights", "{f}/make_small.pt"], "is not accepted"),
        (["--name", "net", "--weights", "{f}/make_small.pt", "--seed", "-1"], "seed = -1 is invalid; accepted: an integer from 0 to"),
        (["--name", "net", "--weights", "{f}/make_small.pt", "--random-init"], "--random-init goes with --model and without --weights"),
    ],
)
def test_silent_wrong_evaluations_are_refused_in_one_line(user_nets, tmp_path, capsys, args, fragment):
    folder, _ = user_nets
    (tmp_path / "results").mkdir()
    before = _sha(tmp_path)
    status = main(_eval(folder, tmp_path / "results", *[a.format(f=folder) for a in args]))
    err = capsys.readouterr().err
    assert status == 2 and fragment in err and len(err.strip().splitlines()) == 1, err
    assert _sha(tmp_path) == before  # nothing written


def test_a_shipped_references_name_is_refused(user_nets, tmp_path, capsys, monkeypatch):
    folder, _ = user_nets
    (tmp_path / "results" / "reference" / "quick-0123456789ab" / "someones_net" / "seed0").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert main(_eval(folder, Path("results"), "--name", "someones_net", "--weights", str(folder / "make_small.pt"))) == 2
    assert "is a shipped reference's" in capsys.readouterr().err


def test_a_second_network_under_the_same_name_is_refused_unless_forced(user_nets, tmp_path, capsys):
    folder, _ = user_nets
    results = tmp_path / "results"
    assert main(_eval(folder, results, "--name", "net", "--weights", str(folder / "make_small.pt"))) == 0
    first = _sha(results)
    assert main(_eval(folder, results, "--name", "net", "--weights", str(folder / "make_small.pt"))) == 0  # same weights: reused
    assert _sha(results) == first
    assert main(_eval(folder, results, "--name", "net", "--random-init")) == 2  # other weights
    err = capsys.readouterr().err
    assert "measured a model with weights" in err and "--force" in err and len(err.strip().splitlines()) == 1
    assert _sha(results) == first
    assert main(_eval(folder, results, "--name", "net", "--random-init", "--force")) == 0
    (rec,) = [r for _, r in iter_records(results)]
    assert rec.model["obtained_with"].endswith("--random-init")
    # in Python: writing the records of other weights under a taken name is refused the same way
    model = _import(folder, "nets").make_small()
    result = evaluate(model, name="net", n=20, attacks=["fgsm"], eps=[0.1])
    with pytest.raises(BenchError, match="measured a model with weights"):
        result.to_record(results)


@pytest.mark.slow
def test_a_users_batchnorm_network_is_ranked_beside_the_shipped_references(digits, tmp_path):
    """The README's promise, end to end: a network the project has never seen, with BatchNorm, trained
    briefly on the quick protocol's training split, evaluated by `bench eval` with the defaults (the
    protocol's own images, eps grid and whole leaderboard suite), ranked in the same leaderboard as
    the shipped references."""
    from bench.pipeline import load_data

    (tmp_path / "bn_net.py").write_text(RESNET)
    nets = _import(tmp_path, "bn_net")
    torch.manual_seed(0)
    model = nets.make_small()
    split = load_data(load_protocol("quick"))
    x = split.dataset.train_x[split.train_indices].float() / 255
    y = split.dataset.train_y[split.train_indices]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for _ in range(3):
        for i in range(0, len(y), 64):
            loss = nn.functional.cross_entropy(model(x[i:i + 64]), y[i:i + 64])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    torch.save(model.state_dict(), tmp_path / "bn_net.pt")
    results, checkpoints = tmp_path / "results", tmp_path / "checkpoints"
    assert main(["eval", "--model", f"{tmp_path / 'bn_net.py'}:make_small", "--weights", str(tmp_path / "bn_net.pt"),
                 "--name", "bn_net", "--results", str(results), "--checkpoints", str(checkpoints), "--quiet"]) == 0
    quick = load_protocol("quick")
    folder = results / f"quick-{quick.short_hash}" / "bn_net" / "seed0"
    assert sorted(p.stem for p in folder.glob("*.json")) == sorted([*quick.suite(), "summary"])
    assert main(["report", "--results", str(results), "--out", str(tmp_path / "reports"),
                 "--with-references", str(ROOT / "results" / "reference")]) == 0
    board = (tmp_path / "reports" / "leaderboard.md").read_text()
    section = board.split(f"## quick (hash {quick.short_hash}), linf", 1)[1].split("\n## ", 1)[0]
    ranked = section.split("Provisional", 1)[0].split("Not ranked", 1)[0]
    assert "| baseline [reference] |" in ranked and "| adv_train [reference] |" in ranked
    row = [line for line in ranked.splitlines() if "| bn_net |" in line]
    assert row and row[0].split("|")[1].strip().isdigit(), section  # ranked: a number in the rank column
    assert "clean Δ vs baseline [reference]" in section
