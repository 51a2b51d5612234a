"""Makes ``import robustbench`` work with what PyPI installs.

robustbench 1.1.1 from PyPI cannot be imported as installed:

* ``robustbench.eval`` runs ``from autoattack import AutoAttack`` and
  ``from autoattack.state import EvaluationState``, but the dependency PyPI resolves,
  ``pyautoattack`` 0.2.0, installs as the module ``pyautoattack``, with a keyword-only API:
  ``AutoAttack(model, *, norm=, eps=, version=, attacks=, seed=, device=)`` and
  ``run_standard_evaluation(x, y, /, *, batch_size=, state_path=)`` returning ``(x_adv, y_adv)``.
  robustbench calls the original (fra31/auto-attack) API: ``AutoAttack(model, norm=, eps=,
  version=, device=, log_path=)`` and ``run_standard_evaluation(x, y, bs=, state_path=)``
  returning ``x_adv``.
* ``robustbench.loaders`` runs ``import pkg_resources``, which setuptools 81 and later no longer
  ship (torch itself pulls setuptools >= 77.0.3, typically a newer one).

:func:`import_robustbench` puts stand-ins for these modules into ``sys.modules`` for the
duration of the import only, and only for modules that cannot be found: an installed
``autoattack`` (the GitHub package) or ``pkg_resources`` is used as it is. robustbench keeps
references to the stand-ins; nothing imported later sees them, so ``import autoattack``
elsewhere still fails as it should. This avoids pinning setuptools below 81.

What is shimmed:

* ``autoattack.AutoAttack`` (:class:`OriginalApiAutoAttack`): the original constructor and
  ``run_standard_evaluation(x, y, bs=250, return_labels=False, state_path=None)`` over
  pyautoattack; other attributes (``apgd``, ``fab``, ``square``, ``attacks_to_run``, ...) are
  read from and written to pyautoattack's object. ``log_path`` and ``is_tf_model=True`` are
  refused: pyautoattack logs to the ``auto-attack`` logger and has no TensorFlow support.
* ``autoattack.state.EvaluationState``: pyautoattack's copy of that class.
* ``pkg_resources.resource_filename(module, name)``: the path of ``name`` beside ``module``'s
  file (robustbench uses it for its ImageNet file lists).

Loading models (``robustbench.utils.load_model``) needs only the import to succeed;
``robustbench.eval.benchmark`` uses the AutoAttack stand-in.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any, Iterator

import torch
from torch import nn

from bench.errors import BenchError

INSTALL_HINT = "pip install robustbench"


def import_robustbench() -> ModuleType:
    """The ``robustbench`` package, imported with stand-ins for the modules its PyPI release lacks."""
    if "robustbench" in sys.modules:
        return sys.modules["robustbench"]
    if importlib.util.find_spec("robustbench") is None:
        raise BenchError(f"RobustBench models need the robustbench package, which is not installed: {INSTALL_HINT}")
    with _registered(_stand_ins()):
        try:
            import robustbench
        except ImportError as exc:
            raise BenchError(f"cannot import robustbench: {exc}. bench.zoo.compat supplies 'autoattack' (from pyautoattack) "
                             f"and 'pkg_resources' only; reinstall with {INSTALL_HINT!r}") from exc
    return robustbench


class OriginalApiAutoAttack:
    """fra31/auto-attack's ``AutoAttack`` call signature over pyautoattack's keyword-only class."""

    def __init__(self, model: nn.Module, norm: str = "Linf", eps: float = 0.3, seed: int | None = None,
                 verbose: bool = True, attacks_to_run: list[str] | tuple[str, ...] = (), version: str = "standard",
                 is_tf_model: bool = False, device: str | torch.device = "cuda", log_path: str | None = None):
        if is_tf_model:
            raise ValueError("AutoAttack(is_tf_model=True): pyautoattack has no TensorFlow support")
        if log_path is not None:
            raise ValueError("AutoAttack(log_path=...) is not supported: pyautoattack logs to the logging logger "
                             "'auto-attack'; attach a logging.FileHandler to it instead")
        from pyautoattack import AutoAttack

        adversary = AutoAttack(model, norm=norm, eps=eps, seed=seed, attacks=list(attacks_to_run) or None,
                               version=version, device=device)
        adversary.verbose = verbose
        object.__setattr__(self, "_adversary", adversary)

    def run_standard_evaluation(self, x_orig: torch.Tensor, y_orig: torch.Tensor, bs: int = 250,
                                return_labels: bool = False, state_path: Path | None = None):
        """Adversarial examples (and, with ``return_labels``, the model's labels for them), as the original returns."""
        x_adv, y_adv = self._adversary.run_standard_evaluation(x_orig, y_orig, batch_size=bs, state_path=state_path)
        return (x_adv, y_adv) if return_labels else x_adv

    def __getattr__(self, name: str) -> Any:
        if name == "_adversary":  # not set yet: a failed __init__, or copy/pickle probing
            raise AttributeError(name)
        return getattr(self._adversary, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._adversary, name, value)  # e.g. adversary.apgd.n_restarts, adversary.attacks_to_run


def resource_filename(module_name: str, resource_name: str) -> str:
    """pkg_resources' answer for an ordinary installed module: ``resource_name`` beside its file."""
    module = importlib.import_module(module_name)
    return str(Path(module.__file__).parent / resource_name)


def _stand_ins() -> dict[str, ModuleType]:
    """Stand-in modules for those robustbench imports that cannot be found."""
    modules: dict[str, ModuleType] = {}
    if importlib.util.find_spec("autoattack") is None and importlib.util.find_spec("pyautoattack") is not None:
        from pyautoattack.state import EvaluationState

        package = ModuleType("autoattack", "robustbench's 'autoattack', standing in for pyautoattack (bench.zoo.compat)")
        package.__path__ = []  # a package, so that autoattack.state resolves
        package.AutoAttack = OriginalApiAutoAttack
        state = ModuleType("autoattack.state")
        state.EvaluationState = EvaluationState
        package.state = state
        modules.update({"autoattack": package, "autoattack.state": state})
    if importlib.util.find_spec("pkg_resources") is None:
        pkg_resources = ModuleType("pkg_resources", "resource_filename only (bench.zoo.compat)")
        pkg_resources.resource_filename = resource_filename
        modules["pkg_resources"] = pkg_resources
    return modules


@contextmanager
def _registered(modules: dict[str, ModuleType]) -> Iterator[None]:
    """``modules`` importable inside the block; afterwards removed again, unless replaced meanwhile."""
    sys.modules.update(modules)
    try:
        yield
    finally:
        for name, module in modules.items():
            if sys.modules.get(name) is module:
                del sys.modules[name]
