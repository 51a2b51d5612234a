"""Imports every built-in component so that its ``register`` decorator runs."""

import bench.attacks.autoattack  # noqa: F401
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
