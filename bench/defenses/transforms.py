"""Input-transformation defenses in front of an already-trained model, attacked adaptively.

A :class:`Transform` maps images in [0, 1] to images and declares how an attack must
differentiate it (the idea of ART's ``Preprocessor.estimate_gradient``): ``"exact"`` for a
differentiable transform (attacked end to end), ``"bpda"`` for one whose gradient is zero
or useless (Athalye et al. 2018: forward the real transform, backward through a
differentiable surrogate, the identity by default), and ``randomized`` for transforms that
draw noise, which the attack view averages over ``eot_samples`` draws (EOT) in one batched
forward pass. Without this, a gradient attack on a non-differentiable or random pipeline
fails for reasons unrelated to robustness and reports robustness that is not there.

:class:`TransformedModel` is the deployed pipeline ``model(transform(x))``; its
``attack_view()`` is what ``bench.evaluation`` differentiates. The ``gradient`` parameter
of every transform defense ("auto" | "exact" | "bpda") forces one estimator, e.g.
``gradient="exact"`` on ``quantize`` to show how a naive attack overstates robustness.

The parameter checks at the end of this module are shared by every defense of the package.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from bench.defenses.base import Defense, attack_view
import bench.validate as validate
from bench.errors import ConfigError
from bench.registry import DEFENSES

GRADIENTS = ("auto", "exact", "bpda")
EOT_REDUCTIONS = ("logits", "probs")


class Transform(nn.Module):
    """An image-to-image transformation that says how attacks should differentiate it."""

    gradient: ClassVar[str] = "exact"  # "exact" | "bpda": the estimator used when gradient="auto"
    randomized: ClassVar[bool] = False  # draws noise: the attack view applies EOT

    def surrogate(self, x: torch.Tensor) -> torch.Tensor:
        """Differentiable approximation of the transform, used by BPDA's backward pass (identity)."""
        return x

    def estimate(self, x: torch.Tensor) -> torch.Tensor:
        """The transform's value with the surrogate's gradient (BPDA, straight-through by default)."""
        s = self.surrogate(x)
        return s + (self(x) - s).detach()


def gaussian_kernel1d(sigma: float, size: int) -> torch.Tensor:
    r = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    k = torch.exp(-0.5 * (r / sigma) ** 2)
    return k / k.sum()


def default_kernel_size(sigma: float) -> int:
    """Smallest odd size covering +-3 sigma (at least 3)."""
    return max(3, 2 * math.ceil(3 * sigma) + 1)


