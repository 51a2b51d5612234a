"""The layout's rules, checked on the source: every module imports alone, imports form no
circle (between modules, and between subsystems such as ``bench.defenses`` and
``bench.training``), and no subsystem imports another's private names."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("bench", "regularizers")


def _modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            out[name.removesuffix(".__init__")] = path
    return out


MODULES = _modules()


def _subsystem(module: str) -> str:
    """``bench.defenses.similarity`` -> ``bench.defenses``; ``regularizers.loss`` -> ``regularizers``."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "bench" and len(parts) > 1 else parts[0]


def _imports(module: str) -> list[tuple[str, list[str]]]:
    """(imported module, names taken from it) for every import anywhere in ``module``'s source."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.append((full, []) if full in MODULES else (base, [alias.name]))
    out = []
    for target, names in found:
        if target.split(".")[0] not in PACKAGES:
            continue
        while target not in MODULES and "." in target:
            target = target.rsplit(".", 1)[0]
        out.append((target, names))
    return out


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def _graph(level) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = defaultdict(set)
    for module in MODULES:
        for target, _ in _imports(module):
            a, b = level(module), level(target)
            # a package's own __init__ importing its submodules is how packages work, not a circle
            if a != b and not (MODULES[target].name == "__init__.py" and module.startswith(target + ".")):
                edges[a].add(b)
    return edges


def test_the_graph_sees_real_imports():
    edges = _graph(lambda m: m)
    assert "bench.registry" in edges["bench.attacks.gradient"]
    assert "bench.pipeline.factories" in edges["bench.pipeline.models"]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_circle_between_modules():
    assert _cycles(_graph(lambda m: m)) == []


def test_no_import_circle_between_subsystems():
    assert _cycles(_graph(_subsystem)) == []


def test_registry_is_a_leaf():
    assert {target for target, _ in _imports("bench.registry")} <= {"bench.errors", "bench.validate"}
    assert {target for target, _ in _imports("bench.validate")} <= {"bench.errors"}  # a leaf too


def test_no_subsystem_imports_private_names_of_another():
    offending = [f"{module} imports {name} from {target}" for module in MODULES for target, names in _imports(module)
                 for name in names if name.startswith("_") and _subsystem(module) != _subsystem(target)]
    assert offending == []


def test_every_module_imports_alone():
    """Each module imported into an interpreter holding none of the project's modules (torch
    and other libraries stay loaded, so one process suffices)."""
    script = (
        "import importlib, sys\n"
        f"names = {sorted(MODULES)!r}\n"
        "failed = []\n"
        "for name in names:\n"
        "    for loaded in [m for m in sys.modules if m.split('.')[0] in ('bench', 'regularizers')]:\n"
        "        del sys.modules[loaded]\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception as exc:\n"
        "        failed.append(f'{name}: {type(exc).__name__}: {exc}')\n"
        "print('\\n'.join(failed))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


def test_no_module_imports_the_top_level_package():
    """``bench/__init__`` imports ``bench.api`` (lazily) and so everything: a module that imports the package
    itself (``from bench import x``) closes a circle through it; import the submodule (``import bench.x as x``)."""
    offending = []
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and not node.level and node.module == "bench":
                offending.append(f"{module}: {ast.unparse(node)}")
            if isinstance(node, ast.Import) and any(alias.name == "bench" for alias in node.names):
                offending.append(f"{module}: {ast.unparse(node)}")
    assert offending == []
