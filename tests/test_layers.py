"""The package's import layers: no cycle, and every arrow points down (the book's page "How this book
is built and checked", ``book/building.md``: "The package, in layers", which names every module).

Every module of ``instab`` is parsed with :mod:`ast` (nothing is imported) and every ``import``
of an ``instab`` module becomes an arrow, wherever it stands: at the top, inside a function (the
package imports torch-heavy modules on use), or under ``if TYPE_CHECKING:``.  Imports for type
checking count like the others: they are a dependency of the design even if they do not run, a
cycle through them is still a cycle to a reader (and to mypy), and the day one becomes a
run-time import it must not create a cycle.  An arrow goes to the most precise module named:
``import instab.pde.heat`` and ``from instab.pde import heat`` to ``instab.pde.heat``, ``from
instab.pde.heat import Grid`` to ``instab.pde.heat``.  Importing a submodule runs its package's
``__init__`` too; that is not counted as an arrow to the package (as import-linter and grimp do
not), so a package whose ``__init__`` re-exports its submodules is not a cycle with them.

The layers, top to bottom (:data:`LAYERS`); an arrow may go down any number of layers or stay in
its layer (as long as there is no cycle).  Placed here: ``ensemble`` (ensemble statistics,
torch-free) and the ``instab`` package's own ``__init__`` (a docstring; it must stay free of
imports) in the bottom layer; ``studies.params`` with the studies; every ``pde.*`` module with
``pde``; every ``book.*`` module with the driver.  A module in no layer fails the
test: a new module must be placed.  The driver is on top, as it calls the studies' ``dry_run``
(through ``importlib``, which this test does not see) and nothing of a study may import the driver.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "instab"

#: Top to bottom: (layer, modules); a name ending in ``.*`` also covers every module under it.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("driver", ("book", "book.*")),
    ("studies", ("studies", "studies.*")),
    ("grid", ("grid",)),
    ("training", ("train", "batched", "runspec", "history", "step", "stability", "threshold", "controllers", "edge")),
    ("pieces", ("optim", "models", "data", "datasets", "metrics", "growth", "bounds", "pde", "pde.*", "cost")),
    ("base", ("executors", "cluster", "store", "paths", "determinism", "checks", "report", "numerics", "lockfile",
              "bookext", "ensemble", "findings", "")),  # "": the package's own __init__
]


def module_name(path: Path, package: Path = PACKAGE) -> str:
    """``instab/pde/heat.py`` → ``instab.pde.heat``; a package's ``__init__.py`` → the package."""
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(package: Path = PACKAGE) -> dict[str, Path]:
    """Every module of the package by name."""
    return {module_name(p, package): p for p in sorted(package.rglob("*.py"))}


def _type_checking_lines(tree: ast.AST) -> set[int]:
    """Line numbers inside ``if TYPE_CHECKING:`` (or ``typing.TYPE_CHECKING``) blocks."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = test.id if isinstance(test, ast.Name) else test.attr if isinstance(test, ast.Attribute) else ""
            if name == "TYPE_CHECKING":
                for stmt in node.body:
                    lines |= set(range(stmt.lineno, (stmt.end_lineno or stmt.lineno) + 1))
    return lines


def imports(name: str, source: str, known: set[str], is_package: bool = False) -> dict[str, str]:
    """The ``instab`` modules that module ``name`` imports, each with how: ``"import"`` or
    ``"TYPE_CHECKING"`` (when every import of it is under ``if TYPE_CHECKING:``)."""

    def most_precise(dotted: str) -> str | None:
        parts = dotted.split(".")
        for i in range(len(parts), 0, -1):
            if ".".join(parts[:i]) in known:
                return ".".join(parts[:i])
        return None

    tree = ast.parse(source)
    typing_only = _type_checking_lines(tree)
    package = name if is_package else name.rpartition(".")[0]
    out: dict[str, str] = {}
    for node in ast.walk(tree):
        targets: list[str | None] = []
        if isinstance(node, ast.Import):
            targets = [most_precise(a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from . import x, from ..pde import heat
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                mod = f"{base}.{node.module}" if node.module else base
            else:
                mod = node.module or ""
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in known else most_precise(mod) for a in node.names]
        else:
            continue
        how = "TYPE_CHECKING" if node.lineno in typing_only else "import"
        for t in targets:
            if t is not None and t != name:
                out[t] = "import" if out.get(t) == "import" else how
            elif t == name:
                out[t] = how  # a module importing itself: a cycle of one
    return out


def import_graph(package: Path = PACKAGE) -> tuple[dict[str, set[str]], dict[tuple[str, str], str]]:
    """The package's module graph (module → the modules it imports) and how each arrow imports."""
    mods = modules(package)
    graph: dict[str, set[str]] = {}
    how: dict[tuple[str, str], str] = {}
    for name, path in mods.items():
        found = imports(name, path.read_text(), set(mods), is_package=path.name == "__init__.py")
        graph[name] = set(found)
        how.update({(name, t): h for t, h in found.items()})
    return graph, how


