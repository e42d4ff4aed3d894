"""The package's layers: no import cycle among instab's modules (imports anywhere in a file count,
as :func:`instab.store.code_hash` reads them), and the training stack points down:
``train`` → ``batched`` (the stacked engine) → ``runs`` (what a run is and records)."""

from instab.paths import PACKAGE
from instab.store import _imports, _module_file, module_closure


def _modules() -> list[str]:
    names = []
    for f in sorted(PACKAGE.rglob("*.py")):
        parts = ["instab", *f.relative_to(PACKAGE).with_suffix("").parts]
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_no_import_cycle_in_instab():
    graph = {m: _imports(m, _module_file(m).read_text()) - {m} for m in _modules()}
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        path.append(m)
        for n in sorted(graph.get(m, ())):
            assert state.get(n) != 1, f"import cycle: {' -> '.join(path[path.index(n):] + [n])}"
            if n not in state:
                visit(n)
        path.pop()
        state[m] = 2

    for m in graph:
        if m not in state:
            visit(m)


def test_the_training_stack_points_down():
    assert "instab.train" not in module_closure(["instab.batched"])
    assert not {"instab.train", "instab.batched"} & set(module_closure(["instab.runs"]))
    assert {"instab.runs", "instab.batched", "instab.optim"} <= set(module_closure(["instab.train"]))
