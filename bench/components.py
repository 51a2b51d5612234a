"""Imports every built-in component so that its ``register`` decorator runs."""

import bench.attacks.gradient  # noqa: F401
import bench.data.embedded  # noqa: F401
import bench.data.standard  # noqa: F401
import bench.defenses.baseline  # noqa: F401
import bench.defenses.similarity  # noqa: F401
import bench.models.resnet  # noqa: F401
import bench.models.small_cnn  # noqa: F401