def depthwise_conv(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Apply ``kernel`` [K, 1, kh, kw] to every channel (K maps per channel), replicate padding, same size."""
    c, (kh, kw) = x.shape[1], kernel.shape[-2:]
    x = F.pad(x, (kw // 2, kw // 2, kh // 2, kh // 2), mode="replicate")
    return F.conv2d(x, kernel.to(x.dtype).repeat(c, 1, 1, 1), groups=c)


class GaussianBlur(Transform):
    """Separable depthwise Gaussian blur, any channel count; differentiable (exact gradient)."""

    def __init__(self, sigma: float, kernel_size: int):
        super().__init__()
        self.register_buffer("kernel", gaussian_kernel1d(sigma, kernel_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return depthwise_conv(depthwise_conv(x, self.kernel.view(1, 1, 1, -1)), self.kernel.view(1, 1, -1, 1))


class MedianFilter(Transform):
    """Per-channel median over a k x k window (replicate padding), batched via ``unfold``.

    ``torch.median`` routes the whole gradient to one input pixel per window, so the exact
    gradient is sparse and misleading: attacks use BPDA (identity backward) by default.
    """

    gradient = "bpda"

    def __init__(self, kernel_size: int):
        super().__init__()
        self.kernel_size = kernel_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        p = self.kernel_size // 2
        padded = F.pad(x.reshape(b * c, 1, h, w), (p, p, p, p), mode="replicate")
        windows = F.unfold(padded, self.kernel_size)  # [b*c, k*k, h*w]
        return windows.median(dim=1).values.view(b, c, h, w)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}"


class Quantize(Transform):
    """Bit-depth reduction ``round(x (2^b - 1)) / (2^b - 1)`` (feature squeezing).

    Its gradient is zero almost everywhere, which stops a naive gradient attack dead: the
    textbook case of gradient masking. Attacks use BPDA (identity backward) by default.
    """

    gradient = "bpda"

    def __init__(self, bits: int):
        super().__init__()
        self.bits = bits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        levels = 2**self.bits - 1
        return torch.round(x.clamp(0, 1) * levels) / levels

    def extra_repr(self) -> str:
        return f"bits={self.bits}"


class RandomNoise(Transform):
    """Adds Gaussian noise of std ``sigma`` at every forward pass (not clipped, as in randomised smoothing).

    The noise comes from the transform's own generator, seeded once per device with ``seed``,
    so a run's sequence of draws does not depend on whether its model was trained or reloaded.
    Differentiable (identity Jacobian); attacks average over draws (EOT).
    """

    randomized = True

    def __init__(self, sigma: float, seed: int):
        super().__init__()
        self.sigma, self.seed = sigma, seed
        self._generators: dict[torch.device, torch.Generator] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = self._generators.get(x.device)
        if g is None:
            g = self._generators[x.device] = torch.Generator(device=x.device).manual_seed(self.seed)
        return x + self.sigma * torch.randn(x.shape, generator=g, device=x.device, dtype=x.dtype)

    def extra_repr(self) -> str:
        return f"sigma={self.sigma}, seed={self.seed}"


class TransformedModel(nn.Module):
    """The deployed pipeline ``model(transform(x))``; ``attack_view()`` is its adaptive surrogate."""

    def __init__(self, model: nn.Module, transform: Transform, gradient: str = "auto", eot_samples: int = 1,
                 eot_reduce: str = "logits"):
        super().__init__()
        self.model, self.transform = model, transform
        self.gradient = transform.gradient if gradient == "auto" else gradient
        self.eot_samples = eot_samples if transform.randomized else 1
        self.eot_reduce = eot_reduce

    @property
    def taps(self) -> dict[str, str]:
        """The wrapped model's feature taps, as paths from this module (for hooks such as Grad-CAM)."""
        return {name: f"model.{path}" for name, path in getattr(self.model, "taps", {}).items()}

    @property
    def randomized(self) -> bool:
        """Whether two passes on the same input may differ (this transform or one it wraps draws noise)."""
        return bool(self.transform.randomized or getattr(self.model, "randomized", False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(self.transform(x))

    def attack_view(self) -> nn.Module:
        """The pipeline itself when it is differentiable and deterministic end to end, else :class:`AdaptiveView`."""
        if self.gradient == "exact" and self.eot_samples == 1 and attack_view(self.model) is self.model:
            return self
        return AdaptiveView(self)


class AdaptiveView(nn.Module):
    """BPDA and/or EOT surrogate of a :class:`TransformedModel`, composed with its inner model's own view.

    Its forward value equals the pipeline's (for EOT: the mean over ``eot_samples`` draws of
    the logits, or the log of the mean probabilities), so attacks that check success on the
    logits they compute see the pipeline's decision.
    """

    def __init__(self, pipeline: TransformedModel):
        super().__init__()
        self.pipeline = pipeline
        self.inner = attack_view(pipeline.model)  # chained transform defenses stay adaptive

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p, n = self.pipeline, self.pipeline.eot_samples
        xs = x.repeat(n, *[1] * (x.dim() - 1)) if n > 1 else x
        t = p.transform(xs) if p.gradient == "exact" else p.transform.estimate(xs)
        logits = self.inner(t)
        if n == 1:
            return logits
        logits = logits.view(n, x.shape[0], *logits.shape[1:])
        if p.eot_reduce == "logits":
            return logits.mean(0)
        return torch.logsumexp(logits.float().log_softmax(-1), dim=0) - math.log(n)


def device_of(model: nn.Module) -> torch.device:
    tensor = next(model.parameters(), None)
    if tensor is None:
        tensor = next(model.buffers(), None)
    return tensor.device if tensor is not None else torch.device("cpu")


@dataclass(kw_only=True)
class TransformDefense(Defense):
    """An input transformation in front of the trained model of the ``base`` defense."""

    transform: Callable[[nn.Module], Transform]  # built from the trained model (heat maps need it)
    gradient: str = "auto"
    eot_samples: int = 1
    eot_reduce: str = "logits"

    def wrap(self, model: nn.Module) -> nn.Module:
        pipeline = TransformedModel(model, self.transform(model), self.gradient, self.eot_samples, self.eot_reduce)
        return pipeline.to(device_of(model)).eval()


def transform_defense(name: str, params: dict[str, Any], transform: Callable[[nn.Module], Transform], *,
                      base: str, gradient: str | None, eot_samples: int = 1, eot_reduce: str = "logits") -> TransformDefense:
    """Validate the parameters every transform defense shares and record them in ``params``.

    ``gradient=None``: the defense offers no choice of estimator (its own declaration is used).
    """
    recorded = dict(params)
    if gradient is not None:
        recorded["gradient"] = check_choice(name, "gradient", gradient, GRADIENTS)
    recorded["base"] = check_base(name, base)
    return TransformDefense(name, recorded, base, transform=transform, gradient=gradient or "auto",
                            eot_samples=eot_samples, eot_reduce=eot_reduce)


@DEFENSES.register("gaussian_blur", description="Gaussian blur in front of a trained model; differentiable, attacked end to end")
def gaussian_blur(sigma: float = 1.0, kernel_size: int | None = None, gradient: str = "auto", base: str = "baseline") -> Defense:
    sigma = check_positive("gaussian_blur", "sigma", sigma)
    size = default_kernel_size(sigma) if kernel_size is None else check_odd_size("gaussian_blur", "kernel_size", kernel_size, minimum=1)
    return transform_defense("gaussian_blur", {"sigma": sigma, "kernel_size": size}, lambda model: GaussianBlur(sigma, size),
                             base=base, gradient=gradient)


@DEFENSES.register("median_filter", description="median filter in front of a trained model; attacked with BPDA (identity backward)")
def median_filter(kernel_size: int = 3, gradient: str = "auto", base: str = "baseline") -> Defense:
    size = check_odd_size("median_filter", "kernel_size", kernel_size, minimum=3)
    return transform_defense("median_filter", {"kernel_size": size}, lambda model: MedianFilter(size), base=base, gradient=gradient)


@DEFENSES.register("quantize", description="bit-depth reduction in front of a trained model; zero gradient, attacked with BPDA")
def quantize(bits: int = 3, gradient: str = "auto", base: str = "baseline") -> Defense:
    bits = check_int("quantize", "bits", bits, 1, 8)
    return transform_defense("quantize", {"bits": bits}, lambda model: Quantize(bits), base=base, gradient=gradient)


@DEFENSES.register("random_noise", description="Gaussian noise added at test time in front of a trained model; attacked with EOT")
def random_noise(sigma: float = 0.1, eot_samples: int = 8, eot_reduce: str = "logits", seed: int = 0,
                 gradient: str = "auto", base: str = "baseline") -> Defense:
    sigma = check_positive("random_noise", "sigma", sigma)
    eot_samples = check_int("random_noise", "eot_samples", eot_samples, 1, 1024)
    check_choice("random_noise", "eot_reduce", eot_reduce, EOT_REDUCTIONS)
    seed = check_int("random_noise", "seed", seed, 0, 2**63 - 1)
    params = {"sigma": sigma, "eot_samples": eot_samples, "eot_reduce": eot_reduce, "seed": seed}
    defense = transform_defense("random_noise", params, lambda model: RandomNoise(sigma, seed), base=base, gradient=gradient,
                                eot_samples=eot_samples, eot_reduce=eot_reduce)
    defense.randomized = True
    return defense


# Parameter checks shared by the defenses of this package, through the one validator (bench.validate):
# each names the defense, the parameter, the value and what is accepted, so a protocol typo is a one-line fix.

def _where(defense: str, param: str) -> str:
    return f"defense {defense!r}: parameter {param!r}"


def _reject(defense: str, param: str, accepted: str, value: Any) -> ConfigError:
    return validate.invalid(_where(defense, param), value, accepted)


def check_number(defense: str, param: str, value: Any, low: float, high: float = math.inf, *,
                 low_open: bool = False) -> float:
    """A real number in [low, high] (or (low, high] when ``low_open``), returned as float."""
    return validate.number(value, _where(defense, param), low=low, low_inclusive=not low_open,
                           high=None if math.isinf(high) else high)


def check_positive(defense: str, param: str, value: Any) -> float:
    return check_number(defense, param, value, 0.0, low_open=True)


def check_int(defense: str, param: str, value: Any, low: int, high: int) -> int:
    return validate.integer(value, _where(defense, param), low, high)


def check_odd_size(defense: str, param: str, value: Any, minimum: int) -> int:
    validate.integer(value, _where(defense, param), minimum)
    if value % 2 == 0:
        raise _reject(defense, param, f"an odd integer >= {minimum}", value)
    return value


def check_choice(defense: str, param: str, value: Any, choices: Iterable[str]) -> str:
    return validate.choice(value, _where(defense, param), choices)


def check_bool(defense: str, param: str, value: Any) -> bool:
    return validate.boolean(value, _where(defense, param))


def check_base(defense: str, base: Any) -> str:
    """A registered defense other than this one (or a family:spec name such as robustbench:X),
    whose model the transform wraps."""
    names = [n for n in DEFENSES.names() if n != defense]
    family = base.split(":", 1)[0] if isinstance(base, str) and ":" in base else None
    if base not in names and family not in names:
        raise _reject(defense, "base", "the name of another registered defense (" + ", ".join(names) + "), or family:spec", base)
    return base
