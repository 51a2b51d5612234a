import json
import os
import re
import signal
import struct
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml

from bench.data.augment import augment
from bench.defenses.base import CrossEntropy, Objective, TrainingContext
from bench.errors import CheckpointError, TrainingDivergedError
from bench.pipeline import build_model
from bench.protocol import TrainingSpec
from bench.training import train
from bench.training.checkpoint import load_checkpoint
from bench.training.loop import learning_rate

CFG = TrainingSpec(epochs=2, batch_size=64, lr=0.05, momentum=0.9, schedule="cosine")


def _setup(digits, n_train=600):
    torch.manual_seed(0)
    model = build_model({"name": "small_cnn", "normalization": "dataset", "width": 8}, 1, 10, digits.channel_stats())
    ctx = TrainingContext(digits, torch.arange(100, 100 + n_train), torch.device("cpu"), seed=3)
    return model, ctx, torch.arange(0, 100)


def test_training_is_deterministic_under_a_seed(digits, tmp_path):
    weights = []
    for run in range(2):
        model, ctx, val = _setup(digits)
        train(model, CrossEntropy(), ctx, val, CFG, tmp_path / f"run{run}", progress=False)
        weights.append(model.state_dict())
    for key in weights[0]:
        assert torch.equal(weights[0][key], weights[1][key]), key
    state = load_checkpoint(tmp_path / "run0" / "last.pt")
    assert state["epoch"] == 2 and len(state["history"]) == 2
    assert {"train_loss", "train_acc", "val_loss", "val_acc", "lr"} <= set(state["history"][0])


def test_checkpoints_load_with_weights_only(digits, tmp_path):
    model, ctx, val = _setup(digits)
    train(model, CrossEntropy(), ctx, val, replace(CFG, epochs=1), tmp_path, progress=False)
    states = {name: torch.load(tmp_path / name, weights_only=True) for name in ("last.pt", "best.pt", "final.pt")}
    trained = model.state_dict()
    for name, state in states.items():  # one epoch: the last, the best and the final weights are the trained ones
        assert set(state["model"]) == set(trained), name
        assert all(torch.equal(state["model"][k], trained[k]) for k in trained), name
    assert states["last.pt"]["epoch"] == 1 and states["best.pt"]["epoch"] == 1 and "optimizer" in states["last.pt"]
    assert states["final.pt"]["summary"]["epochs"] == 1 and len(states["final.pt"]["summary"]["history"]) == 1


class _Exploding(Objective):
    def forward(self, model, x, y):
        logits = model(x)
        return logits.sum() * float("nan"), logits, {}


def test_nan_loss_stops_with_a_clear_error_and_keeps_checkpoints(digits, tmp_path):
    model, ctx, val = _setup(digits)
    train(model, CrossEntropy(), ctx, val, replace(CFG, epochs=1), tmp_path, progress=False)
    before = (tmp_path / "last.pt").read_bytes()
    model, ctx, val = _setup(digits)
    with pytest.raises(TrainingDivergedError, match="loss became nan at epoch 2, step 1"):
        train(model, _Exploding(), ctx, val, CFG, tmp_path, progress=False)
    assert (tmp_path / "last.pt").read_bytes() == before


def test_corrupt_checkpoint_is_reported_and_left_alone(digits, tmp_path):
    (tmp_path / "last.pt").write_bytes(b"not a checkpoint")
    model, ctx, val = _setup(digits)
    with pytest.raises(CheckpointError, match="corrupt or unreadable.*--force"):
        train(model, CrossEntropy(), ctx, val, CFG, tmp_path, progress=False)
    assert (tmp_path / "last.pt").read_bytes() == b"not a checkpoint"


class ScaledLoss(Objective):
    """Cross-entropy times a large factor: gradients far above any sensible clipping norm."""

    def forward(self, model, x, y):
        logits = model(x)
        return 1e4 * F.cross_entropy(logits, y), logits, {}


