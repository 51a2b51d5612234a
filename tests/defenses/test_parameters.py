"""Registration, recorded parameters, rejection of bad values, and one end-to-end run."""

from __future__ import annotations

import inspect
import json

import pytest

import bench.defenses.adversarial  # noqa: F401  (each import registers its defenses)
import bench.defenses.frontend  # noqa: F401
import bench.defenses.heat_blur  # noqa: F401
import bench.defenses.transforms  # noqa: F401
from bench.cli import main
from bench.errors import ConfigError
from bench.catalog import DEFENSES

NAMES = ["gaussian_blur", "median_filter", "quantize", "random_noise", "heat_blur", "lowpass_frontend", "gabor_frontend", "adv_train"]
WRAPPERS = {"gaussian_blur", "median_filter", "quantize", "random_noise", "heat_blur"}


@pytest.mark.parametrize("name", NAMES)
def test_registered_with_a_description_and_every_parameter_recorded(name):
    entry = DEFENSES.get(name)
    assert entry.description
    defense = DEFENSES.create(name)
    assert defense.name == name
    assert set(defense.params) == set(inspect.signature(entry.factory).parameters)
    assert defense.base == ("baseline" if name in WRAPPERS else None)
    json.dumps(defense.describe())  # goes into every record and the training key


BAD = [
    ("gaussian_blur", {"sigma": 0}, "sigma"),
    ("gaussian_blur", {"sigma": "1"}, "sigma"),
    ("gaussian_blur", {"kernel_size": 4}, "kernel_size"),
    ("gaussian_blur", {"gradient": "naive"}, "gradient"),
    ("gaussian_blur", {"base": "nonexistent"}, "base"),
    ("gaussian_blur", {"base": "gaussian_blur"}, "base"),
    ("median_filter", {"kernel_size": 1}, "kernel_size"),
    ("median_filter", {"kernel_size": 3.0}, "kernel_size"),
    ("quantize", {"bits": 0}, "bits"),
    ("quantize", {"bits": 9}, "bits"),
    ("quantize", {"bits": True}, "bits"),
    ("random_noise", {"sigma": -0.1}, "sigma"),
    ("random_noise", {"eot_samples": 0}, "eot_samples"),
    ("random_noise", {"eot_reduce": "mean"}, "eot_reduce"),
    ("random_noise", {"seed": -1}, "seed"),
    ("heat_blur", {"attribution": "lrp"}, "attribution"),
    ("heat_blur", {"mode": "blur_all"}, "mode"),
    ("heat_blur", {"keep": 0}, "keep"),
    ("heat_blur", {"keep": 1.5}, "keep"),
    ("heat_blur", {"blur_sigma": 0}, "blur_sigma"),
    ("heat_blur", {"heat_sigma": -1}, "heat_sigma"),
    ("heat_blur", {"smoothgrad_samples": 0}, "smoothgrad_samples"),
    ("heat_blur", {"smoothgrad_sigma": float("nan")}, "smoothgrad_sigma"),
    ("lowpass_frontend", {"sigma": 0}, "sigma"),
    ("lowpass_frontend", {"kernel_size": 6}, "kernel_size"),
    ("gabor_frontend", {"orientations": 0}, "orientations"),
    ("gabor_frontend", {"phases": 5}, "phases"),
    ("gabor_frontend", {"frequencies": [0.7]}, "frequencies"),
    ("gabor_frontend", {"frequencies": []}, "frequencies"),
    ("gabor_frontend", {"frequencies": "0.2"}, "frequencies"),
    ("gabor_frontend", {"kernel_size": 4}, "kernel_size"),
    ("gabor_frontend", {"include_lowpass": "yes"}, "include_lowpass"),
    ("adv_train", {"eps": 0}, "eps"),
    ("adv_train", {"steps": 0}, "steps"),
    ("adv_train", {"rel_stepsize": 0}, "rel_stepsize"),
    ("adv_train", {"threat_model": "l1"}, "threat_model"),
    ("adv_train", {"mix_clean": 1.0}, "mix_clean"),
    ("adv_train", {"random_start": "true"}, "random_start"),
]


@pytest.mark.parametrize("name, params, param", BAD, ids=[f"{n}-{p}-{v}" for n, v, p in BAD])
def test_bad_values_are_rejected_naming_the_parameter_and_what_is_accepted(name, params, param):
    with pytest.raises(ConfigError, match=rf"parameter '{param}' = .+ is invalid; accepted: ") as info:
        DEFENSES.create(name, **params)
    assert isinstance(info.value, ValueError) and name in str(info.value)


def test_gabor_frequencies_accept_a_single_number_and_record_a_list():
    assert DEFENSES.create("gabor_frontend", frequencies=0.2).params["frequencies"] == [0.2]
    assert DEFENSES.create("gabor_frontend", frequencies=(0.1, 0.3)).params["frequencies"] == [0.1, 0.3]


@pytest.mark.slow
def test_median_filter_runs_end_to_end_through_the_cli(tmp_path):
    results, checkpoints = tmp_path / "results", tmp_path / "ckpt"
    args = ["run", "--defense", "median_filter", "--attack", "pgd", "--set", "training.epochs=1",
            "--set", "evaluation.n_examples=32", "--set", "attacks.pgd.steps=3", "--set", "attacks.pgd.targets=1",
            "--set", "threat_models.linf.eps=[0.0, 0.1, 0.3]", "--set", "leaderboard.convergence.eps=[0.1]",
            "--results", str(results), "--checkpoints", str(checkpoints), "--quiet"]
    assert main(args) == 0
    (path,) = results.rglob("pgd.json")
    record = json.loads(path.read_text())
    assert record["defense"] == {"name": "median_filter", "params": {"kernel_size": 3, "gradient": "auto", "base": "baseline"},
                                 "base": "baseline", "randomized": False}
    assert record["model"]["base_defense"] == "baseline"
    assert (checkpoints / "quick" / "baseline").is_dir()  # the base model is trained under its own name
    metrics = record["metrics"]
    assert metrics["n_examples"] == 32 and metrics["clean_accuracy"] > 0.6
    assert metrics["robust_accuracy"]["0.3"] < metrics["clean_accuracy"]
    assert record["checks"] and all(c["status"] == "pass" for c in record["checks"]), record["checks"]
