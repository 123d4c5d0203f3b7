"""The house's shape: the import graph of ragkit/ and providers/ has no circle, imports only run downwards, the core
never imports the apps, and no core module outgrows one concept."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Floors, lowest first: a module may import from its own floor or any floor below, never above.
FLOORS: list[tuple[str, ...]] = [
    (
        "ragkit.types",
        "ragkit.errors",
        "ragkit.component",
        "ragkit.registry",
        "ragkit.tokens",
        "ragkit.retry",
        "ragkit.model_info",
        "ragkit.local_models",
        "ragkit.protocols",
        "ragkit._aio",
        "ragkit.language",
        "ragkit.packages",
        "ragkit.jsonl",
        "ragkit.yaml_source",
        "ragkit.tracing",
    ),
    ("ragkit.ingest", "ragkit.retrieve", "ragkit.answer", "ragkit.generate", "ragkit.tools"),
    ("ragkit.providers", "ragkit.testing"),
    ("ragkit.config",),
    ("ragkit.pipeline", "ragkit.eval"),
    ("ragkit.apps",),
    ("ragkit.commands", "ragkit.cli", "ragkit"),
]


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT)
    if rel.parts[0] == "providers":
        parts = ["ragkit", "providers", *rel.parts[1:]]
    else:
        parts = list(rel.parts)
    parts[-1] = parts[-1].removesuffix(".py")
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    files = [*ROOT.joinpath("ragkit").rglob("*.py"), *ROOT.joinpath("providers").rglob("*.py")]
    return {module_name(p): p for p in files}


def imports_of(source: str, name: str, known: set[str], *, is_package: bool = False) -> set[str]:
    """Every ragkit module ``source`` imports, at the top or inside functions (TYPE_CHECKING blocks excluded)."""
    tree = ast.parse(source)
    package = name if is_package else name.rpartition(".")[0]
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for child in node.body for n in ast.walk(child))
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            targets = ([base] if node.module else []) + [f"{base}.{a.name}" for a in node.names]
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found


def floor_of(name: str) -> int:
    best = (-1, -1)
    for i, floor in enumerate(FLOORS):
        for prefix in floor:
            if name == prefix or name.startswith(prefix + "."):
                best = max(best, (len(prefix), i))
    assert best[1] >= 0, f"{name} is on no floor; add it to FLOORS"
    return best[1]


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {
        name: imports_of(path.read_text(encoding="utf-8"), name, known, is_package=path.name == "__init__.py")
        for name, path in mods.items()
    }


def test_no_import_cycles():
    g = graph()
    # Package __init__ files re-export their submodules; the edge submodule -> package is not a cycle of concepts.
    edges = {m: {d for d in deps if not m.startswith(d + ".")} for m, deps in g.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for d in sorted(edges.get(m, ())):
            if state.get(d) == 1:
                cycle = stack[stack.index(d) :] + [d]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m)


def test_imports_only_run_downwards():
    wrong = []
    for m, deps in graph().items():
        for d in deps:
            if m.startswith(d + "."):
                continue  # a package's own __init__
            if floor_of(d) > floor_of(m):
                wrong.append(f"{m} (floor {floor_of(m)}) imports {d} (floor {floor_of(d)})")
    assert not wrong, "\n".join(sorted(wrong))


def test_core_never_imports_apps():
    wrong = [
        f"{m} imports {d}"
        for m, deps in graph().items()
        if not m.startswith("ragkit.apps")
        for d in deps
        if d.startswith("ragkit.apps")
    ]
    assert not wrong, "\n".join(sorted(wrong))


def test_core_modules_stay_small():
    big = []
    for path in ROOT.joinpath("ragkit").rglob("*.py"):
        n = len(path.read_text(encoding="utf-8").splitlines())
        if n > 400:
            big.append(f"{path.relative_to(ROOT)}: {n} lines")
    assert not big, "split by concept: " + ", ".join(big)


def test_the_walker_sees_lazy_and_relative_imports():
    # The checks above must be able to fail: an import inside a function counts, and so does a relative one.
    src = "def f():\n    from ragkit.pipeline import RAG\n    from . import errors\n"
    found = imports_of(src, "ragkit.types", set(modules()))
    assert found == {"ragkit.pipeline", "ragkit.errors"}
    assert floor_of("ragkit.pipeline") > floor_of("ragkit.types")
