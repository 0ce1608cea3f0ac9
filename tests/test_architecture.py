"""Import architecture of ``zoo``: every module parsed with ``ast`` (module-level *and* function-level imports),
the package import graph built from them, then

* no import cycle (a strongly connected component of more than one module, or a module importing itself);
* the layering (docs/architecture.md) is respected: a module imports only from its own layer or below;
* the pure packages import nothing from Lightning, Hydra or W&B, directly or through a zoo module they import.

Edges go to the module an import names (``from zoo.a import b`` -> ``zoo.a.b`` when that is a module, else
``zoo.a``); the parent packages Python initialises on the way are not edges (they would make every package
that imports its own siblings through the package face look cyclic).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "zoo"

#: layer of each top-level part of zoo; a module may import from its own layer and lower ones only
LAYERS = {
    "zoo.checks": 0, "zoo.schemes": 0,
    "zoo.io": 1, "zoo.losses": 1, "zoo.metrics": 1, "zoo.synth": 1, "zoo.gan": 1,  # pure: no Lightning/Hydra/W&B
    "zoo.detection": 1,                                                               # pure: face boxes (zoo.gan uses it)
    "zoo.datamodules": 2, "zoo.checkpoint": 2, "zoo.loggers": 2,                    # Lightning data, run records
    "zoo.models": 3,                                                                  # LightningModules
    "zoo.callbacks": 4, "zoo.export": 4,                                              # around the models
    "zoo.run": 5,                                                                     # the orchestrator
    "zoo.workflows": 6,                                                               # multi-run workflows
    "zoo": 7,
}
PURE = ("zoo.checks", "zoo.schemes", "zoo.io", "zoo.losses", "zoo.metrics", "zoo.synth", "zoo.gan", "zoo.detection")
FRAMEWORKS = ("lightning", "pytorch_lightning", "hydra", "omegaconf", "wandb")  # torchmetrics is allowed


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def imports_of(name: str) -> set[str]:
    """Absolute names of everything module ``name`` imports, anywhere in its body."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            for a in node.names:
                full = f"{mod}.{a.name}"
                out.add(full if full in MODULES else mod)
    return out


def graph() -> dict[str, set[str]]:
    g = {}
    for name in MODULES:
        deps = set()
        for imp in imports_of(name):
            # the longest zoo module that the import names
            parts = imp.split(".")
            while parts and ".".join(parts) not in MODULES:
                parts.pop()
            if parts:
                deps.add(".".join(parts))
        g[name] = deps
    return g


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module, plus self-imports (Tarjan)."""
    index, low, stack, on, out, n = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(g[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in g[v]:
                out.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def part_of(name: str) -> str:
    best = "zoo"
    for part in LAYERS:
        if (name == part or name.startswith(part + ".")) and len(part) > len(best):
            best = part
    return best


GRAPH = graph()
PARTS = sorted({part_of(m) for m in MODULES})


def test_graph_sees_function_level_imports():
    # hand-made module: one import at module level, one inside a function, one relative
    tree = ast.parse("import os\ndef f():\n    from zoo.checks import invalid\n    from . import x\n")
    names = {a.name for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names}
    assert names == {"os", "invalid", "x"}
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"a"}, "b": set()}) == [["a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize("part", PARTS)
def test_no_import_cycles(part):
    found = [c for c in cycles(GRAPH) if any(part_of(m) == part for m in c)]
    assert not found, f"import cycles touching {part} (closed by imports inside functions count too): {found}"


@pytest.mark.parametrize("part", PARTS)
def test_layering(part):
    upward = sorted(f"{m} -> {d}" for m in MODULES if part_of(m) == part for d in GRAPH[m]
                    if LAYERS[part_of(d)] > LAYERS[part])
    assert not upward, f"{part} (layer {LAYERS[part]}) imports from higher layers: {upward}"


@pytest.mark.parametrize("part", [p for p in PARTS if p in PURE])
def test_pure_packages_do_not_reach_frameworks(part):
    bad = sorted(f"{m} imports {imp}" for m in MODULES if part_of(m) == part for imp in imports_of(m)
                 if imp.split(".")[0] in FRAMEWORKS)
    assert not bad, f"{part} must not import Lightning, Hydra or W&B: {bad}"