def test_gradient_clipping_bounds_every_step_and_is_logged(digits, tmp_path):
    from bench.training import loop

    norms = []
    step = torch.optim.SGD.step

    def recording_step(self, *args, **kwargs):  # the gradient the optimiser applies
        grads = [p.grad for group in self.param_groups for p in group["params"] if p.grad is not None]
        norms.append(float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))))
        return step(self, *args, **kwargs)

    model, ctx, val = _setup(digits, n_train=256)
    spec = replace(CFG, epochs=1, grad_clip=1.0)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(torch.optim.SGD, "step", recording_step)
        loop.train(model, ScaledLoss(), ctx, val, spec, tmp_path / "clipped", progress=False)
    assert len(norms) == 4 and max(norms) <= 1.0 + 1e-4
    entry = load_checkpoint(tmp_path / "clipped" / "last.pt")["history"][0]
    assert entry["train_clipped"] == 1.0 and entry["train_grad_norm"] > 100
    model, ctx, val = _setup(digits, n_train=256)  # without clipping: nothing logged, the loop as it was
    train(model, CrossEntropy(), ctx, val, replace(CFG, epochs=1), tmp_path / "plain", progress=False)
    assert "train_grad_norm" not in load_checkpoint(tmp_path / "plain" / "last.pt")["history"][0]


def test_learning_rate_schedules():
    cyclic = TrainingSpec(epochs=40, batch_size=64, lr=0.1, schedule="cyclic")
    assert [learning_rate(cyclic, e) for e in (0, 3, 4, 5, 8, 19, 20, 21)] == pytest.approx([0.1, 0.1, 0.03, 0.03, 0.009, 0.1 * 0.3**4, 0.1, 0.1])
    assert learning_rate(TrainingSpec(epochs=10, batch_size=64, lr=0.1, schedule="cosine"), 5) == pytest.approx(0.05)
    assert learning_rate(TrainingSpec(epochs=10, batch_size=64, lr=0.1), 7) == 0.1


