"""bfloat16 gradient passes: faster, and never a success that the exact model does not confirm."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bench.attacks.precision import MixedPrecision, confirm_fooled, resolve_precision, with_precision
from bench.errors import ConfigError
from bench.evaluation import evaluate_attack
from bench.registry import ATTACKS


def test_resolve_precision_passes_explicit_choices_and_refuses_others():
    cpu = torch.device("cpu")
    assert resolve_precision("fp32", cpu) == "fp32"
    assert resolve_precision("bf16", cpu) == "bf16"
    units = any(getattr(torch.cpu, name, lambda: False)() for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"))
    assert resolve_precision("auto", cpu) == ("bf16" if units else "fp32")
    with pytest.raises(ConfigError, match="not one of auto, fp32, bf16"):
        resolve_precision("fp16", cpu)


def test_wrapper_calls_the_exact_model_and_its_fast_pass_is_close(trained_cnn, batch16):
    x, _ = batch16
    wrapped = with_precision(trained_cnn, "bf16", torch.device("cpu"))
    assert isinstance(wrapped, MixedPrecision)
    assert with_precision(trained_cnn, "fp32", torch.device("cpu")) is trained_cnn
    with torch.no_grad():
        exact, fast = trained_cnn(x), wrapped.fast(x)
        assert torch.equal(wrapped(x), exact)
    assert fast.dtype == torch.float32
    assert (fast.argmax(1) == exact.argmax(1)).float().mean() >= 0.9
    assert torch.allclose(fast, exact, atol=0.1 * float(exact.abs().max()))


class _Disagrees(nn.Module):
    """Exact model: class 0 always; fast pass: class 1 always (a bfloat16 'success' the exact model refutes)."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return torch.tensor([1.0, 0.0]).expand(len(x), 2) + 0 * self.w


def test_confirm_fooled_drops_a_success_the_exact_model_refutes():
    wrapped = MixedPrecision(_Disagrees(), "cpu")
    x, y = torch.rand(4, 1, 2, 2), torch.zeros(4, dtype=torch.long)
    claimed = torch.tensor([True, False, True, True])
    assert not confirm_fooled(wrapped, x, y, claimed).any()
    assert torch.equal(confirm_fooled(_Disagrees(), x, y, claimed), claimed)  # fp32 model: taken as is


def test_pgd_in_bf16_matches_fp32_closely_and_records_its_precision(trained_cnn, batch16):
    x, y = batch16
    attack = ATTACKS.create("pgd", steps=20)
    grid = [0.0, 0.05, 0.1]
    exact = evaluate_attack(trained_cnn, attack, x, y, grid, 16, 0, precision="fp32")
    fast = evaluate_attack(trained_cnn, attack, x, y, grid, 16, 0, precision="bf16")
    assert (exact.precision, fast.precision) == ("fp32", "bf16")
    for eps in grid:
        assert abs(exact.robust_accuracy()[eps] - fast.robust_accuracy()[eps]) <= 2 / 16
    # an attack without a reduced-precision path keeps fp32 whatever is asked
    assert evaluate_attack(trained_cnn, ATTACKS.create("gaussian_noise"), x, y, [0.0, 0.1], 16, 0, precision="bf16").precision == "fp32"
