"""The packages' import graph: one direction only, every module above what it imports.

Imports inside functions count too: they are how the heavy dependencies stay off the runtime
path, not a way around the layering."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"dcoder": ROOT / "dcoder", "dcoder_lsp": ROOT / "lsp"}

# Floors, lowest first: a module may import only from its own floor or below.
FLOORS = [
    {"dcoder", "dcoder.errors", "dcoder.config", "dcoder.positions", "dcoder.files"},
    {"dcoder.engine"},
    {"dcoder.syntax", "dcoder.retrieval"},
    {"dcoder.infill"},
    {"dcoder.evaluation"},
    {"dcoder.training", "dcoder.serving", "dcoder_lsp"},
    {"dcoder.cli", "dcoder.__main__"},
]


def _modules() -> dict[str, Path]:
    found = {}
    for name, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            parts = path.relative_to(folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join((name, *parts))] = path
    return found


def _imports(module: str, path: Path, known: set[str]) -> set[str]:
    """The project modules ``module`` imports, anywhere in its file."""
    out = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + ([base] if base else []))
            names = [f"{base}.{a.name}" for a in node.names] + [base]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                out.add(name)
    return out


MODULES = _modules()
GRAPH = {m: _imports(m, p, set(MODULES)) for m, p in MODULES.items()}


def _floor(module: str) -> int:
    for level in range(len(FLOORS) - 1, -1, -1):
        if any(module == f or module.startswith(f + ".") for f in FLOORS[level] if f != "dcoder") or module in FLOORS[level]:
            return level
    raise AssertionError(f"{module} is on no floor: add its package to FLOORS")


def test_every_module_is_on_a_floor():
    assert len(MODULES) > 40
    for module in MODULES:
        _floor(module)


def test_no_module_imports_from_a_floor_above_its_own():
    upward = [f"{m} -> {d}" for m, deps in GRAPH.items() for d in deps if _floor(d) > _floor(m)]
    assert not upward, "\n".join(upward)


def test_the_import_graph_has_no_cycle():
    # package __init__ files re-export their submodules: an edge into the package is not a cycle
    edges = {m: {d for d in deps if not m.startswith(d + ".")} for m, deps in GRAPH.items()}
    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for d in sorted(edges[m]):
            if state.get(d) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(d):] + [d]))
            if d not in state:
                visit(d, path + [d])
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m, [m])


def test_the_language_server_installs_as_dcoder_lsp_and_the_dev_scripts_are_not_in_it():
    import dcoder_lsp.server

    assert Path(dcoder_lsp.server.__file__).resolve().parent == ROOT / "lsp"
    assert not {"bench.py", "record.py"} & {p.name for p in (ROOT / "lsp").iterdir()}
