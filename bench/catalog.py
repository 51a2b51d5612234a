"""Every registered component, loaded: the built-ins, then the ``bench.plugins`` entry points.

Importing this module imports each built-in component module (whose ``register``
decorators fill the registries of ``bench.registry``) and every installed plugin named by an
entry point. Code that looks components up by name imports the registries from here, so a
lookup never sees a half-filled registry. The dependency runs one way: built-ins import
``bench.registry``, this module imports them.
"""

import importlib.metadata

import bench.attacks.autoattack  # noqa: F401
import bench.attacks.autopgd  # noqa: F401
import bench.attacks.decision  # noqa: F401
import bench.attacks.gradient  # noqa: F401
import bench.attacks.minimal  # noqa: F401
import bench.attacks.noise  # noqa: F401
import bench.attacks.transfer  # noqa: F401
import bench.data.embedded  # noqa: F401
import bench.data.standard  # noqa: F401
import bench.defenses.adversarial  # noqa: F401
import bench.defenses.baseline  # noqa: F401
import bench.defenses.frontend  # noqa: F401
import bench.defenses.heat_blur  # noqa: F401
import bench.defenses.pretrained  # noqa: F401
import bench.defenses.similarity  # noqa: F401
import bench.defenses.transforms  # noqa: F401
import bench.models.resnet  # noqa: F401
import bench.models.small_cnn  # noqa: F401
from bench.errors import BenchError
from bench.registry import ATTACKS, DATASETS, DEFENSES, MODELS, PLUGIN_ENTRY_POINT_GROUP, Registry

__all__ = ["ATTACKS", "DATASETS", "DEFENSES", "MODELS", "REGISTRIES"]

REGISTRIES: dict[str, Registry] = {"defenses": DEFENSES, "attacks": ATTACKS, "datasets": DATASETS, "models": MODELS}


def _load_entry_points() -> None:
    for ep in importlib.metadata.entry_points(group=PLUGIN_ENTRY_POINT_GROUP):
        try:
            ep.load()
        except Exception as exc:  # a broken third-party plugin must not hide the cause
            raise BenchError(f"plugin entry point {ep.name!r} ({ep.value}) failed to load: {exc}") from exc


_load_entry_points()
