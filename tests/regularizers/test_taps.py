import pytest
import torch
from torch import nn

from regularizers import record_taps


def test_record_taps_collects_the_submodule_outputs_and_removes_hooks(tiny_cnn):
    model = tiny_cnn().eval()
    x = torch.rand(5, 1, 16, 16)
    with record_taps(model, model.taps) as f:
        out = model(x)
    assert set(f) == {"stem", "stage1", "stage2"}
    stem = model.stem(x)
    assert torch.allclose(f["stem"], stem)
    assert torch.allclose(f["stage2"], model.stage2(model.stage1(stem)))
    assert torch.allclose(out, model(x))
    for m in model.modules():
        assert not m._forward_hooks


def test_rows_slice_keeps_only_those_rows_with_gradient(tiny_cnn):
    model = tiny_cnn().eval()
    x = torch.rand(6, 1, 16, 16)
    with record_taps(model, {"s1": "stage1"}, rows=slice(4, None)) as f:
        model(x)
    assert f["s1"].shape[0] == 2
    assert torch.allclose(f["s1"], model.stage1(model.stem(x[4:])), atol=1e-6)
    f["s1"].sum().backward()
    assert model.stem[0].weight.grad is not None


def test_hooks_removed_after_an_exception(tiny_cnn):
    model = tiny_cnn()
    with pytest.raises(RuntimeError):
        with record_taps(model, model.taps):
            model(torch.rand(2, 3, 16, 16))  # wrong channel count
    assert all(not m._forward_hooks for m in model.modules())


def test_errors(tiny_cnn):
    model = tiny_cnn()
    with pytest.raises(ValueError, match="no submodule 'stage9'"):
        with record_taps(model, {"deep": "stage9"}):
            pass

    class TupleOut(nn.Module):
        def forward(self, x):
            return x, x

    wrapper = nn.Sequential(TupleOut())
    with pytest.raises(TypeError, match="not a Tensor"):
        with record_taps(wrapper, {"t": "0"}):
            wrapper(torch.zeros(1))
    with pytest.raises(ValueError, match="at least one"):
        with record_taps(model, {}):
            pass