def test_crop_flip_augmentation_keeps_shape_and_pixels():
    """Every output image is one 32 x 32 window of its 4-px reflect-padded input, possibly mirrored."""
    x = torch.rand(32, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    out = augment(x, "crop_flip", torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.dtype == x.dtype and not torch.equal(out, x)
    padded = F.pad(x, (4, 4, 4, 4), mode="reflect")
    seen = []
    for i in range(len(x)):
        windows = {(dy, dx): padded[i, :, dy:dy + 32, dx:dx + 32] for dy in range(9) for dx in range(9)}
        # pixels are moved, never computed: the match is exact
        found = [(dy, dx, flip) for (dy, dx), w in windows.items() for flip in (False, True)
                 if torch.equal(out[i], w.flip(-1) if flip else w)]
        assert len(found) == 1, (i, found)  # random pixels: exactly one window (and orientation) matches
        seen.append(found[0])
    assert len({(dy, dx) for dy, dx, _ in seen}) > 1  # each image draws its own crop...
    assert {flip for _, _, flip in seen} == {False, True}  # ...and its own flip
    assert torch.equal(augment(x, "crop_flip", torch.Generator().manual_seed(0)), out)  # reproducible from the generator
    assert torch.equal(augment(x, "none", torch.Generator()), x)


# A `bench run` that takes seconds but has several checkpointed epochs to interrupt: a width-4 CNN
# on 480 of the embedded digits (written as an MNIST copy: read in milliseconds, where parsing the
# embedded set takes seconds per process), 16 test images, FGSM at two eps.
EPOCHS = 5
N_TRAIN, N_TEST = 600, 100


def _write_idx(path: Path, array) -> None:
    path.write_bytes(struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
                     + array.astype("uint8").tobytes())


def _small_protocol(digits, folder: Path) -> Path:
    """A protocol file for an MNIST copy of the first digits of each split (the classes interleave)."""
    data = folder / "mnist"
    data.mkdir(parents=True)
    for name, tensor in (("train-images-idx3-ubyte", digits.train_x[:N_TRAIN, 0]), ("train-labels-idx1-ubyte", digits.train_y[:N_TRAIN]),
                         ("t10k-images-idx3-ubyte", digits.test_x[:N_TEST, 0]), ("t10k-labels-idx1-ubyte", digits.test_y[:N_TEST])):
        _write_idx(data / name, tensor.numpy())
    path = folder / "resume.yaml"
    path.write_text(yaml.safe_dump({
        "name": "resume",
        "version": 1,
        "description": "A few hundred digits and a width-4 CNN: a run to kill and resume.",
        "dataset": {"name": "mnist", "root": str(data), "val_fraction": 0.2, "split_seed": 0},
        "model": {"name": "small_cnn", "normalization": "dataset", "width": 4},
        "training": {"epochs": EPOCHS, "batch_size": 64, "optimizer": "sgd", "lr": 0.05, "momentum": 0.9,
                     "weight_decay": 0.0005, "schedule": "cosine", "augment": "crop_flip"},
        "evaluation": {"n_examples": 16, "batch_size": 16},
        "threat_models": {"linf": {"eps": [0.0, 0.1]}},
        "attacks": {"fgsm": {}},
        "seeds": [0],
        "defenses": {"baseline": {}},
    }))
    return path


def _run_cmd(protocol: Path, ckpt: Path, results: Path) -> list[str]:
    return [sys.executable, "-m", "bench.cli", "run", "--protocol", str(protocol), "--defense", "baseline", "--attack", "fgsm",
            "--checkpoints", str(ckpt), "--results", str(results)]


def test_kill_9_during_training_then_rerun_resumes_and_matches_uninterrupted(digits, tmp_path):
    protocol = _small_protocol(digits, tmp_path)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    killed_ckpt = tmp_path / "killed"
    proc = subprocess.Popen(_run_cmd(protocol, killed_ckpt, tmp_path / "r1"), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + 240
    while not list(killed_ckpt.rglob("last.pt")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    (last,) = list(killed_ckpt.rglob("last.pt"))
    assert not list(killed_ckpt.rglob("final.pt")), "training finished before it could be killed"
    epoch_at_kill = load_checkpoint(last)["epoch"]
    assert 1 <= epoch_at_kill < EPOCHS

    resumed = subprocess.run(_run_cmd(protocol, killed_ckpt, tmp_path / "r1"), capture_output=True, text=True, env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming training from {last} at epoch {epoch_at_kill}/{EPOCHS}" in resumed.stdout
    trained = re.findall(rf"^epoch (\d+)/{EPOCHS}: ", resumed.stdout, re.M)
    assert trained == [str(e) for e in range(epoch_at_kill + 1, EPOCHS + 1)], resumed.stdout  # no epoch trained twice

    fresh = subprocess.run(_run_cmd(protocol, tmp_path / "fresh", tmp_path / "r2"), capture_output=True, text=True, env=env)
    assert fresh.returncode == 0, fresh.stderr
    assert "resuming" not in fresh.stdout and len(re.findall(rf"^epoch \d+/{EPOCHS}: ", fresh.stdout, re.M)) == EPOCHS
    (a,) = killed_ckpt.rglob("final.pt")
    (b,) = (tmp_path / "fresh").rglob("final.pt")
    wa, wb = torch.load(a, weights_only=True)["model"], torch.load(b, weights_only=True)["model"]
    assert set(wa) == set(wb)
    for key in wa:  # the same machine, build and thread count: bit for bit
        assert torch.equal(wa[key], wb[key]), key
    (ra,) = (tmp_path / "r1").rglob("fgsm.json")
    (rb,) = (tmp_path / "r2").rglob("fgsm.json")
    metrics = [json.loads(r.read_text())["metrics"] for r in (ra, rb)]
    assert metrics[0]["n_examples"] == 16 and metrics[0]["per_example"] == metrics[1]["per_example"]
