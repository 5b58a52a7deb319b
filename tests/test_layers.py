"""The packages import downward only (docs/architecture.md draws the layers).

Every import in src/edgeship is parsed — at module level and inside functions, ``import x``,
``from x import y``, relative imports and ``importlib.import_module("edgeship...")`` literals — and
each edge between two packages must go from a higher layer to a lower one. A cycle between packages
is then impossible; the test also looks for one directly so its message names it.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "edgeship"

# Lowest first. A package may import only packages of lower layers (and itself).
LAYERS: list[tuple[str, ...]] = [
    ("core",),
    ("sources",),
    ("zoo",),
    ("targets",),
    ("check",),
    ("bench",),  # the one timing loop: below compress, whose mixed search times its candidates with it
    ("export",),
    ("compress",),
    ("report",),
    ("pipeline",),
    ("ship",),
    ("api",),
    ("cli",),
]
RANK = {pkg: i for i, layer in enumerate(LAYERS) for pkg in layer}
# The package root holds __version__ and the lazy public names; __main__ starts the CLI.
ROOT_MODULES = {"__init__", "__main__"}


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) for every edgeship import in the file, wherever it stands."""
    tree = ast.parse(path.read_text(), str(path))
    mod = _module_name(path)
    package = mod.split(".") if path.name == "__init__.py" else mod.split(".")[:-1]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if target == "edgeship":  # from edgeship import x: x may be a package
                found += [(node.lineno, f"edgeship.{a.name}") for a in node.names]
            else:
                found.append((node.lineno, target))
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) ==
              "import_module" and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)):
            found.append((node.lineno, node.args[0].value))
    return [(line, t) for line, t in found if t == "edgeship" or t.startswith("edgeship.")]


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _edges() -> dict[tuple[str, str], list[str]]:
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path in sorted(SRC.rglob("*.py")):
        src_pkg = _package(_module_name(path)) if path.parent != SRC else path.stem
        for line, target in _imports(path):
            dst = _package(target)
            if dst in ("", "__version__") or dst == src_pkg:
                continue
            edges[(src_pkg, dst)].append(f"{path.relative_to(SRC)}:{line} imports {target}")
    return edges


def test_every_package_has_a_layer():
    packages = {p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    modules = {p.stem for p in SRC.glob("*.py")} - ROOT_MODULES
    missing = sorted((packages | modules) - set(RANK))
    assert not missing, f"give these a layer in LAYERS and docs/architecture.md: {missing}"


def test_imports_go_downward_only():
    upward = []
    for (src, dst), where in sorted(_edges().items()):
        if src in ROOT_MODULES:
            continue
        if dst not in RANK:
            upward.append(f"{src} -> unknown package {dst}: {where[0]}")
        elif RANK[dst] >= RANK[src]:
            upward += [f"{src} (layer {RANK[src]}) -> {dst} (layer {RANK[dst]}): {w}" for w in where]
    assert not upward, "imports that go up or sideways:\n" + "\n".join(upward)


def test_no_cycle_between_packages():
    graph: dict[str, set[str]] = defaultdict(set)
    for src, dst in _edges():
        graph[src].add(dst)
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            pytest.fail("import cycle: " + " -> ".join(cycle))


def test_the_parser_sees_imports_inside_functions(tmp_path):
    probe = SRC / "check" / "_probe_for_layers_test.py"
    probe.write_text("def f():\n    from edgeship.cli import main\n    from ..ship import agent\n")
    try:
        found = [t for _, t in _imports(probe)]
    finally:
        probe.unlink()
    assert found == ["edgeship.cli", "edgeship.ship"]
