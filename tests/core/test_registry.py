import subprocess
import sys
import textwrap

import pytest

from bench.errors import BenchError, UnknownNameError
from bench.catalog import ATTACKS, DATASETS, DEFENSES, MODELS
from bench.registry import Registry


def test_builtins_are_registered_with_descriptions():
    assert "baseline" in DEFENSES.names()
    assert {"fgsm", "pgd", "pgd_l2"} <= set(ATTACKS.names())
    assert {"mnist_digits", "fashion_mnist", "mnist", "cifar10", "cifar100"} <= set(DATASETS.names())
    assert {"small_cnn", "resnet18"} <= set(MODELS.names())
    for registry in (DEFENSES, ATTACKS, DATASETS, MODELS):
        assert all(entry.description for entry in registry)


def test_unknown_name_lists_valid_names():
    with pytest.raises(UnknownNameError) as info:
        ATTACKS.get("pgdd")
    assert "unknown attack 'pgdd'" in str(info.value) and "pgd_l2" in str(info.value)


def test_register_uses_docstring_and_refuses_name_clash_across_modules():
    reg = Registry("thing")

    @reg.register()
    def widget():
        """Makes widgets."""

    assert reg._entries["widget"].description == "Makes widgets."

    def other():
        pass

    other.__module__ = "someone.else"
    with pytest.raises(BenchError, match="already registered"):
        reg.register("widget")(other)


def test_entry_point_plugin_is_loaded(tmp_path):
    """A defense in a third-party package, declared under the bench.plugins entry point group."""
    (tmp_path / "ep_defense.py").write_text(textwrap.dedent('''
        from bench.defenses import Defense
        from bench.registry import DEFENSES

        @DEFENSES.register("from_entry_point", description="registered through an entry point")
        def from_entry_point():
            return Defense("from_entry_point")
    '''))
    dist = tmp_path / "ep_defense-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ep-defense\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[bench.plugins]\nep_defense = ep_defense\n")
    out = subprocess.run([sys.executable, "-m", "bench.cli", "list", "defenses"], capture_output=True, text=True,
                         env={**__import__("os").environ, "PYTHONPATH": str(tmp_path)}, check=True).stdout
    assert "from_entry_point  registered through an entry point" in out
