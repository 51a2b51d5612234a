"""The ``attias`` protocol end to end on CPU, on a small CIFAR-10 copy in the exact on-disk format.

The data are 300 training and 60 test images written as CIFAR-10's python pickles
(``cifar-10-batches-py/data_batch_1..5``, ``test_batch``, ``batches.meta``); every change to
the shipped protocol (data root, epochs, width, number of examples) is an override made here.
Checked: the luma conversion, the 5(x - 0.5) input scaling inside the model, the cyclic
learning rate per epoch, the frozen crop+flip of the regularisation images, the best-validation
checkpoint and the record, for ``baseline``, ``pixel_sim`` and ``neural_sim``.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from bench.cli import main
from bench.data.augment import augment
from bench.data.base import to_float
from bench.defenses.similarity import SimilarityDefense
from bench.pipeline import build_model, load_data
from bench.protocol import load_protocol
from bench.records import read_record, record_path
from bench.training.checkpoint import load_checkpoint
from bench.training.loop import learning_rate
from regularizers import SimilarityRegularizer, pixel_similarity, threshold_similarity

N_PER_BATCH, N_TEST, N_REG, N_EVAL = 60, 60, 100, 20
EPOCHS = {"baseline": 5, "pixel_sim": 2, "neural_sim": 2}  # 5: the lr drops after the 4th epoch


def cyclic(epoch: int) -> float:
    """The reference's schedule, 0-based epochs: 0.1 * 0.3^floor((epoch mod 20) / 4)."""
    return 0.1 * 0.3 ** ((epoch % 20) // 4)


def write_cifar10_copy(folder: Path) -> dict[str, np.ndarray]:
    """5 x 60 training and 60 test images as CIFAR-10's pickled batches: rows of 3072 bytes, the
    R, G and B planes of a 32 x 32 image one after the other. Pixels: a class colour plus noise,
    and training image 0 made of three constant planes."""
    rng = np.random.default_rng(0)
    colours = rng.integers(40, 216, (10, 3))

    def images(labels: np.ndarray) -> np.ndarray:
        noise = rng.integers(-40, 41, (len(labels), 3, 1024))
        return np.clip(colours[labels][:, :, None] + noise, 0, 255).astype(np.uint8).reshape(len(labels), 3072)

    train_y, test_y = rng.integers(0, 10, 5 * N_PER_BATCH), rng.integers(0, 10, N_TEST)
    train_x, test_x = images(train_y), images(test_y)
    train_x[0, :1024], train_x[0, 1024:2048], train_x[0, 2048:] = 200, 50, 10
    folder.mkdir(parents=True)
    for b in range(5):
        part = slice(b * N_PER_BATCH, (b + 1) * N_PER_BATCH)
        batch = {b"batch_label": f"training batch {b + 1} of 5".encode(), b"labels": train_y[part].tolist(),
                 b"data": train_x[part], b"filenames": [f"img{i}.png".encode() for i in range(part.start, part.stop)]}
        (folder / f"data_batch_{b + 1}").write_bytes(pickle.dumps(batch, protocol=2))
    test = {b"batch_label": b"testing batch 1 of 1", b"labels": test_y.tolist(), b"data": test_x,
            b"filenames": [f"test{i}.png".encode() for i in range(N_TEST)]}
    (folder / "test_batch").write_bytes(pickle.dumps(test, protocol=2))
    meta = {b"label_names": [name.encode() for name in ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
                                                       "horse", "ship", "truck")], b"num_cases_per_batch": N_PER_BATCH,
            b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return {"train_x": train_x, "train_y": train_y, "test_x": test_x, "test_y": test_y}


@pytest.fixture(scope="module")
def cifar(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    return root, write_cifar10_copy(root / "cifar-10-batches-py")


def overrides(root: Path, defense: str) -> list[str]:
    sets = [f"dataset.root={root}", "dataset.val_fraction=0.1", f"training.epochs={EPOCHS[defense]}", "model.width=8",
            f"evaluation.n_examples={N_EVAL}", f"evaluation.batch_size={N_EVAL}"]
    if defense != "baseline":
        sets.append(f"defenses.{defense}.n_images={N_REG}")
    return sets


class Spy:
    """What the similarity defenses build and feed the model: each objective with its context,
    and every pair batch drawn in training."""

    def __init__(self, patch: pytest.MonkeyPatch):
        self.objectives: list[tuple[object, object]] = []
        self.pair_batches: list = []
        build, sample = SimilarityDefense.objective, SimilarityRegularizer.sample_pair_batch

        def objective(defense, ctx):
            out = build(defense, ctx)
            self.objectives.append((ctx, out))
            return out

        def sample_pair_batch(reg, k, generator=None):
            pairs = sample(reg, k, generator)
            self.pair_batches.append(pairs)
            return pairs

        patch.setattr(SimilarityDefense, "objective", objective)
        patch.setattr(SimilarityRegularizer, "sample_pair_batch", sample_pair_batch)


def run_attias(root: Path, work: Path, defense: str) -> dict:
    sets = overrides(root, defense)
    args = ["run", "--protocol", "attias", "--defense", defense, "--attack", "fgsm", "--seed", "0", "--device", "cpu",
            "--results", str(work / "results"), "--checkpoints", str(work / "ckpt"), "--quiet"]
    with pytest.MonkeyPatch.context() as patch:
        spy = Spy(patch)
        assert main([*args, *[a for s in sets for a in ("--set", s)]]) == 0
    protocol = load_protocol("attias", sets)
    path = record_path(work / "results", "attias", protocol.hash, defense, 0, "fgsm")
    return {"protocol": protocol, "record_path": path, "record": json.loads(path.read_text()), "spy": spy}


@pytest.fixture(scope="module", params=["baseline", "pixel_sim", "neural_sim"])
def attias_run(request, cifar, tmp_path_factory):
    out = run_attias(cifar[0], tmp_path_factory.mktemp(request.param), request.param)
    return {**out, "defense": request.param}


# --- the protocol as shipped -----------------------------------------------------------------------


def test_shipped_protocol_is_the_reference_recipe():
    p = load_protocol("attias")
    assert (p.dataset.name, p.dataset.options["grayscale"], p.dataset.val_fraction) == ("cifar10", True, 0.01)
    assert p.model.name == "resnet18" and {k: list(v) for k, v in p.model.normalization.items()} == {"mean": [0.5], "std": [0.2]}
    t = p.training
    assert (t.epochs, t.batch_size, t.optimizer, t.lr, t.momentum, t.schedule, t.augment) == (40, 64, "sgd", 0.1, 0.9, "cyclic", "crop_flip")
    rates = [learning_rate(t, epoch) for epoch in range(40)]
    assert rates == pytest.approx([cyclic(epoch) for epoch in range(40)], rel=1e-12)
    steps = [0.1, 0.03, 0.009, 0.0027, 0.00081]
    assert rates == pytest.approx([lr for _ in range(2) for lr in steps for _ in range(4)], rel=1e-12)  # restarts at 20


# --- data ------------------------------------------------------------------------------------------


def test_cifar10_copy_loads_as_luma(cifar):
    root, arrays = cifar
    protocol = load_protocol("attias", overrides(root, "baseline"))
    data = load_data(protocol)
    ds = data.dataset
    assert ds.source == str((root / "cifar-10-batches-py").resolve()) and ds.info["grayscale"] is True
    assert ds.train_x.shape == (300, 1, 32, 32) and ds.test_x.shape == (N_TEST, 1, 32, 32) and ds.train_x.dtype == torch.uint8
    assert ds.class_names[0] == "airplane" and ds.class_names[9] == "truck"
    assert ds.train_y.tolist() == arrays["train_y"].tolist() and ds.test_y.tolist() == arrays["test_y"].tolist()
    for split in ("train", "test"):
        rgb = arrays[f"{split}_x"].reshape(-1, 3, 32, 32).astype(np.int64)
        luma_x1000 = 299 * rgb[:, 0] + 587 * rgb[:, 1] + 114 * rgb[:, 2]  # exact, in thousandths
        got = getattr(ds, f"{split}_x")[:, 0].numpy().astype(np.int64)
        assert np.abs(got * 1000 - luma_x1000).max() <= 500  # the nearest integer to 0.299 R + 0.587 G + 0.114 B...
        off_tie = luma_x1000 % 1000 != 500
        np.testing.assert_array_equal(got[off_tie], ((luma_x1000 + 500) // 1000)[off_tie])  # ...exactly, away from ties
    assert (ds.train_x[0] == 90).all()  # 0.299 * 200 + 0.587 * 50 + 0.114 * 10 = 90.29
    n_val = round(300 * 0.1)
    assert len(data.val_indices) == n_val and len(data.train_indices) == 300 - n_val
    assert sorted(torch.cat([data.train_indices, data.val_indices]).tolist()) == list(range(300))


# --- the runs --------------------------------------------------------------------------------------


def checkpoints(run) -> Path:
    return Path(run["record"]["model"]["checkpoint"]).parent


def test_model_scales_inputs_to_5_x_minus_half(attias_run):
    state = load_checkpoint(checkpoints(attias_run) / "final.pt")["model"]
    assert state["normalize.mean"].flatten().tolist() == [0.5] and state["normalize.std"].flatten().tolist() == pytest.approx([0.2])
    assert state["net.stem.0.weight"].shape == (8, 1, 7, 7)  # grayscale input, width 8, 7x7 stem
    model = build_model(attias_run["protocol"].model, 1, 10, ([0.0], [1.0]))  # the protocol's own mean/std, not the data's
    model.load_state_dict(state)
    model.eval()
    seen = []
    model.net.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    x = torch.rand(4, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    logits = model(x)
    assert logits.shape == (4, 10)
    torch.testing.assert_close(seen[0], 5 * (x - 0.5))


def test_cyclic_learning_rate_per_epoch(attias_run):
    history = attias_run["record"]["model"]["training"]["history"]
    n = EPOCHS[attias_run["defense"]]
    assert [h["epoch"] for h in history] == list(range(1, n + 1))
    assert [h["lr"] for h in history] == pytest.approx([cyclic(e) for e in range(n)], rel=1e-12)
    last = load_checkpoint(checkpoints(attias_run) / "last.pt")
    assert [g["lr"] for g in last["optimizer"]["param_groups"]] == pytest.approx([cyclic(n - 1)], rel=1e-12)  # what SGD used
    if attias_run["defense"] == "baseline":
        assert [h["lr"] for h in history] == pytest.approx([0.1, 0.1, 0.1, 0.1, 0.03], rel=1e-12)


def test_best_validation_checkpoint_is_the_final_model(attias_run):
    training = attias_run["record"]["model"]["training"]
    history = training["history"]
    assert all(np.isfinite(h["val_loss"]) for h in history)
    best_epoch = min(history, key=lambda h: h["val_loss"])["epoch"]
    folder = checkpoints(attias_run)
    best, final, last = (load_checkpoint(folder / name) for name in ("best.pt", "final.pt", "last.pt"))
    assert best["epoch"] == best_epoch == training["best_epoch"] == final["summary"]["best_epoch"]
    assert training["best_val_loss"] == min(h["val_loss"] for h in history)
    assert last["epoch"] == len(history) == EPOCHS[attias_run["defense"]]
    assert best["model"].keys() == final["model"].keys()
    for key in best["model"]:
        assert torch.equal(best["model"][key], final["model"][key]), key
    if best_epoch != last["epoch"]:  # a later, worse epoch was not kept
        assert any(not torch.equal(last["model"][k], final["model"][k]) for k in final["model"] if k.endswith("weight"))


def test_record(attias_run):
    rec, defense = attias_run["record"], attias_run["defense"]
    typed = read_record(attias_run["record_path"])  # the schema's own checks
    assert typed.protocol.name == "attias"
    assert rec["protocol"]["name"] == "attias" and rec["protocol"]["hash"] == attias_run["protocol"].hash
    assert rec["protocol"]["config"]["dataset"]["root"] == str(attias_run["protocol"].dataset.options["root"])
    assert rec["protocol"]["config"]["training"]["schedule"] == "cyclic"
    assert rec["defense"]["name"] == defense and rec["seed"] == 0 and rec["attack"]["name"] == "fgsm"
    assert rec["dataset"]["name"] == "cifar10" and rec["dataset"]["grayscale"] is True
    assert rec["dataset"]["image_shape"] == [1, 32, 32] and (rec["dataset"]["train"], rec["dataset"]["test"]) == (300, N_TEST)
    assert rec["model"]["name"] == "resnet18" and rec["model"]["trained_now"] is True
    m = rec["metrics"]
    assert m["n_examples"] == N_EVAL and 0 <= m["clean_accuracy"] <= 1
    bits = m["per_example"]["clean"]
    assert len(bits) == N_EVAL and set(bits) <= {"0", "1"} and bits.count("1") / N_EVAL == pytest.approx(m["clean_accuracy"])
    eps_keys = [f"{e:g}" for e in attias_run["protocol"].eps_grid("linf")]
    assert list(m["robust_accuracy"]) == eps_keys and list(m["per_example"]["robust"]) == eps_keys
    for key, robust in m["per_example"]["robust"].items():
        assert len(robust) == N_EVAL and robust.count("1") / N_EVAL == pytest.approx(m["robust_accuracy"][key])
        assert all(c <= r for c, r in zip(robust, bits))  # robust implies clean
    assert m["per_example"]["robust"]["0"] == bits
    assert (attias_run["record_path"].parent / "summary.json").is_file()
    if defense == "neural_sim":
        assert rec["defense"]["simulated"] is True and rec["defense"]["params"]["recordings"] == []
        assert rec["defense"]["target"].startswith("SIMULATED V1")
    if defense != "baseline":
        assert rec["defense"]["params"]["n_images"] == N_REG
        assert all(0 <= h["reg_loss"] and "layer_weights" in h for h in rec["model"]["training"]["history"])


@pytest.mark.parametrize("attias_run", ["pixel_sim", "neural_sim"], indirect=True)
def test_regularisation_images_get_one_frozen_crop_flip(attias_run):
    defense = attias_run["defense"]
    spy = attias_run["spy"]
    assert len(spy.objectives) == 1  # built once for the whole training, not per epoch
    ctx, objective = spy.objectives[0]
    data = load_data(attias_run["protocol"])
    assert torch.equal(ctx.train_indices, data.train_indices) and ctx.seed == 0 and ctx.augment == "crop_flip"
    plain = to_float(data.dataset.train_x[data.train_indices[:N_REG]])
    expected = augment(plain, "crop_flip", torch.Generator().manual_seed(0))
    held = objective.regularizer.images
    assert held.shape == (N_REG, 1, 32, 32)
    torch.testing.assert_close(held, expected, rtol=0, atol=0)
    changed = (held != plain).flatten(1).any(1)
    assert changed.float().mean() > 0.8  # cropped and flipped, not the plain images
    redrawn = augment(plain, "crop_flip", torch.Generator().manual_seed(1))
    assert (held != redrawn).flatten(1).any(1).float().mean() > 0.8
    # every pair batch of every epoch was cut from the same frozen images
    steps_per_epoch = -(-len(data.train_indices) // attias_run["protocol"].training.batch_size)
    assert len(spy.pair_batches) == steps_per_epoch * EPOCHS[defense]
    for pairs in spy.pair_batches:
        torch.testing.assert_close(pairs.images, expected[torch.cat([pairs.i, pairs.j])], rtol=0, atol=0)
    if defense == "pixel_sim":  # the target was computed from the frozen images (luma pixel similarity)
        target = threshold_similarity(pixel_similarity(expected, color="luma"), 0.8, dtype=torch.int8)
        assert torch.equal(objective.regularizer.target.cpu(), target)
