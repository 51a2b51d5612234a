"""Shared fixtures: one torch thread, the embedded digits and a small model trained on them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")  # foolbox imports GitPython

TESTS = Path(__file__).resolve().parent
# The slowest test files, slowest first, run before all others: pytest-xdist hands whole files to
# its two workers in collection order (addopts: --dist loadfile --no-loadscope-reorder), and a long
# file started last would keep one worker busy while the other sits idle.
SLOW_FILES_FIRST = (  # measured with `pytest --durations=0`
    "sweep/test_sweep_run.py",
    "core/test_attacks.py",
    "core/test_training.py",
    "core/test_cli.py",
    "attacks/test_attack_registry.py",
    "evaluation/test_masking_checks.py",
    "core/test_attias_protocol.py",
    "regularizers/test_regularizer.py",
    "core/test_evaluate_api.py",
    "core/test_user_models.py",
    "core/test_architecture.py",
    "reporting/test_html.py",
    "defenses/test_adversarial.py",
    "attacks/test_decision_attacks.py",
)


def pytest_collection_modifyitems(config, items):
    def rank(item):
        path = item.path.relative_to(TESTS).as_posix() if item.path.is_relative_to(TESTS) else ""
        return SLOW_FILES_FIRST.index(path) if path in SLOW_FILES_FIRST else len(SLOW_FILES_FIRST)

    items.sort(key=rank)  # stable: within a file, and among the other files, the order stays


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """One intra-op torch thread for every test and session fixture, and for the subprocesses they start.

    The batches are small and the tests run in two worker processes (pytest-xdist) on 2 cores:
    more threads per process oversubscribe the cores (measured on a busy 2-core machine: 1.9 s
    vs 117 s for a regulariser training test, 11 s vs 45 s per epoch for ``trained_cnn``).
    Session scope, so that it is in force before session fixtures such as ``trained_cnn`` train.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OMP_NUM_THREADS", "1")  # read by torch in `bench` subprocesses
        yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def digits():
    from bench.data.embedded import mnist_digits

    return mnist_digits()


@pytest.fixture(scope="session")
def trained_cnn(digits, tmp_path_factory):
    """A small CNN trained for 2 epochs on the embedded digits (about 97 % test accuracy).

    Trained once per run: the first pytest-xdist worker to need it trains it and leaves its
    weights in the run's temporary folder, shared by the workers; the others load them.
    """
    from filelock import FileLock  # a dependency of torch

    from bench.defenses.base import CrossEntropy, TrainingContext
    from bench.pipeline import build_model
    from bench.protocol import TrainingSpec
    from bench.training import train

    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # the run's folder; basetemp is its popen-gw<N> subfolder
    weights = shared / "trained_cnn.pt"
    torch.manual_seed(0)
    model = build_model({"name": "small_cnn", "normalization": "dataset"}, 1, 10, digits.channel_stats())
    with FileLock(f"{weights}.lock"):
        if weights.exists():
            model.load_state_dict(torch.load(weights, weights_only=True))
            return model.eval()
        idx = torch.randperm(len(digits.train_y), generator=torch.Generator().manual_seed(0))
        ctx = TrainingContext(digits, idx[400:], torch.device("cpu"), 0)
        cfg = TrainingSpec(epochs=2, batch_size=64, lr=0.05, momentum=0.9, schedule="cosine")
        result = train(model, CrossEntropy(), ctx, idx[:400], cfg, tmp_path_factory.mktemp("ckpt"), progress=False)
        torch.save(result.model.state_dict(), f"{weights}.tmp")
        os.replace(f"{weights}.tmp", weights)
    result.model.zero_grad(set_to_none=True)  # as loaded in the other workers: no gradients left from training
    return result.model.eval()


@pytest.fixture(scope="session")
def eval_batch(digits):
    return digits.test_x[:120].float() / 255, digits.test_y[:120]


@pytest.fixture(scope="session")
def benchmark_script():
    """Import a script of ``benchmarks/`` by file name (the folder is not a package), to test its helpers."""
    import importlib.util

    def load(name: str):
        path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load
