import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from bench.defenses.base import CrossEntropy, Objective, TrainingContext
from bench.errors import CheckpointError, TrainingDivergedError
from bench.models import build_model
from bench.training import train
from bench.training.checkpoint import load_checkpoint
from bench.training.loop import augment, learning_rate

CFG = {"epochs": 2, "batch_size": 64, "lr": 0.05, "momentum": 0.9, "schedule": "cosine"}


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
    train(model, CrossEntropy(), ctx, val, {**CFG, "epochs": 1}, tmp_path, progress=False)
    for name in ("last.pt", "best.pt", "final.pt"):
        torch.load(tmp_path / name, weights_only=True)


class _Exploding(Objective):
    def forward(self, model, x, y):
        logits = model(x)
        return logits.sum() * float("nan"), logits, {}


def test_nan_loss_stops_with_a_clear_error_and_keeps_checkpoints(digits, tmp_path):
    model, ctx, val = _setup(digits)
    train(model, CrossEntropy(), ctx, val, {**CFG, "epochs": 1}, tmp_path, progress=False)
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


def test_learning_rate_schedules():
    assert learning_rate({"lr": 0.1, "epochs": 40, "schedule": "cyclic"}, 0) == pytest.approx(0.1)
    assert learning_rate({"lr": 0.1, "epochs": 40, "schedule": "cyclic"}, 5) == pytest.approx(0.03)
    assert learning_rate({"lr": 0.1, "epochs": 40, "schedule": "cyclic"}, 21) == pytest.approx(0.1)
    assert learning_rate({"lr": 0.1, "epochs": 10, "schedule": "cosine"}, 5) == pytest.approx(0.05)


def test_crop_flip_augmentation_keeps_shape_and_pixels():
    x = torch.rand(8, 3, 32, 32)
    out = augment(x, "crop_flip", torch.Generator().manual_seed(0))
    assert out.shape == x.shape and not torch.equal(out, x)
    assert torch.equal(augment(x, "none", torch.Generator()), x)


def _run_cmd(ckpt: Path, results: Path) -> list[str]:
    return [sys.executable, "-m", "bench.cli", "run", "--defense", "baseline", "--attack", "fgsm",
            "--set", "training.epochs=3", "--set", "dataset.val_fraction=0.5", "--set", "evaluation.n_examples=32",
            "--checkpoints", str(ckpt), "--results", str(results)]


def test_kill_9_during_training_then_rerun_resumes_and_matches_uninterrupted(tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    killed_ckpt = tmp_path / "killed"
    proc = subprocess.Popen(_run_cmd(killed_ckpt, tmp_path / "r1"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + 240
    while not list(killed_ckpt.rglob("last.pt")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    (last,) = list(killed_ckpt.rglob("last.pt"))
    assert not list(killed_ckpt.rglob("final.pt")), "training finished before it could be killed"
    epoch_at_kill = load_checkpoint(last)["epoch"]
    assert 1 <= epoch_at_kill < 3

    resumed = subprocess.run(_run_cmd(killed_ckpt, tmp_path / "r1"), capture_output=True, text=True, env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming training from {last} at epoch {epoch_at_kill}/3" in resumed.stdout

    fresh = subprocess.run(_run_cmd(tmp_path / "fresh", tmp_path / "r2"), capture_output=True, text=True, env=env)
    assert fresh.returncode == 0, fresh.stderr
    (a,) = killed_ckpt.rglob("final.pt")
    (b,) = (tmp_path / "fresh").rglob("final.pt")
    wa, wb = torch.load(a, weights_only=True)["model"], torch.load(b, weights_only=True)["model"]
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key
