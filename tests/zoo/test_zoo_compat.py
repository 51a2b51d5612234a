"""``import robustbench`` through bench.zoo.compat: what the stand-ins provide, and that they do not linger."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from bench.zoo import import_robustbench
from bench.zoo.compat import OriginalApiAutoAttack, resource_filename

pytestmark = pytest.mark.skipif(importlib.util.find_spec("robustbench") is None, reason="robustbench is not installed")


def test_robustbench_imports_and_the_stand_ins_do_not_linger():
    robustbench = import_robustbench()
    assert callable(robustbench.load_model) and callable(robustbench.benchmark)
    import robustbench.eval

    if importlib.util.find_spec("autoattack") is None:  # the PyPI situation this module exists for
        assert robustbench.eval.AutoAttack is OriginalApiAutoAttack
        assert "autoattack" not in sys.modules and "autoattack.state" not in sys.modules
        from pyautoattack.state import EvaluationState

        assert robustbench.eval.EvaluationState is EvaluationState
    assert import_robustbench() is robustbench


def test_resource_filename_is_beside_the_module():
    import bench.zoo.compat as compat

    assert Path(resource_filename("bench.zoo.compat", "data/x.txt")) == Path(compat.__file__).parent / "data" / "x.txt"


def test_original_api_maps_onto_pyautoattack():
    from pyautoattack import AutoAttack

    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3)).eval()
    x, y = torch.rand(4, 3, 2, 2), torch.tensor([0, 1, 2, 0])
    adversary = OriginalApiAutoAttack(model, norm="Linf", eps=0.1, seed=0, verbose=False, attacks_to_run=["apgd-ce"],
                                      version="custom", device="cpu")
    adversary.apgd.n_restarts, adversary.apgd.n_iter = 1, 5  # attribute access reaches pyautoattack's object
    assert adversary.attacks_to_run == ["apgd-ce"] and adversary.apgd.n_iter == 5
    x_adv = adversary.run_standard_evaluation(x, y, bs=2)
    assert isinstance(x_adv, torch.Tensor) and x_adv.shape == x.shape
    assert (x_adv - x).abs().max() <= 0.1 + 1e-6

    direct = AutoAttack(model, norm="Linf", eps=0.1, seed=0, attacks=["apgd-ce"], version="custom", device="cpu")
    direct.verbose = False
    direct.apgd.n_restarts, direct.apgd.n_iter = 1, 5
    expected, labels = direct.run_standard_evaluation(x, y, batch_size=2)
    torch.testing.assert_close(x_adv, expected)
    x_again, labels_again = adversary.run_standard_evaluation(x, y, bs=2, return_labels=True)
    torch.testing.assert_close(x_again, expected)
    assert torch.equal(labels_again, labels)


def test_what_pyautoattack_cannot_do_is_refused():
    model = nn.Linear(2, 2)
    with pytest.raises(ValueError, match="'auto-attack'"):
        OriginalApiAutoAttack(model, log_path="log.txt", device="cpu")
    with pytest.raises(ValueError, match="TensorFlow"):
        OriginalApiAutoAttack(model, is_tf_model=True, device="cpu")