def find_cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """One cycle (``[a, b, ..., a]``) through each strongly connected component that has one
    (Tarjan's algorithm, iterative); sorted, each starting at its smallest module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []
    counter = 0
    nodes = sorted(set(graph) | {t for ts in graph.values() for t in ts})
    for root in nodes:
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            for w in children:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = set()
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.add(w)
                        if w == v:
                            break
                    if len(comp) > 1 or v in graph.get(v, ()):
                        components.append(comp)
    cycles = []
    for comp in components:
        start = min(comp)
        # shortest path start → ... → start inside the component (breadth first)
        prev: dict[str, str] = {}
        frontier, seen, end = [start], {start}, None
        while frontier and end is None:
            nxt = []
            for v in frontier:
                for w in sorted(graph.get(v, ())):
                    if w == start:
                        end = v
                        break
                    if w in comp and w not in seen:
                        seen.add(w)
                        prev[w] = v
                        nxt.append(w)
                if end is not None:
                    break
            frontier = nxt
        assert end is not None
        path = [end]
        while path[-1] != start:
            path.append(prev[path[-1]])
        cycles.append([start, *reversed(path[:-1]), start] if len(path) > 1 else [start, start])
    return sorted(cycles)


def layer_of(module: str, layers: list[tuple[str, tuple[str, ...]]] = LAYERS, top: str = "instab") -> int | None:
    """The rank of ``module``'s layer (0: the top), or None when no layer names it."""
    rel = module[len(top) + 1:] if module.startswith(top + ".") else "" if module == top else None
    if rel is None:
        return None
    for rank, (_, names) in enumerate(layers):
        for n in names:
            if rel == n or (n.endswith(".*") and rel.startswith(n[:-1])):
                return rank
    return None


def upward_arrows(graph: Mapping[str, set[str]], rank: Callable[[str], int | None]) -> list[tuple[str, str]]:
    """Every arrow ``a → b`` that points up: ``b``'s layer is above ``a``'s (a smaller rank)."""
    out = []
    for a in sorted(graph):
        for b in sorted(graph[a]):
            ra, rb = rank(a), rank(b)
            if ra is not None and rb is not None and rb < ra:
                out.append((a, b))
    return out


def _layer_name(module: str) -> str:
    r = layer_of(module)
    return "?" if r is None else LAYERS[r][0]


# --- the checker itself, on made-up graphs ---------------------------------------------------------


def test_a_synthetic_cycle_is_found_and_named():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}, "f": {"g"}, "g": set()}
    assert find_cycles(graph) == [["a", "b", "c", "a"], ["e", "e"]]
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []
    two = find_cycles({"x.train": {"x.batched"}, "x.batched": {"x.train", "x.optim"}, "x.optim": set()})
    assert two == [["x.batched", "x.train", "x.batched"]]


def test_a_synthetic_upward_arrow_is_found_and_a_downward_one_is_not():
    layers = [("top", ("book", "book.*")), ("mid", ("grid",)), ("low", ("store", ""))]

    def rank(m: str) -> int | None:
        return layer_of(m, layers, top="pkg")

    graph = {"pkg.book": {"pkg.book.cli"}, "pkg.book.cli": {"pkg.grid", "pkg.store"},
             "pkg.grid": {"pkg.store"}, "pkg.store": {"pkg.book.cli"}, "pkg": set()}
    assert upward_arrows(graph, rank) == [("pkg.store", "pkg.book.cli")]
    assert rank("pkg") == 2 and rank("pkg.book.cli") == 0 and rank("pkg.other") is None
    assert upward_arrows({"pkg.grid": {"pkg.store"}, "pkg.store": set()}, rank) == []


def test_imports_are_read_everywhere_and_resolved_to_the_module():
    known = {"instab", "instab.pde", "instab.pde.heat", "instab.grid", "instab.store", "instab.train"}
    source = """
from __future__ import annotations
from typing import TYPE_CHECKING
import numpy
from instab.pde import heat
from . import store
if TYPE_CHECKING:
    from instab.train import Trainer

def f():
    import instab.grid
    from instab.pde.heat import solve
"""
    got = imports("instab.pde.onelayer", source, known | {"instab.pde.onelayer"})
    # "from . import store" in a pde module names instab.pde.store, which is no module: the arrow goes to instab.pde
    assert got == {"instab.pde.heat": "import", "instab.pde": "import", "instab.train": "TYPE_CHECKING",
                   "instab.grid": "import"}
    assert imports("instab.pde", "from . import heat\n", known, is_package=True) == {"instab.pde.heat": "import"}


# --- the package -----------------------------------------------------------------------------------


def test_every_module_has_a_layer():
    unplaced = [m for m in modules() if layer_of(m) is None]
    assert not unplaced, f"modules in no layer (place them in LAYERS of {Path(__file__).name}): {unplaced}"


def test_the_package_has_no_import_cycle():
    graph, how = import_graph()
    cycles = find_cycles(graph)
    named = [" → ".join(c) + "".join(f"  ({a} → {b} under TYPE_CHECKING)" for a, b in zip(c, c[1:], strict=False)
                                     if how.get((a, b)) == "TYPE_CHECKING") for c in cycles]
    assert not cycles, "import cycles:\n  " + "\n  ".join(named)


def test_every_import_points_down_the_layers():
    graph, how = import_graph()
    up = upward_arrows(graph, layer_of)
    lines = [f"{a} ({_layer_name(a)}) → {b} ({_layer_name(b)})"
             + (" [TYPE_CHECKING]" if how.get((a, b)) == "TYPE_CHECKING" else "") for a, b in up]
    assert not up, "imports pointing up the layers (" + " > ".join(n for n, _ in LAYERS) + "):\n  " + "\n  ".join(lines)


@pytest.mark.parametrize("module", ["instab.book", "instab.book.cli", "instab.studies.sgd", "instab.pde.heat"])
def test_the_real_modules_are_in_the_graph(module):
    graph, _ = import_graph()
    assert module in graph


def test_the_building_page_names_every_module() -> None:
    page = (PACKAGE.parent / "book" / "building.md").read_text()
    block = page.split("**The package, in layers**", 1)[1].split("```", 2)[1]
    named = set(re.findall(r"(?<![\w.])(\w+\.py)\b", block))  # sgd_threshold.py does not name threshold.py
    missing = [n for n, p in modules().items() if p.name not in ("__init__.py", "__main__.py") and p.name not in named]
    assert not missing, f"book/building.md's list of modules does not name {missing}"
