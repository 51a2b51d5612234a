"""pixel_sim and neural_sim through the harness: diagnostics in the history, targets, controls."""

import json

import numpy as np
import pytest
import torch

import bench.defenses.similarity  # noqa: F401
from bench.cli import main
from bench.defenses.base import TrainingContext
from bench.errors import ConfigError
from bench.pipeline import build_model
from bench.catalog import DEFENSES
from fast_protocol import TINY as TINY_RUN

TINY = [*TINY_RUN, "attacks.pgd.steps=2"]


def _sets(overrides):
    return [arg for o in overrides for arg in ("--set", o)]


def _ctx(digits):
    model = build_model({"name": "small_cnn", "width": 8}, 1, 10, digits.channel_stats())
    return TrainingContext(digits, torch.arange(300), torch.device("cpu"), 0, None, model), model


@pytest.mark.parametrize("name", ["pixel_sim", "neural_sim"])
def test_records_carry_regulariser_diagnostics(name, tmp_path):
    args = ["run", "--defense", name, "--attack", "pgd", "--results", str(tmp_path / "r"), "--checkpoints", str(tmp_path / "c"),
            "--quiet", *_sets([*TINY, f"defenses.{name}.n_images=300"])]
    assert main(args) == 0
    (path,) = (tmp_path / "r").rglob("pgd.json")
    rec = json.loads(path.read_text())
    (epoch,) = rec["model"]["training"]["history"]
    assert epoch["reg_loss"] > 0 and -1 <= epoch["reg_corr"] <= 1 and epoch["reg_ce"] > 0
    weights = epoch["layer_weights"]
    assert set(weights) == {"stem", "stage1", "stage2", "stage3"} and sum(weights.values()) == pytest.approx(1, abs=1e-5)
    assert rec["defense"]["params"]["n_images"] == 300
    if name == "neural_sim":
        assert rec["defense"]["simulated"] is True and "SIMULATED" in rec["defense"]["target"]


def test_pixel_target_is_the_centred_pixel_cosine(digits):
    ctx, model = _ctx(digits)
    defense = DEFENSES.create("pixel_sim", n_images=50, th=0.5)
    objective = defense.objective(ctx)
    x = digits.train_x[:50].reshape(50, -1).double() / 255
    x = x - x.mean(0)
    x = x / x.norm(dim=1, keepdim=True)
    s = x @ x.T
    expected = torch.eye(50)
    expected[s > 0.5] = 1
    expected[s < -0.5] = -1
    assert torch.equal(objective.regularizer.target.float(), expected)


def test_neural_sim_reads_user_recordings(digits, tmp_path):
    rng = np.random.default_rng(0)
    responses = rng.random((40, 30)).astype(np.float32)
    np.savez(tmp_path / "scan.npz", responses=responses, image_ids=np.arange(40))
    ctx, _ = _ctx(digits)
    defense = DEFENSES.create("neural_sim", recordings=str(tmp_path / "scan.npz"), n_images=40)
    objective = defense.objective(ctx)
    u = responses - responses.mean(0)
    u = u / np.linalg.norm(u, axis=1, keepdims=True)
    target = objective.regularizer.target.float().numpy()
    np.testing.assert_allclose(target, u @ u.T, atol=2e-3)  # stored as float16
    assert torch.equal(objective.regularizer.images, digits.train_x[:40].float() / 255)
    assert defense.describe()["simulated"] is False


def test_controls_change_the_target(digits):
    ctx, _ = _ctx(digits)
    plain = DEFENSES.create("pixel_sim", n_images=60, threshold=False).objective(ctx).regularizer.target.float()
    shuffled = DEFENSES.create("pixel_sim", n_images=60, threshold=False, control="shuffled").objective(ctx).regularizer.target.float()
    labels = DEFENSES.create("pixel_sim", n_images=60, control="labels").objective(ctx).regularizer.target.float()
    assert not torch.equal(plain, shuffled)
    assert torch.allclose(torch.sort(plain.flatten()).values, torch.sort(shuffled.flatten()).values, atol=1e-3)
    y = digits.train_y[:60]
    assert torch.equal(labels == 1, y[:, None] == y[None, :])


@pytest.mark.parametrize("kwargs, fragment", [({"alpha": -1}, "alpha"), ({"reg_range": "middle"}, "reg_range"),
                                              ({"loss": "l1"}, "loss"), ({"control": "x"}, "control"), ({"th": 2}, "th")])
def test_bad_parameters_are_refused(kwargs, fragment):
    with pytest.raises(ConfigError, match=fragment):
        DEFENSES.create("pixel_sim", **kwargs)
